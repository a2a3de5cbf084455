"""A corpus of bad inputs: each ends in its exit code and a message that says where, never a traceback,
and never a changed rendered/."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import assert_no_traceback, copy_repo, run_dox


def tree(directory: Path) -> dict[str, str]:
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file() and not p.name.startswith(".")}


def edit(repo: Path, rel: str, old: str, new: str) -> None:
    path = repo / rel
    text = path.read_text()
    assert old in text, (rel, old)
    path.write_text(text.replace(old, new, 1))


def append(repo: Path, rel: str, text: str) -> None:
    path = repo / rel
    path.write_text(path.read_text() + text)


def write(repo: Path, rel: str, data: str | bytes) -> None:
    path = repo / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode())


def add_resource(repo: Path, env: str, name: str, text: str) -> None:
    write(repo, f"environments/{env}/{name}", text)
    edit(repo, f"environments/{env}/kustomization.yaml", "helmCharts:", f"resources:\n  - {name}\nhelmCharts:")


EXTRA_SERVICE = """apiVersion: v1
kind: Service
metadata: {name: %s, namespace: %s}
spec:
  selector: {app.kubernetes.io/name: redis}
  ports: [{port: 6379}]
"""

# (id, mutate(repo), command, exit code, words that must appear in the message)
CASES = [
    ("malformed-yaml-in-values",
     lambda r: append(r, "environments/prod/values.yaml", "workers:\n  image: [unclosed\n"),
     ["render", "--env", "prod"], 2, ["environments/prod/values.yaml:", "invalid YAML"]),
    ("malformed-yaml-in-overlay",
     lambda r: edit(r, "environments/minikube/kustomization.yaml", "kind: Kustomization", "kind: Kustomization\n  bad: : indent"),
     ["render", "--env", "minikube"], 2, ["environments/minikube/kustomization.yaml:", "invalid YAML"]),
    ("duplicate-key",
     lambda r: append(r, "environments/prod/values.yaml", "redis:\n  persistence: {mode: rdb}\n"),
     ["render", "--env", "prod"], 2, ["environments/prod/values.yaml:", "duplicate key 'redis'"]),
    ("unknown-values-key",
     lambda r: edit(r, "environments/prod/values.yaml", "  minReplicas: 2", "  minReplica: 2"),
     ["render", "--env", "prod"], 2, ["environments/prod/values.yaml:", "workers.minReplica", "not allowed"]),
    ("wrong-type",
     lambda r: edit(r, "environments/prod/values.yaml", "  maxReplicas: 10", "  maxReplicas: ten"),
     ["render", "--env", "prod"], 2, ["environments/prod/values.yaml:", "workers.maxReplicas", "want integer"]),
    ("missing-chart-dependency",
     lambda r: shutil.rmtree(r / "helm/dox-asdlc/charts/redis"),
     ["render", "--env", "prod"], 2, ["environments/prod", "redis", "missing"]),
    ("template-error",
     lambda r: append(r, "helm/dox-asdlc/charts/workers/templates/service.yaml", "\n{{ .Values.nope.deeper }}\n"),
     ["render", "--env", "prod"], 2, ["charts/workers/templates/service.yaml", "nil pointer"]),
    ("patch-matches-nothing",
     lambda r: edit(r, "environments/prod/argocd/kustomization.yaml", "name: dox-asdlc-ENV}", "name: no-such-project}"),
     ["render", "--env", "prod"], 2, ["environments/prod/argocd/kustomization.yaml", "patches[0]", "matches no resource"]),
    ("environment-without-kustomization",
     lambda r: write(r, "environments/staging/values.yaml", "workers: {}\n"),
     ["render"], 2, ["environments/staging", "needs a kustomization.yaml", "values.yaml"]),
    ("same-kind-namespace-name-twice",
     lambda r: add_resource(r, "prod", "extra.yaml", EXTRA_SERVICE % ("redis", "dox-asdlc")),
     ["render", "--env", "prod"], 2, ["environments/prod", "Service", "redis"]),
    ("resource-in-wrong-namespace",
     lambda r: (add_resource(r, "prod", "extra.yaml", EXTRA_SERVICE % ("redis-extra", "default")),
                run_dox(r, "render", "--env", "prod")),
     ["validate", "--env", "prod"], 1, ["rendered/prod/workloads/service-redis-extra.yaml", "(namespace)"]),
    ("not-a-kubernetes-object",
     lambda r: write(r, "bad/list.yaml", "- just\n- a list\n"),
     ["validate", "--path", "bad"], 2, ["bad/list.yaml:1", "not a Kubernetes object"]),
    ("empty-file",
     lambda r: write(r, "bad/empty.yaml", ""),
     ["validate", "--path", "bad"], 2, ["bad/empty.yaml", "empty file"]),
    ("binary-file",
     lambda r: write(r, "bad/blob.yaml", b"\x7fELF\x00\x01\x02binary"),
     ["validate", "--path", "bad"], 2, ["bad/blob.yaml", "binary file"]),
    ("ten-megabyte-values-file",
     lambda r: append(r, "environments/prod/values.yaml", "# " + "x" * 79 + "\n" * 1 + ("# " + "y" * 98 + "\n") * 100_000),
     ["render", "--env", "prod"], 2, ["environments/prod/values.yaml", "MB limit"]),
    ("kustomization-pointing-outside",
     lambda r: edit(r, "environments/prod/kustomization.yaml", "valuesFile: ../../apps/dox-asdlc/values.yaml",
                    "valuesFile: /etc/passwd"),
     ["render", "--env", "prod"], 2, ["environments/prod/kustomization.yaml", "outside the repository"]),
    ("remote-resource",
     lambda r: edit(r, "environments/prod/kustomization.yaml", "helmCharts:",
                    "resources:\n  - https://github.com/example/manifests//base\nhelmCharts:"),
     ["render", "--env", "prod"], 2, ["environments/prod/kustomization.yaml", "remote source"]),
    ("argocd-application-missing-path",
     lambda r: (edit(r, "argocd/base/application-workloads.yaml", "path: rendered/ENV/workloads",
                     "path: rendered/ENV/workload"), run_dox(r, "render", "--env", "prod")),
     ["validate", "--env", "prod"], 1, ["rendered/prod/argocd/application-dox-asdlc-prod.yaml:", "does not exist"]),
    ("rule-config-unknown-rule",
     lambda r: append(r, "policy.yaml", "  no-such-rule: {level: error}\n"),
     ["validate", "--env", "prod"], 2, ["dox validate: policy.yaml:", "unknown rule 'no-such-rule'"]),
    ("exemption-without-reason",
     lambda r: (edit(r, "rendered/prod/workloads/service-redis.yaml", "    argocd.argoproj.io/sync-wave:",
                     "    exempt.dox-asdlc.io/probes: ''\n    argocd.argoproj.io/sync-wave:")),
     ["validate", "--env", "prod"], 1, ["rendered/prod/workloads/service-redis.yaml:", "has no reason"]),
    ("credential-in-values-file",
     lambda r: edit(r, "environments/prod/values.yaml", "    host: hitl.dox-asdlc.example.com",
                    "    host: hitl.dox-asdlc.example.com\n    annotations: {aws-key: AKIAZ3MSJV4WWNKWW5FG}"),
     ["validate", "--env", "prod"], 1, ["environments/prod/values.yaml:", "aws-access-token", "(no-credentials)"]),
    ("corrupt-render-cache",
     lambda r: (run_dox(r, "render"), write(r, ".dox/render-cache/prod.json", "{not json")),
     ["render"], 0, ["render cache .dox/render-cache/prod.json is corrupt"]),
    ("unknown-environment",
     lambda r: None,
     ["validate", "--env", "qa"], 2, ["unknown environment qa"]),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input(tmp_path, case):
    _, mutate, command, code, words = case
    repo = copy_repo(tmp_path / "repo")
    before = tree(repo / "rendered")
    outcome = mutate(repo)
    if isinstance(outcome, tuple) and any(isinstance(o, subprocess.CompletedProcess) for o in outcome):
        before = tree(repo / "rendered")  # the case rendered on purpose before the command under test
    proc = run_dox(repo, *command)
    output = proc.stdout + proc.stderr
    assert proc.returncode == code, output
    for word in words:
        assert word in output, f"{word!r} not in:\n{output}"
    assert_no_traceback(proc)
    if command[0] == "render" and code != 0:
        assert tree(repo / "rendered") == before, "a failed render changed rendered/"


def test_wrong_version_tool_is_refused_with_exit_3(repo_copy, tmp_path):
    fake = tmp_path / "helm"
    fake.write_text("#!/bin/sh\necho v3.15.0\n")
    fake.chmod(0o755)
    proc = run_dox(repo_copy, "render", "--force", env={"DOX_HELM": str(fake)})
    assert proc.returncode == 3 and "DOX_HELM=" in proc.stderr and "v4.3.1" in proc.stderr
    assert_no_traceback(proc)


def test_corrupt_tool_cache_is_detected(repo_copy, tmp_path):
    cache = tmp_path / "cache"
    from doxops import toolchain

    spec = toolchain.load_specs()["kubeconform"]
    broken = cache / "tools" / f"kubeconform-{spec.version}" / "kubeconform"
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"\x00corrupt")
    broken.chmod(0o755)
    # the credential scanner's gitleaks is intact (linked with its stamp, as the session links tools), so the
    # policy rules, which run beside kubeconform, do not stop first for want of Go to build it
    gitleaks = toolchain.resolve("gitleaks").path
    (cache / "tools" / gitleaks.parent.name).mkdir()
    (cache / "tools" / gitleaks.parent.name / "gitleaks").symlink_to(gitleaks)
    shutil.copy2(gitleaks.parent / ".checked.json", cache / "tools" / gitleaks.parent.name / ".checked.json")
    (repo_copy / "bad").mkdir()
    (repo_copy / "bad/cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    proc = run_dox(repo_copy, "validate", "--path", "bad",
                   env={"DOX_CACHE_DIR": str(cache), "PATH": os.path.dirname(sys.executable)})
    assert proc.returncode == 3
    assert "cached binary" in proc.stderr and "broken" in proc.stderr and "install Go" in proc.stderr
    assert_no_traceback(proc)


def test_shallow_clone_without_the_base_says_how_to_fetch(tmp_path):
    source = copy_repo(tmp_path / "source")
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "one"],
                 ["commit", "-q", "--allow-empty", "-m", "two"]):
        subprocess.run(["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args], cwd=source, check=True)
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{source}", str(clone)], check=True)
    proc = run_dox(clone, "diff", "--base", "HEAD~1", "--head", "HEAD")
    assert proc.returncode == 2 and "git fetch --unshallow" in proc.stderr
    assert_no_traceback(proc)


def test_two_renders_at_once_wait_for_each_other(repo_copy):
    env = {**os.environ, "PYTHONPATH": str(repo_copy)}
    procs = [subprocess.Popen([sys.executable, "-m", "doxops", "render", "--force"], cwd=repo_copy, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.wait(timeout=120), p.stderr.read()) for p in procs]
    assert [code for code, _ in results] == [0, 0]
    assert any("another render is running" in err for _, err in results)
    assert run_dox(repo_copy, "render", "--check").returncode == 0


def test_replacement_file_outside_the_repository_is_refused(repo_copy, tmp_path):
    outside = tmp_path / "outside-replacement.yaml"
    outside.write_text("source: {kind: ConfigMap, name: orchestrator, fieldPath: data.LOG_LEVEL}\ntargets: []\n")
    edit(repo_copy, "environments/prod/kustomization.yaml", "helmCharts:", f"replacements:\n  - path: {outside}\nhelmCharts:")
    before = tree(repo_copy / "rendered")
    proc = run_dox(repo_copy, "render", "--env", "prod")
    assert proc.returncode == 2 and "replacements.path" in proc.stderr and "outside the repository" in proc.stderr
    assert tree(repo_copy / "rendered") == before


def test_symlink_in_the_chart_pointing_outside_is_refused(repo_copy, tmp_path):
    outside = tmp_path / "planted.yaml"
    outside.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: planted}\n")
    (repo_copy / "helm/dox-asdlc/templates/zz-planted.yaml").symlink_to(outside)
    proc = run_dox(repo_copy, "render", "--env", "prod")
    assert proc.returncode == 2
    assert "helm/dox-asdlc/templates/zz-planted.yaml" in proc.stderr and "outside the repository" in proc.stderr
    assert_no_traceback(proc)


def test_render_cache_follows_files_outside_the_usual_directories(repo_copy):
    write(repo_copy, "shared/extra.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: extra, namespace: dox-asdlc}\n"
                                          "data: {k: one}\n")
    edit(repo_copy, "environments/prod/kustomization.yaml", "helmCharts:", "resources:\n  - ../../shared/extra.yaml\nhelmCharts:")
    assert run_dox(repo_copy, "render", "--env", "prod").returncode == 0
    edit(repo_copy, "shared/extra.yaml", "k: one", "k: two")
    proc = run_dox(repo_copy, "render", "--env", "prod")
    assert proc.returncode == 0 and "cached" not in proc.stderr
    assert "k: two" in (repo_copy / "rendered/prod/workloads/configmap-extra.yaml").read_text()
    assert "unchanged (cached)" in run_dox(repo_copy, "render", "--env", "prod").stderr


@pytest.mark.parametrize("field, value", [("helmGlobals", "[x]"), ("helmCharts", "[just-a-string]"),
                                          ("resources", "{a: b}")])
def test_kustomization_field_of_the_wrong_type_is_a_usage_error(repo_copy, field, value):
    append(repo_copy, "environments/minikube/kustomization.yaml", f"{field}: {value}\n") if field == "resources" else \
        edit(repo_copy, "environments/minikube/kustomization.yaml", f"{field}:", f"{field}: {value}\nunused_{field}:")
    proc = run_dox(repo_copy, "render", "--env", "minikube")
    assert proc.returncode == 2, proc.stderr
    assert "environments/minikube/kustomization.yaml" in proc.stderr and field in proc.stderr
    assert_no_traceback(proc)
