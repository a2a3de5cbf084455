"""Operator tasks with a recording kubectl: values come from the environment and are never printed."""

from __future__ import annotations

import base64
import json

from tests.conftest import assert_no_traceback, run_dox

VALUES = {"DOX_GIT_USERNAME": "bot", "DOX_GIT_TOKEN": "tok-5f1c9e0a", "ANTHROPIC_API_KEY": "sk-test-77aa",
          "DOX_REDIS_PASSWORD": "pw-31d7"}


def fake_kubectl(tmp_path):
    script = tmp_path / "kubectl"
    log = tmp_path / "calls"
    script.write_text(f"#!/bin/sh\necho \"$@\" >> {log}.args\ncat >> {log}.stdin\n")
    script.chmod(0o755)
    return script, log


def test_minikube_secrets_from_environment_never_printed(repo_copy, tmp_path):
    kubectl, log = fake_kubectl(tmp_path)
    proc = run_dox(repo_copy, "minikube-secrets", env={**VALUES, "DOX_KUBECTL": str(kubectl)})
    assert proc.returncode == 0, proc.stderr
    sent = json.loads((tmp_path / "calls.stdin").read_text())
    secrets = {i["metadata"]["name"]: i for i in sent["items"]}
    assert set(secrets) == {"git-credentials", "anthropic-api-key", "redis-password"}
    assert base64.b64decode(secrets["anthropic-api-key"]["data"]["api-key"]).decode() == "sk-test-77aa"
    assert base64.b64decode(secrets["redis-password"]["data"]["password"]).decode() == "pw-31d7"
    assert all(i["metadata"]["namespace"] == "dox-asdlc" for i in sent["items"])
    args = (tmp_path / "calls.args").read_text()
    for value in VALUES.values():
        if value != "bot":
            assert value not in proc.stdout + proc.stderr + args
    assert not list(repo_copy.rglob("*secret*.json"))


def test_minikube_secrets_names_every_missing_variable(repo_copy, tmp_path):
    kubectl, _ = fake_kubectl(tmp_path)
    proc = run_dox(repo_copy, "minikube-secrets",
                   env={"DOX_KUBECTL": str(kubectl), "DOX_GIT_USERNAME": "", "DOX_GIT_TOKEN": "",
                        "ANTHROPIC_API_KEY": "", "DOX_REDIS_PASSWORD": ""})
    assert proc.returncode == 2
    assert "ANTHROPIC_API_KEY, DOX_GIT_TOKEN, DOX_GIT_USERNAME, DOX_REDIS_PASSWORD" in proc.stderr
    assert_no_traceback(proc)


def test_argocd_bootstrap_applies_project_then_root_application(repo_copy, tmp_path):
    kubectl, log = fake_kubectl(tmp_path)
    proc = run_dox(repo_copy, "argocd-bootstrap", "--env", "prod", env={"DOX_KUBECTL": str(kubectl)})
    assert proc.returncode == 0, proc.stderr
    calls = (tmp_path / "calls.args").read_text().splitlines()
    assert [c.rsplit("/", 1)[-1] for c in calls] == ["appproject-dox-asdlc-prod-bootstrap.yaml",
                                                     "application-dox-asdlc-prod-root.yaml"]
    proc = run_dox(repo_copy, "argocd-bootstrap", env={"DOX_KUBECTL": str(kubectl)})
    assert proc.returncode == 2 and "name one environment" in proc.stderr
