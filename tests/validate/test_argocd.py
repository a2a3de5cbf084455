"""Argo CD rules: projects allow exactly what Applications deploy; paths hold rendered output; sync policy."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from doxops.paths import REPO_ROOT
from doxops.validate import engine
from doxops.validate.manifests import load_directory
from tests.validate.helpers import config

PROJECT = """
apiVersion: argoproj.io/v1alpha1
kind: AppProject
metadata: {name: shop, namespace: argocd}
spec:
  sourceRepos: ["file:///repo"]
  destinations: [{server: "https://kubernetes.default.svc", namespace: shop}]
  clusterResourceWhitelist: [{group: "", kind: Namespace}]
  namespaceResourceWhitelist: [{group: apps, kind: Deployment}]
---
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: shop, namespace: argocd, finalizers: [resources-finalizer.argocd.argoproj.io/foreground]}
spec:
  project: %(project)s
  source: {repoURL: "file:///repo", path: %(path)s, targetRevision: main}
  destination: {server: "https://kubernetes.default.svc", namespace: %(namespace)s}
  syncPolicy: {automated: {prune: true, selfHeal: true}, retry: {limit: 3}}
"""

WORKLOADS = """
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: shop, namespace: shop}
spec:
  selector: {matchLabels: {app: shop}}
  template: {metadata: {labels: {app: shop}}, spec: {containers: [{name: c, image: "c:1.0.0"}]}}
"""


def run(tmp_path: Path, rule: str, extra_workloads: str = "", **values) -> list:
    params = {"project": "shop", "path": "rendered/shop/workloads", "namespace": "shop", **values}
    (tmp_path / "rendered/shop/workloads").mkdir(parents=True)
    (tmp_path / "rendered/shop/workloads/all.yaml").write_text(textwrap.dedent(WORKLOADS) + extra_workloads)
    (tmp_path / "rendered/shop/argocd").mkdir(parents=True)
    (tmp_path / "rendered/shop/argocd/apps.yaml").write_text(textwrap.dedent(PROJECT % params))
    manifests = load_directory(tmp_path / "rendered/shop/argocd")
    return [d for d in engine.run(manifests, config=config(), root=tmp_path, only=[rule]) if d.rule == rule]


@pytest.mark.parametrize("rule", ["argocd-project", "argocd-source", "argocd-sync"])
def test_good_project_and_application_pass(tmp_path, rule):
    assert run(tmp_path, rule) == []


def test_extra_cluster_scoped_kind_is_caught_by_the_project_rule(tmp_path):
    found = run(tmp_path, "argocd-project", "---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\n"
                                            "metadata: {name: reader}\nrules: []\n")
    assert [d.message for d in found] == [
        "AppProject argocd/shop does not allow cluster-scoped kind rbac.authorization.k8s.io/ClusterRole, which "
        "Application argocd/shop deploys from all.yaml; add it to the whitelist or stop rendering it"]


def test_default_project_and_unused_whitelist_entries_fail(tmp_path):
    assert "uses the default project" in run(tmp_path, "argocd-project", project="default")[0].message
    shutil.rmtree(tmp_path / "rendered")
    text = WORKLOADS.replace("kind: Deployment", "kind: StatefulSet").replace("spec:\n  selector", "spec:\n  serviceName: s\n  selector")
    (tmp_path / "x").mkdir()
    found = run(tmp_path / "x", "argocd-project")
    assert found == []  # sanity: the fixture itself is exact
    (tmp_path / "x/rendered/shop/workloads/all.yaml").write_text(textwrap.dedent(text))
    manifests = load_directory(tmp_path / "x/rendered/shop/argocd")
    messages = [d.message for d in engine.run(manifests, config=config(), root=tmp_path / "x", only=["argocd-project"])]
    assert any("allows apps/Deployment, which none of its Applications deploys" in m for m in messages)
    assert any("does not allow namespaced kind apps/StatefulSet" in m for m in messages)


def test_missing_path_and_wrong_namespace_fail_the_source_rule(tmp_path):
    found = run(tmp_path, "argocd-source", path="rendered/staging/workloads")
    assert "does not exist in the repository" in found[0].message
    found = run(tmp_path / "b", "argocd-source", namespace="default")
    assert "destination namespace default differs from the rendered namespace shop" in found[0].message


def test_manual_sync_and_missing_finalizer_fail_the_sync_rule(tmp_path):
    (tmp_path / "a").mkdir()
    run(tmp_path / "a", "argocd-sync")
    path = tmp_path / "a/rendered/shop/argocd/apps.yaml"
    path.write_text(path.read_text().replace("finalizers: [resources-finalizer.argocd.argoproj.io/foreground]", "labels: {}")
                    .replace("syncPolicy: {automated: {prune: true, selfHeal: true}, retry: {limit: 3}}", "syncPolicy: {}"))
    manifests = load_directory(path.parent)
    messages = [d.message for d in engine.run(manifests, config=config(), root=tmp_path / "a", only=["argocd-sync"])]
    assert any("no automated sync" in m for m in messages)
    assert any("without the resources-finalizer.argocd.argoproj.io/foreground finalizer" in m for m in messages)


def test_committed_applications_point_at_existing_rendered_paths():
    for env in ("minikube", "prod"):
        apps = [m for m in load_directory(REPO_ROOT / "rendered" / env / "argocd") if m.kind == "Application"]
        paths = sorted(m.data["spec"]["source"]["path"] for m in apps)
        assert paths == [f"rendered/{env}/argocd", f"rendered/{env}/workloads"]
        assert all(any((REPO_ROOT / p).glob("*.yaml")) for p in paths)


def test_namespace_and_stateful_volumes_are_protected():
    for env in ("minikube", "prod"):
        objs = {(m.kind, m.name): m for m in load_directory(REPO_ROOT / "rendered" / env / "workloads")}
        ns = objs[("Namespace", "dox-asdlc")]
        assert "Delete=false" in ns.annotations["argocd.argoproj.io/sync-options"]
        for name in ("redis", "knowledge-store"):
            sts = objs[("StatefulSet", name)]
            assert "Delete=false" in sts.annotations["argocd.argoproj.io/sync-options"]
            assert sts.data["spec"]["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain",
                                                                                "whenScaled": "Retain"}
        assert "replicas" not in objs[("Deployment", "workers")].data["spec"]


def test_the_child_application_is_never_pruned_or_deleted_by_the_root_and_prune_follows_settings():
    import yaml as pyyaml

    for env in ("minikube", "prod"):
        settings = pyyaml.safe_load((REPO_ROOT / "environments" / env / "argocd" / "settings.yaml").read_text())
        apps = {m.name: m for m in load_directory(REPO_ROOT / "rendered" / env / "argocd") if m.kind == "Application"}
        child, root = apps[f"dox-asdlc-{env}"], apps[f"dox-asdlc-{env}-root"]
        assert child.annotations["argocd.argoproj.io/sync-options"] == "Prune=false,Delete=false"
        for app in (child, root):
            assert app.data["spec"]["syncPolicy"]["automated"]["prune"] is settings["spec"]["prune"]


def test_volume_claim_templates_are_written_as_the_api_server_defaults_them():
    for env in ("minikube", "prod"):
        for name in ("redis", "knowledge-store"):
            sts = next(m for m in load_directory(REPO_ROOT / "rendered" / env / "workloads")
                       if m.kind == "StatefulSet" and m.name == name)
            for claim in sts.data["spec"]["volumeClaimTemplates"]:
                assert (claim["apiVersion"], claim["kind"], claim["spec"]["volumeMode"]) == (
                    "v1", "PersistentVolumeClaim", "Filesystem")
