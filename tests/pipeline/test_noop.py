"""The warm no-op shortcut (doxops.noop): what it prints is what the full CLI prints, and a miss is never its answer.

The full CLI is run as ``python -c "...cli.main()"`` (it never goes through ``doxops/__main__.py``, where the
shortcut sits); the shortcut as ``python -m doxops`` (what ./dox runs). Both in the same copy of the repository.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import assert_no_traceback, copy_repo, run_dox

FULL_CLI = "import sys; from doxops.cli import main; sys.argv = ['dox', *sys.argv[1:]]; main()"
ANSWER = "import sys; from doxops import noop; print(noop.answer(sys.argv[1:]))"


def _env(repo: Path, extra: dict | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "DOX_ENV"}
    return {**env, "PYTHONPATH": str(repo), **(extra or {})}


def full_cli(repo: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", FULL_CLI, *args], cwd=repo, env=_env(repo), capture_output=True,
                          text=True, timeout=300)


def shortcut(repo: Path, *args: str, env: dict | None = None) -> tuple[str, str]:
    """(what noop.answer returned, what it printed on stderr): without the full CLI as a fallback."""
    proc = subprocess.run([sys.executable, "-c", ANSWER, *args], cwd=repo, env=_env(repo, env), capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip().splitlines()[-1], proc.stderr


def normal(text: str) -> str:
    """Timings differ between two runs: ``(0.1 s)`` -> ``(N s)``."""
    return re.sub(r"\(\d+\.\d+ s\)", "(N s)", text)


@pytest.fixture(scope="module")
def warm(tmp_path_factory) -> Path:
    """A copy whose render and --no-server validation caches are filled."""
    repo = copy_repo(tmp_path_factory.mktemp("noop") / "repo")
    proc = full_cli(repo, "render", "validate", "--no-server")
    assert proc.returncode == 0, proc.stderr
    return repo


@pytest.mark.parametrize("args", [("render",), ("validate", "--no-server"), ("render", "validate", "--no-server")])
def test_a_hit_prints_what_the_full_cli_prints(warm: Path, args):
    full = full_cli(warm, *args)
    fast = run_dox(warm, *args, env={"DOX_ENV": ""})
    assert (fast.returncode, normal(fast.stdout), normal(fast.stderr)) == \
           (full.returncode, normal(full.stdout), normal(full.stderr))
    assert fast.returncode == 0 and "unchanged" in fast.stderr
    assert shortcut(warm, *args)[0] == "0"  # and it was the shortcut that answered


def test_the_shortcut_loads_neither_invoke_nor_the_stages(warm: Path):
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "doxops", "render", "validate", "--no-server"],
                          cwd=warm, env=_env(warm), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    modules = {line.rsplit("|", 1)[1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert "doxops.validate.cache" in modules  # the check reads the importtime lines it should
    assert {"invoke", "doxops.cli", "doxops.validate.engine", "doxops.render.run"}.isdisjoint(modules)


def test_every_miss_goes_to_the_full_cli_without_a_word(tmp_path: Path):
    repo = copy_repo(tmp_path / "repo")
    assert full_cli(repo, "render", "validate", "--no-server").returncode == 0
    assert shortcut(repo, "render", "validate", "--no-server")[0] == "0"
    # forms it does not answer
    for args in (("render", "validate", "--env", "prod"), ("validate", "--format", "json"), ("render", "--force"),
                 ("diff",), ()):
        assert shortcut(repo, *args) == ("None", ""), args
    assert shortcut(repo, "render", "validate", "--no-server", env={"DOX_ENV": "prod"}) == ("None", "")
    # tools the full render would resolve otherwise: forced, or not in the cache (it builds them)
    assert shortcut(repo, "render", env={"DOX_HELM": "/usr/bin/true"}) == ("None", "")
    assert shortcut(repo, "render", env={"DOX_CACHE_DIR": str(tmp_path / "empty-cache")}) == ("None", "")
    assert shortcut(repo, "validate", "--no-server", env={"DOX_CACHE_DIR": str(tmp_path / "empty-cache")})[0] == "0"
    # another render holds the lock: the full CLI waits and says so
    import fcntl
    with open(repo / ".dox" / "render.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        assert shortcut(repo, "render") == ("None", "")
        assert shortcut(repo, "validate", "--no-server")[0] == "0"  # validate takes no render lock
    # a killed render's leftover: the full render cleans it up
    (repo / "rendered" / ".prod.new-abc").mkdir()
    assert shortcut(repo, "render") == ("None", "")
    assert run_dox(repo, "render").returncode == 0 and not (repo / "rendered" / ".prod.new-abc").exists()
    assert shortcut(repo, "render", "validate") == ("None", "")  # the server stage's report was never cached
    # a changed source: the render cache misses
    values = repo / "environments" / "prod" / "values.yaml"
    original = values.read_text()
    values.write_text(original + "\n# a comment changes the inputs\n")
    assert shortcut(repo, "render", "validate", "--no-server") == ("None", "")
    assert shortcut(repo, "render") == ("None", "")
    values.write_text(original)
    assert shortcut(repo, "render", "validate", "--no-server")[0] == "0"
    # output of a removed environment: the full render removes it and says so
    (repo / "rendered" / "gone").mkdir()
    assert shortcut(repo, "render") == ("None", "")
    proc = run_dox(repo, "render")
    assert proc.returncode == 0 and "removed rendered/gone" in proc.stderr, proc.stderr
    # a corrupt render cache: a miss that changes nothing, so the full CLI finds it and says so
    render_cache = repo / ".dox" / "render-cache" / "prod.json"
    render_cache.write_text("{not json")
    assert shortcut(repo, "render") == ("None", "")
    assert render_cache.read_text() == "{not json"
    proc = run_dox(repo, "render")
    assert proc.returncode == 0 and "render cache .dox/render-cache/prod.json is corrupt" in proc.stderr, proc.stderr
    # a corrupt validation cache: the full CLI says so
    cache = repo / ".dox" / "validate-cache" / "prod.no-server.json"
    cache.write_text("{not json")
    assert shortcut(repo, "validate", "--no-server") == ("None", "")
    proc = run_dox(repo, "validate", "--no-server")
    assert proc.returncode == 0 and "validation cache is corrupt" in proc.stderr, proc.stderr


def test_a_cached_error_is_reported_by_the_full_cli_and_a_cached_warning_by_the_shortcut(tmp_path: Path):
    repo = copy_repo(tmp_path / "repo")
    deployment = repo / "rendered" / "prod" / "workloads" / "deployment-orchestrator.yaml"
    deployment.write_text(deployment.read_text().replace("image: dox-asdlc/orchestrator:1.4.2",
                                                         "image: dox-asdlc/orchestrator:latest"))
    first = run_dox(repo, "validate", "--no-server")
    assert first.returncode == 1 and "image-tag" in first.stdout, first.stderr
    assert shortcut(repo, "validate", "--no-server") == ("None", "")  # a cached error: never the shortcut's answer
    again = run_dox(repo, "validate", "--no-server")
    assert again.returncode == 1 and normal(again.stdout) == normal(first.stdout)
    assert_no_traceback(again)
    # the same finding as a warning: cached without errors, so the shortcut answers, on the same streams
    policy = repo / "environments" / "prod" / "policy.yaml"
    policy.write_text(policy.read_text().replace("  image-tag:\n", "  image-tag:\n    level: warning\n"))
    assert full_cli(repo, "validate", "--no-server").returncode == 0  # validates and caches the report
    full = full_cli(repo, "validate", "--no-server")  # answered from the cache by the full CLI
    assert full.returncode == 0 and "[warning]" in full.stdout and "image-tag" in full.stdout, full.stderr
    assert shortcut(repo, "validate", "--no-server")[0] == "0"
    fast = run_dox(repo, "validate", "--no-server")
    assert (fast.returncode, fast.stdout, normal(fast.stderr)) == (0, full.stdout, normal(full.stderr))


# The plain forms without invoke (doxops.direct): a cold run, an input error, findings.

def _cold(repo: Path) -> None:
    for cache in ("render-cache", "validate-cache"):
        shutil.rmtree(repo / ".dox" / cache, ignore_errors=True)


def _both(repo: Path, *args: str) -> tuple[subprocess.CompletedProcess, subprocess.CompletedProcess]:
    """(the full CLI's run, the direct path's run) of ``args``, each from cold render and validation caches."""
    _cold(repo)
    full = full_cli(repo, *args)
    _cold(repo)
    fast = run_dox(repo, *args, env={"DOX_ENV": ""})
    return full, fast


def _same(full: subprocess.CompletedProcess, fast: subprocess.CompletedProcess) -> None:
    assert (fast.returncode, normal(fast.stdout), normal(fast.stderr)) == \
           (full.returncode, normal(full.stdout), normal(full.stderr))
    assert_no_traceback(fast)


def test_the_direct_path_runs_what_the_full_cli_runs(tmp_path: Path):
    repo = copy_repo(tmp_path / "repo")
    full, fast = _both(repo, "render", "validate", "--no-server")
    _same(full, fast)
    assert fast.returncode == 0 and "34 files -> rendered/minikube" in fast.stderr  # rendered, not cached
    assert "resources checked: 0 errors" in fast.stdout + fast.stderr
    # findings: exit 1 and the same report
    deployment = repo / "rendered" / "prod" / "workloads" / "deployment-orchestrator.yaml"
    deployment.write_text(deployment.read_text().replace("image: dox-asdlc/orchestrator:1.4.2",
                                                         "image: dox-asdlc/orchestrator:latest"))
    full, fast = _both(repo, "validate", "--no-server")
    _same(full, fast)
    assert fast.returncode == 1 and "image-tag" in fast.stdout
    # a policy typo, read early by the direct path's preparation: reported by the validation, as the full CLI does
    deployment.write_text(deployment.read_text().replace("image: dox-asdlc/orchestrator:latest",
                                                         "image: dox-asdlc/orchestrator:1.4.2"))
    policy = repo / "policy.yaml"
    good_policy = policy.read_text()
    policy.write_text(good_policy + "\nnoSuchSetting: 1\n")
    full, fast = _both(repo, "render", "validate", "--no-server")
    _same(full, fast)
    assert fast.returncode == 2 and "dox validate: policy.yaml:" in fast.stderr and "noSuchSetting" in fast.stderr
    policy.write_text(good_policy)
    # an input error in the render: exit 2, the same message, and validate does not run
    kustomization = repo / "environments" / "prod" / "kustomization.yaml"
    kustomization.write_text(kustomization.read_text() + "resources:\n  - https://example.com/remote.yaml\n")
    full, fast = _both(repo, "render", "validate", "--no-server")
    _same(full, fast)
    assert fast.returncode == 2 and "dox render: " in fast.stderr and "remote source" in fast.stderr
    assert "validate prod" not in fast.stderr + fast.stdout


def test_the_direct_path_loads_no_invoke(tmp_path: Path):
    repo = copy_repo(tmp_path / "repo")
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "doxops", "render", "validate", "--no-server"],
                          cwd=repo, env=_env(repo), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    modules = {line.rsplit("|", 1)[1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert {"doxops.render.tools", "doxops.validate.engine"} <= modules  # it rendered and validated
    assert {"invoke", "doxops.cli"}.isdisjoint(modules)


DIGEST_HANDOFF = """
import json, sys
from doxops import noop, direct
from doxops.render import sources
hashed = []
real = sources._digest_of
sources._digest_of = lambda root, env, extra: hashed.append(env and env.name) or real(root, env, extra)
answer = noop.answer(sys.argv[1:])
handed = {env.name: digest for env, digest in noop.DIGESTS.items()}
fresh = {env.name: real(env.path.parent.parent, env, ()) for env in noop.DIGESTS}
hashed.clear()
code = direct.run(sys.argv[1:])
print(json.dumps({"answer": answer, "handed": handed, "fresh": fresh, "hashed": hashed, "code": code}))
"""


def test_a_miss_hands_its_digests_to_the_render_and_validation_that_follow(tmp_path: Path):
    """The cached path's check hashes an environment's inputs; after its miss, the render and the validation in
    the same process use that digest, and hash each environment the check did not reach once."""
    import json  # noqa: PLC0415

    repo = copy_repo(tmp_path / "repo")
    assert full_cli(repo, "render", "validate", "--no-server").returncode == 0
    values = repo / "environments" / "minikube" / "values.yaml"
    values.write_text(values.read_text() + "\n# changed\n")  # minikube (the first environment) misses
    proc = subprocess.run([sys.executable, "-c", DIGEST_HANDOFF, "render", "validate", "--no-server"], cwd=repo,
                          env=_env(repo), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["answer"] is None and out["code"] == 0
    assert list(out["handed"]) == ["minikube"] and out["handed"] == out["fresh"]  # the digest of the inputs as now
    assert out["hashed"] == ["prod"]  # minikube's inputs were not hashed again; prod's, never reached, once
    assert "render minikube: 34 files" in proc.stderr and "render prod: unchanged" in proc.stderr
    assert "validate prod: 38 resources checked: 0 errors, 0 warnings (unchanged" in proc.stderr


BROKEN_PIPE = """
import sys
from doxops import commands
def closed(**options):
    raise BrokenPipeError(32, "Broken pipe")  # what print raises when the reader (| head) has gone
commands.validate = closed
if sys.argv[1] == "direct":
    from doxops import direct
    sys.exit(direct.run(["validate", "--no-server"]))
from doxops.cli import main
sys.argv = ["dox", "validate", "--no-server"]
main()
"""


@pytest.mark.parametrize("path", ["direct", "cli"])
def test_a_closed_output_is_exit_3_on_both_paths_never_a_success(tmp_path: Path, path):
    """A report cut short by ``| head`` may have hidden findings: never 0, never a traceback."""
    proc = subprocess.run([sys.executable, "-c", BROKEN_PIPE, path], cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 3, proc.stderr
    assert "standard output was closed before the output was complete" in proc.stderr
    assert_no_traceback(proc)
