"""The pull-request workflow: actionlint-clean, and safe for pull requests from forks."""

from __future__ import annotations

import shutil

import yaml

from doxops.paths import REPO_ROOT
from tests.conftest import run_dox

WORKFLOWS = REPO_ROOT / ".github" / "workflows"


def load(name: str) -> dict:
    return yaml.safe_load((WORKFLOWS / name).read_text())


def test_workflows_pass_actionlint_and_a_broken_one_fails(repo_copy):
    shutil.copytree(WORKFLOWS, repo_copy / ".github" / "workflows")
    assert run_dox(repo_copy, "lint-workflows").returncode == 0
    broken = repo_copy / ".github/workflows/checks.yaml"
    broken.write_text(broken.read_text().replace("runs-on: ubuntu-latest", "runs-on: ubuntu-latest\n    steps-typo: 1"))
    proc = run_dox(repo_copy, "lint-workflows")
    assert proc.returncode == 1 and "steps-typo" in proc.stdout


def test_code_of_the_pull_request_never_runs_with_write_permissions():
    checks, comment = load("checks.yaml"), load("comment.yaml")
    assert checks["permissions"] == {"contents": "read"}
    for job in checks["jobs"].values():
        assert "permissions" not in job
    assert set(comment[True]) == {"workflow_run"} if True in comment else set(comment["on"]) == {"workflow_run"}
    steps = [s for job in comment["jobs"].values() for s in job["steps"]]
    assert not any("checkout" in str(s.get("uses", "")) for s in steps)
    assert not any("./dox" in str(s.get("run", "")) for s in steps)


def test_the_workflow_runs_the_readme_commands():
    runs = " ".join(str(s.get("run", "")) for s in load("checks.yaml")["jobs"]["checks"]["steps"])
    readme = (REPO_ROOT / "README.md").read_text()
    two = readme.split("## Two commands", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in two.strip().splitlines()]
    assert commands == ["./dox render validate", "./dox test"]
    assert "./dox render --check validate" in runs and "./dox test" in runs


def test_ci_and_the_workflow_have_no_set_up_step_of_their_own():
    """Everything the suite needs is set up by `./dox test` itself, so a newcomer's run is CI's run."""
    commands = [line.strip() for line in (REPO_ROOT / ".ci" / "run").read_text().splitlines()
                if line.strip() and not line.lstrip().startswith("#")]
    assert commands == ["set -euo pipefail", 'cd "$(dirname "${BASH_SOURCE[0]}")/.."', "exec ./dox test"]
    runs = [str(s.get("run", "")) for s in load("checks.yaml")["jobs"]["checks"]["steps"]]
    assert not any(word in run for run in runs for word in ("apt-get", "sudo", "redis", "pip install", "go install"))
