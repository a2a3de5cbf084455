"""The validation cache answers a warm no-op before anything costly starts."""

from __future__ import annotations

import pytest

from doxops import environments
from doxops.validate import runner


def _refuse(*args, **kwargs):
    raise AssertionError("a cached environment must not start the credential pre-scan or the server stage")


def test_a_warm_no_op_starts_neither_the_credential_scan_nor_the_stage(repo_copy, monkeypatch):
    envs = environments.discover(repo_copy)
    first = runner.validate_envs(envs, root=repo_copy, server=False)
    assert not any(r.cached for r in first)
    monkeypatch.setattr(runner, "_scan_in_background", _refuse)
    monkeypatch.setattr(runner, "server_stage", _refuse)
    again = runner.validate_envs(envs, root=repo_copy, server=False)
    assert [r.name for r in again] == [r.name for r in first] and all(r.cached for r in again)
    assert [r.diagnostics for r in again] == [r.diagnostics for r in first]


def test_a_changed_environment_is_validated_again_and_the_other_answered_from_the_cache(repo_copy, monkeypatch):
    envs = environments.discover(repo_copy)
    runner.validate_envs(envs, root=repo_copy, server=False)
    changed = repo_copy / "rendered" / envs[0].name / "workloads" / "deployment-orchestrator.yaml"
    changed.write_text(changed.read_text().replace("replicas: 1", "replicas: 2"))
    monkeypatch.setattr(runner, "_scan_in_background", _refuse)
    with pytest.raises(AssertionError, match="must not start"):  # the changed one goes further than the cache
        runner.validate_envs(envs, root=repo_copy, server=False)
    monkeypatch.undo()
    reports = {r.name: r for r in runner.validate_envs(envs, root=repo_copy, server=False)}
    assert not reports[envs[0].name].cached and reports[envs[1].name].cached
    assert any(d.rule == "singleton" for d in reports[envs[0].name].diagnostics)


def test_the_scanners_configuration_and_the_masking_rule_are_part_of_the_key(repo_copy):
    """A report made under another gitleaks.toml, diff.yaml or masking rule is not reused (run in the copy, whose
    own code is what the key hashes)."""
    from tests.conftest import run_dox

    assert run_dox(repo_copy, "validate", "--no-server").returncode == 0
    for changed in ("doxops/validate/rules/gitleaks.toml", "doxops/diff/mask.py", "diff.yaml"):
        assert "unchanged since the last validation" in run_dox(repo_copy, "validate", "--no-server").stderr
        path = repo_copy / changed
        path.write_text((path.read_text() if path.exists() else "") + "\n# changed\n")
        proc = run_dox(repo_copy, "validate", "--no-server")
        assert proc.returncode == 0 and "unchanged" not in proc.stderr, (changed, proc.stderr)
