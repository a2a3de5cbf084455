"""diff between git refs on a temporary repository: one field, reorders, additions, masking, bad refs."""

from __future__ import annotations

import json
import subprocess

import pytest
from pathlib import Path
import yaml

from tests.conftest import assert_no_traceback, copy_repo, run_dox


def git(repo, *args):
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    repo = copy_repo(tmp_path_factory.mktemp("diff") / "repo")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "-c", "user.email=t@example.com", "-c", "user.name=t", "add", "-A")
    git(repo, "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "base")
    return repo


def commit_change(repo, edits: dict, message: str) -> None:
    for rel, (old, new) in edits.items():
        path = repo / rel
        text = path.read_text()
        assert old in text, (rel, old)
        path.write_text(text.replace(old, new, 1))
    proc = run_dox(repo, "render")
    assert proc.returncode == 0, proc.stderr
    git(repo, "add", "-A")
    git(repo, "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", message)


def changes(repo, *args) -> list[dict]:
    proc = run_dox(repo, "diff", "--format", "json", *args)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_max_replicas_shows_exactly_that_field_in_each_hpa(repo):
    commit_change(repo, {
        "helm/dox-asdlc/charts/workers/values.yaml": ("maxReplicas: 10", "maxReplicas: 8"),
        "environments/prod/values.yaml": ("maxReplicas: 10", "maxReplicas: 8"),
    }, "max 8")
    found = changes(repo, "--base", "HEAD~1", "--head", "HEAD")
    assert [(c["environment"], c["kind"], c["action"], [f["path"] for f in c["fields"]]) for c in found] == [
        ("minikube", "HorizontalPodAutoscaler", "change", ["spec.maxReplicas"]),
        ("prod", "HorizontalPodAutoscaler", "change", ["spec.maxReplicas"]),
    ]
    assert found[0]["fields"][0]["old"] == 10 and found[0]["fields"][0]["new"] == 8
    text = run_dox(repo, "diff", "--base", "HEAD~1", "--head", "HEAD").stdout
    assert "minikube: 0 to add, 1 to change, 0 to prune, 0 left in the cluster (requires pruning), 0 kept" in text
    assert "spec.maxReplicas: 10 -> 8" in text


def test_reordered_env_vars_are_no_change(repo):
    from doxops import yamlio

    path = repo / "rendered/prod/workloads/deployment-workers.yaml"
    header, body = path.read_text().split("---\n", 1)
    doc = yaml.safe_load(body)
    container = doc["spec"]["template"]["spec"]["containers"][0]
    assert not any("$(" in str(e.get("value", "")) for e in container["env"])
    container["env"].reverse()
    container["ports"] = list(reversed(container.get("ports", [])))
    path.write_text(header + "---\n" + yamlio.dump(doc))
    git(repo, "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qam", "reorder")
    assert changes(repo, "--base", "HEAD~1", "--head", "HEAD") == []
    proc = run_dox(repo, "diff", "--base", "HEAD~1", "--head", "HEAD", "--exit-code")
    assert proc.returncode == 0
    git(repo, "-c", "user.email=t@example.com", "-c", "user.name=t", "revert", "--no-edit", "HEAD")


def test_adding_an_ingress_is_one_added_resource(repo):
    commit_change(repo, {"environments/minikube/values.yaml": (
        "    nodePort: 30000\n", "    nodePort: 30000\n  ingress:\n    enabled: true\n    host: hitl.minikube.test\n")},
        "ingress on minikube")
    found = changes(repo, "--base", "HEAD~1", "--head", "HEAD", "--env", "minikube")
    assert [(c["kind"], c["name"], c["action"]) for c in found if c["kind"] != "AppProject"] == [
        ("Ingress", "hitl-ui", "add")]
    proc = run_dox(repo, "diff", "--base", "HEAD~1", "--head", "HEAD", "--exit-code")
    assert proc.returncode == 1


def test_changed_secret_reference_value_is_masked(repo):
    commit_change(repo, {"apps/dox-asdlc/values.yaml": ("      key: password\n",
                                                        "      key: password\n      remoteRef:\n        key: vault/redis-prod-7f3a\n        property: password\n")},
                  "new remote key")
    proc = run_dox(repo, "diff", "--base", "HEAD~1", "--head", "HEAD", "--env", "prod")
    assert "ExternalSecret dox-asdlc/redis-password will be changed" in proc.stdout
    assert "(masked)" in proc.stdout and "redis-prod-7f3a" not in proc.stdout + proc.stderr


def test_working_tree_is_the_default_head(repo):
    path = repo / "environments/prod/values.yaml"
    original = path.read_text()
    path.write_text(original.replace("minReplicas: 2", "minReplicas: 3"))
    try:
        found = changes(repo, "--env", "prod")
        assert [(c["kind"], [f["path"] for f in c["fields"]]) for c in found] == [
            ("HorizontalPodAutoscaler", ["spec.minReplicas"])]
    finally:
        path.write_text(original)


def test_rerender_builds_both_sides_from_sources(repo):
    found = changes(repo, "--base", "HEAD~1", "--head", "HEAD", "--rerender", "--env", "prod")
    assert [c["kind"] for c in found] == ["ExternalSecret"]


def test_markdown_is_split_into_parts_of_whole_resources():
    from doxops.diff import Change, to_markdown

    many = [Change("~", ("prod", "apps", "Deployment", "ns", f"d{i}"), fields=[("spec.x", "a" * 300, "b" * 300)])
            for i in range(400)]
    parts = to_markdown(many, limit=65536)
    assert len(parts) > 1 and all(len(p) < 65536 for p in parts)
    assert parts[0].startswith("**Part 1 of") and sum(p.count("<details>") for p in parts) == 400


def test_unknown_base_ref_is_a_clear_usage_error(repo):
    proc = run_dox(repo, "diff", "--base", "no-such-branch")
    assert proc.returncode == 2
    assert "unknown git ref 'no-such-branch'" in proc.stderr and "git fetch" in proc.stderr
    assert_no_traceback(proc)


LEAKY_BEFORE = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "n"},
                "stringData": {"name": "OLDSECRET1", "token": "OLDTOKEN2"}}
