"""`./dox validate --path DIR --policy FILE`: a chart's output checked on its own, with the cluster's facts."""

from __future__ import annotations

import subprocess
import sys

from doxops.paths import REPO_ROOT
from doxops.validate import runner
from tests.validate.helpers import FIXTURES

HERE = FIXTURES / "policy-flag"


def dox(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "doxops", *args], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=120)


def test_issue_16_case_8_minikube_alone_fails_on_secrets_and_passes_when_a_policy_file_provides_them():
    without = dox("validate", "--path", "rendered/minikube")
    assert without.returncode == 1, without.stderr
    assert without.stdout.count("(config-refs)") == 8
    with_policy = dox("validate", "--path", "rendered/minikube", "--policy", str(HERE / "secrets.yaml"))
    assert with_policy.returncode == 0, with_policy.stdout + with_policy.stderr
    assert "(config-refs)" not in with_policy.stdout


def test_roles_declared_in_a_policy_file_apply_the_role_rules():
    plain = runner.validate_path(HERE / "chart", namespace="jobs")
    assert [d for d in plain.diagnostics if d.level == "error"] == []  # no role label: no singleton to check
    report = runner.validate_path(HERE / "chart", namespace="jobs", policy=HERE / "roles.yaml")
    assert [(d.rule, d.line) for d in report.diagnostics if d.level == "error"] == [("singleton", 9)]
    assert "singleton has replicas 2; it must be exactly 1" in report.diagnostics[0].message


def test_policy_without_path_and_a_bad_policy_file_are_usage_errors(tmp_path):
    no_path = dox("validate", "--env", "prod", "--policy", str(HERE / "secrets.yaml"))
    assert no_path.returncode == 2 and "--policy goes with --path" in no_path.stderr
    bad = tmp_path / "policy.yaml"
    bad.write_text("providedSecrets:\n  api-key: [token]\nrules:\n  image-tag: {conf: {requires: version}}\n")
    typo = dox("validate", "--path", "rendered/minikube", "--policy", str(bad))
    assert typo.returncode == 2
    assert f"{bad}:4: rule image-tag: unknown option 'requires'; known options: require" in typo.stderr
