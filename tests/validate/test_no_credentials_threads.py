"""Scans from several threads (environments validated in parallel): each finds what is in its files, and one
scan started in the background answers every environment's scans of a validation (one gitleaks run)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from doxops import environments
from doxops.validate import runner
from doxops.validate.rules import no_credentials
from tests.conftest import copy_repo


def test_parallel_scans_from_threads_all_find_their_credential(tmp_path, monkeypatch):
    _gitleaks_runs(monkeypatch)  # cold: no memo, no cached answers (the session's built gitleaks is used)
    groups = []
    for g in range(4):
        files = []
        for i in range(3):
            path = tmp_path / f"g{g}-{i}.yaml"
            path.write_text(f"metadata:\n  name: x{g}{i}\ndata:\n  aws: AKIAZ3MSJV4WWNKWW{g}{i}FG\n")
            files.append(path)
        groups.append(files)
    conf = no_credentials.CONF
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda fs: no_credentials.scan(fs, conf["disableRules"], conf["ignoreKeys"]), groups))
    for files, found in zip(groups, results):
        assert sorted(p.name for p, line, kind in found) == sorted(p.name for p in files)
        assert {kind for _, _, kind in found} == {"aws-access-token"}


def _gitleaks_runs(monkeypatch) -> list[int]:
    """Every scan starts cold (no memo, no cached answers); returns the list of files per gitleaks run."""
    runs: list[int] = []
    real = no_credentials._run
    monkeypatch.setattr(no_credentials, "_MEMO", {})
    monkeypatch.setattr(no_credentials, "_cached", lambda keys: {})
    monkeypatch.setattr(no_credentials, "_store", lambda answers: None)
    monkeypatch.setattr(no_credentials, "_run", lambda paths, *rest: runs.append(len(paths)) or real(paths, *rest))
    return runs


def test_one_gitleaks_run_serves_every_environment_of_a_validation(tmp_path, monkeypatch):
    repo = copy_repo(tmp_path / "repo")
    values = repo / "environments" / "prod" / "values.yaml"  # a credential in a source, found by the shared scan
    values.write_text(values.read_text() + "\n# aws: AKIAZ3MSJV4WWNKWW5FG\n")
    envs = environments.discover(repo)
    runs = _gitleaks_runs(monkeypatch)
    reports = runner.validate_envs(envs, root=repo, use_cache=False, server=False)
    assert len(runs) == 1 and runs[0] > 100, runs  # the sources and the rendered files of both environments
    found = [d for r in reports for d in r.diagnostics if d.rule == "no-credentials"]
    assert [(d.path, d.message.split(" in a source")[0]) for d in found] == \
        [("environments/prod/values.yaml", "aws-access-token")], found
    # without the shared scan, each source set and each group of objects starts gitleaks: the count can fail
    runs.clear()
    no_credentials._MEMO.clear()
    monkeypatch.setattr(runner, "_scan_in_background", lambda envs, root: None)
    again = runner.validate_envs(envs, root=repo, use_cache=False, server=False)
    assert len(runs) > 1 and [r.diagnostics for r in again] == [r.diagnostics for r in reports]