LEAKY_AFTER = {**LEAKY_BEFORE, "stringData": {"name": "NEWSECRET1", "token": "NEWTOKEN2"}}
CM_BEFORE = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "n"},
             "data": {"redis.conf": "port 6379\nrequirepass OLDPASS3\n", "REDIS_URL": "redis://:OLDPASS4@redis:6379/0",
                      "credentials": "x"},
             "nested": {"credentials": {"pass": "OLDPASS5"}}}
CM_AFTER = {**CM_BEFORE, "data": {"redis.conf": "port 6379\nrequirepass NEWPASS3\n",
                                  "REDIS_URL": "redis://:NEWPASS4@redis:6379/0", "credentials": "y"},
            "nested": {"credentials": {"pass": "NEWPASS5"}}}


@pytest.fixture
def private_cache(tmp_path, monkeypatch):
    """In-process diffs run the credential scanner: its cache goes to a tmp dir, not the user's."""
    monkeypatch.setenv("DOX_CACHE_DIR", str(tmp_path / "cache"))


@pytest.mark.parametrize("fmt", ["text", "json", "markdown"])
def test_no_secret_value_survives_in_any_format(fmt, private_cache):
    from doxops import diff as d

    before = {("e", "", "Secret", "n", "s"): LEAKY_BEFORE, ("e", "", "ConfigMap", "n", "c"): CM_BEFORE}
    after = {("e", "", "Secret", "n", "s"): LEAKY_AFTER, ("e", "", "ConfigMap", "n", "c"): CM_AFTER}
    changes = d.compare(before, after, d.load_settings(Path("/nonexistent")))
    out = {"text": d.to_text, "json": d.to_json, "markdown": lambda c: "".join(d.to_markdown(c))}[fmt](changes)
    assert len(changes) == 2 and "(masked)" in out
    for word in ("SECRET1", "TOKEN2", "PASS3", "PASS4", "PASS5"):
        assert word not in out, f"{word} leaked in {fmt}:\n{out}"
    assert "redis.conf" in out and "stringData" in out  # the change is still shown


def test_a_huge_resource_still_fits_a_comment_part():
    from doxops.diff import Change, to_markdown

    huge = [Change("~", ("prod", "", "ConfigMap", "ns", "big"), fields=[("data.blob", "a" * 80_000, "b" * 80_000)])]
    parts = to_markdown(huge)
    assert all(len(p) < 65536 for p in parts) and "more characters" in parts[-1]


def test_unified_yaml_diff_is_optional_and_masked(private_cache):
    from doxops import diff as d

    plain_before = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "p", "namespace": "n"},
                    "data": {"LOG_LEVEL": "INFO", "MODE": "a"}}
    plain_after = {**plain_before, "data": {"LOG_LEVEL": "DEBUG", "MODE": "a"}}
    before = {("e", "", "Secret", "n", "s"): LEAKY_BEFORE, ("e", "", "ConfigMap", "n", "c"): CM_BEFORE,
              ("e", "", "ConfigMap", "n", "p"): plain_before}
    after = {("e", "", "Secret", "n", "s"): LEAKY_AFTER, ("e", "", "ConfigMap", "n", "c"): CM_AFTER,
             ("e", "", "ConfigMap", "n", "p"): plain_after,
             ("e", "apps", "Deployment", "n", "new"): {"apiVersion": "apps/v1", "kind": "Deployment",
                                                      "metadata": {"name": "new", "namespace": "n"}}}
    changes = d.compare(before, after, d.load_settings(Path("/nonexistent")))
    plain, full = d.to_text(changes), d.to_text(changes, with_unified=True)
    assert "--- a/e/" not in plain
    assert "--- a/e/ConfigMap n/p" in full and "-  LOG_LEVEL: INFO" in full and "+  LOG_LEVEL: DEBUG" in full
    assert "+  name: new" in full  # an added resource shows its content
    assert "(masked)" in full
    for word in ("SECRET1", "TOKEN2", "PASS3", "PASS4", "PASS5"):
        assert word not in full and word not in "".join(d.to_markdown(changes, with_unified=True))
