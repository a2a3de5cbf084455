"""Render: environment differences, byte stability, discovery, --check, crash consistency."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
import yaml

from doxops.paths import REPO_ROOT
from tests.conftest import assert_no_traceback, copy_repo, run_dox

RENDERED = REPO_ROOT / "rendered"


def objects(env: str) -> list[dict]:
    return [yaml.safe_load(p.read_text()) for p in sorted((RENDERED / env).rglob("*.yaml"))]


def tree(directory: Path) -> dict[str, str]:
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def test_nodeport_30000_only_on_minikube():
    def node_ports(env):
        return [p.get("nodePort") for o in objects(env) if o["kind"] == "Service"
                for p in o["spec"].get("ports", []) if "nodePort" in p]
    assert node_ports("minikube") == [30000]
    assert node_ports("prod") == []
    prod_ui = next(o for o in objects("prod") if o["kind"] == "Service" and o["metadata"]["name"] == "hitl-ui")
    assert prod_ui["spec"]["type"] == "ClusterIP"


def test_ingress_only_in_prod():
    assert [o["metadata"]["name"] for o in objects("prod") if o["kind"] == "Ingress"] == ["hitl-ui"]
    assert [o for o in objects("minikube") if o["kind"] == "Ingress"] == []


def test_external_secrets_only_in_prod_and_no_secret_with_data_anywhere():
    assert {o["kind"] for o in objects("prod")} >= {"ExternalSecret"}
    assert "ExternalSecret" not in {o["kind"] for o in objects("minikube")}
    for env in ("minikube", "prod"):
        assert not [o for o in objects(env) if o["kind"] == "Secret" and (o.get("data") or o.get("stringData"))]


def test_no_latest_tag_anywhere_and_local_images_on_minikube():
    for env in ("minikube", "prod"):
        for o in objects(env):
            spec = (o.get("spec") or {}).get("template", {}).get("spec", {})
            for c in spec.get("containers", []) + spec.get("initContainers", []):
                image = c["image"]
                assert ":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest"), image
                if env == "minikube" and image.startswith("dox-asdlc/"):
                    assert c["imagePullPolicy"] == "Never" and image.endswith(":dev-local")


def test_every_file_names_its_kind_and_name_and_its_source():
    for env in ("minikube", "prod"):
        for path in (RENDERED / env).rglob("*.yaml"):
            text = path.read_text()
            obj = yaml.safe_load(text)
            assert path.name.startswith(f"{obj['kind'].lower()}-") and obj["metadata"]["name"] in path.name
            assert "# Source: " in text.split("---", 1)[0], path
            assert "config.kubernetes.io/origin" not in text


def test_committed_output_is_fresh(repo_copy):
    proc = run_dox(repo_copy, "render", "--check")
    assert proc.returncode == 0, proc.stderr


def test_check_names_stale_files_and_exits_1(repo_copy):
    target = repo_copy / "rendered/prod/workloads/service-redis.yaml"
    target.write_text(target.read_text() + "# edited by hand\n")
    (repo_copy / "rendered/minikube/workloads/service-redis.yaml").unlink()
    proc = run_dox(repo_copy, "render", "--check")
    assert proc.returncode == 1
    assert "rendered/prod/workloads/service-redis.yaml: differs" in proc.stderr
    assert "rendered/minikube/workloads/service-redis.yaml: missing" in proc.stderr
    assert target.read_text().endswith("# edited by hand\n")  # --check never writes


def test_bytes_identical_under_other_timezone_locale_umask_and_hash_seed(tmp_path):
    outputs = []
    for i, (tz, lang, umask, seed) in enumerate([("UTC", "C.UTF-8", 0o022, "0"),
                                                 ("Asia/Kolkata", "de_DE.UTF-8", 0o077, "12345")]):
        repo = copy_repo(tmp_path / f"r{i}")
        shutil.rmtree(repo / "rendered")
        proc = run_dox(repo, "render", env={"TZ": tz, "LANG": lang, "LC_ALL": lang, "PYTHONHASHSEED": seed},
                       umask=umask)
        assert proc.returncode == 0, proc.stderr
        outputs.append({k: (v, oct((repo / "rendered" / k).stat().st_mode & 0o777))
                        for k, v in tree(repo / "rendered").items()})
    assert outputs[0] == outputs[1]
    assert outputs[0] and tree(RENDERED) == {k: v[0] for k, v in outputs[0].items()}


def test_copied_environment_renders_with_no_code_change(repo_copy):
    shutil.copytree(repo_copy / "environments/minikube", repo_copy / "environments/staging")
    proc = run_dox(repo_copy, "render", "--env", "staging")
    assert proc.returncode == 0, proc.stderr
    proc = run_dox(repo_copy, "validate", "--env", "staging")  # the copy still names minikube in its settings
    assert proc.returncode == 1 and "set spec.environment: staging" in proc.stdout
    settings = repo_copy / "environments/staging/argocd/settings.yaml"
    settings.write_text(settings.read_text().replace("environment: minikube", "environment: staging"))
    proc = run_dox(repo_copy, "render", "--env", "staging")
    assert proc.returncode == 0, proc.stderr
    staging, minikube = tree(repo_copy / "rendered/staging"), tree(repo_copy / "rendered/minikube")
    assert {k.replace("staging", "minikube") for k in staging} == minikube.keys() and len(staging) > 20
    proc = run_dox(repo_copy, "validate", "--env", "staging")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_unknown_environment_is_a_usage_error(repo_copy):
    proc = run_dox(repo_copy, "render", "--env", "nowhere")
    assert proc.returncode == 2 and "unknown environment nowhere; known: minikube, prod" in proc.stderr
    assert_no_traceback(proc)


def test_path_leaving_the_repository_is_refused(repo_copy):
    kfile = repo_copy / "environments/prod/kustomization.yaml"
    kfile.write_text(kfile.read_text().replace("chartHome: ../../helm", "chartHome: ../../../../outside"))
    proc = run_dox(repo_copy, "render", "--env", "prod")
    assert proc.returncode == 2
    assert "environments/prod/kustomization.yaml: helmGlobals.chartHome '../../../../outside'" in proc.stderr
    assert "outside the repository" in proc.stderr


@pytest.mark.parametrize("point", ["after-build", "mid-write", "before-swap", "after-swap"])
def test_sigkill_at_any_point_leaves_every_environment_whole(repo_copy, point):
    before = {env: tree(repo_copy / "rendered" / env) for env in ("minikube", "prod")}
    values = repo_copy / "environments/prod/values.yaml"
    values.write_text(values.read_text().replace("maxReplicas: 10", "maxReplicas: 9"))
    killed = run_dox(repo_copy, "render", "--jobs", "1", env={"DOX_FAULT_POINT": point})
    assert killed.returncode == -9, killed.stderr
    after_kill = {env: tree(repo_copy / "rendered" / env) for env in ("minikube", "prod")}
    proc = run_dox(repo_copy, "render")
    assert proc.returncode == 0, proc.stderr
    complete = {env: tree(repo_copy / "rendered" / env) for env in ("minikube", "prod")}
    assert complete["prod"] != before["prod"]
    for env in ("minikube", "prod"):
        assert after_kill[env] in (before[env], complete[env]), f"{env} is half-written after a kill at {point}"
    assert not [p for p in (repo_copy / "rendered").iterdir() if p.name.startswith(".")]


def test_output_of_a_removed_environment_is_stale_and_removed(repo_copy):
    shutil.copytree(repo_copy / "rendered/minikube", repo_copy / "rendered/staging")
    proc = run_dox(repo_copy, "render", "--check")
    assert proc.returncode == 1 and "rendered/staging/: extra" in proc.stderr
    proc = run_dox(repo_copy, "render")
    assert proc.returncode == 0 and "removed rendered/staging" in proc.stderr
    assert not (repo_copy / "rendered/staging").exists()
    assert run_dox(repo_copy, "render", "--check").returncode == 0
