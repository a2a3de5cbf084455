"""A known credential planted in a Secret-like object appears in no output of render, validate or diff,
whatever the verbosity (there is none to raise: every task prints the same messages)."""

from __future__ import annotations

import subprocess

from tests.conftest import run_dox

PLANTED = "sk-ant-PLANTED-7f3c9a1e5b2d4c6e8f0a"
SECRET = f"""apiVersion: v1
kind: Secret
metadata: {{name: planted, namespace: dox-asdlc}}
type: Opaque
stringData:
  api-key: {PLANTED}
  note: "token={PLANTED}"
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: planted-config, namespace: dox-asdlc}}
data:
  DATABASE_URL: "postgres://app:{PLANTED}@db:5432/app"
  settings.conf: |
    password {PLANTED}
"""


def git(repo, *args):
    subprocess.run(["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args], cwd=repo, check=True,
                   capture_output=True)


def test_planted_credential_is_never_printed(repo_copy):
    git(repo_copy, "init", "-q", "-b", "main")
    git(repo_copy, "add", "-A")
    git(repo_copy, "commit", "-qm", "base")
    (repo_copy / "environments/prod/planted.yaml").write_text(SECRET)
    kfile = repo_copy / "environments/prod/kustomization.yaml"
    kfile.write_text(kfile.read_text().replace("helmCharts:", "resources:\n  - planted.yaml\nhelmCharts:"))
    outputs = []
    for args in (["render", "--env", "prod"], ["validate", "--env", "prod"], ["validate", "--env", "prod", "--format", "json"],
                 ["validate", "--env", "prod", "--format", "sarif"], ["validate", "--env", "prod", "--format", "junit"],
                 ["diff", "--env", "prod"], ["diff", "--env", "prod", "--format", "json"],
                 ["diff", "--env", "prod", "--format", "markdown"], ["render", "--check"]):
        proc = run_dox(repo_copy, *args)
        outputs.append((args, proc.returncode, proc.stdout + proc.stderr))
    codes = {tuple(a): c for a, c, _ in outputs}
    assert codes[("validate", "--env", "prod")] == 1  # the planted Secret is found...
    assert "(no-secret-data)" in outputs[1][2] and "(no-credentials)" in outputs[1][2]
    assert "+ Secret dox-asdlc/planted will be created" in outputs[5][2]  # ...and shown as a change
    for args, _, text in outputs:
        assert PLANTED not in text, f"the credential leaked in ./dox {' '.join(args)}"
        assert "PLANTED" not in text, f"part of the credential leaked in ./dox {' '.join(args)}"
