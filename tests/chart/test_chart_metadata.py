"""Metadata of every object: namespace, standard labels, provenance and Argo CD annotations."""

from __future__ import annotations

import pytest

from .conftest import Rendered, render

STANDARD_LABELS = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/component",
    "app.kubernetes.io/part-of",
    "app.kubernetes.io/managed-by",
    "helm.sh/chart",
    "dox-asdlc.io/role",
)
# app.kubernetes.io/name -> (component, dox-asdlc.io/role)
IDENTITIES = {
    "orchestrator": ("orchestrator", "singleton"),
    "workers": ("worker", "autoscaled-pool"),
    "hitl-ui": ("ui", "web"),
    "redis": ("event-store", "stateful"),
    "knowledge-store": ("knowledge-store", "stateful"),
    "dox-asdlc": ("base", "base"),
}
CLUSTER_SCOPED = {"Namespace"}
WAVE_BASE = {"Namespace", "ServiceAccount", "ConfigMap", "NetworkPolicy", "ExternalSecret"}
WAVE_STATELESS = {"Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Ingress"}


def test_every_object_is_in_the_platform_namespace(any_render: Rendered) -> None:
    for obj in any_render.objects:
        if obj["kind"] in CLUSTER_SCOPED:
            assert "namespace" not in obj["metadata"]
        else:
            assert obj["metadata"]["namespace"] == "dox-asdlc", obj["metadata"]["name"]


def test_namespace_is_one_value() -> None:
    rendered = render({"global": {"namespace": "asdlc-test"}})
    assert rendered.get("Namespace", "asdlc-test")
    assert {o["metadata"].get("namespace") for o in rendered.objects} == {None, "asdlc-test"}
    assert rendered.get("ConfigMap", "workers")["data"]["REDIS_HOST"] == "redis.asdlc-test.svc.cluster.local"


def test_the_expected_objects_are_rendered(default_render: Rendered) -> None:
    assert sorted(default_render.index) == sorted([
        ("Namespace", "dox-asdlc"),
        ("NetworkPolicy", "default-deny"),
        *((kind, name) for name in IDENTITIES if name != "dox-asdlc"
          for kind in ("NetworkPolicy", "ServiceAccount", "Service")),
        ("Service", "redis-headless"), ("Service", "knowledge-store-headless"),
        ("ConfigMap", "orchestrator"), ("ConfigMap", "workers"), ("ConfigMap", "hitl-ui"), ("ConfigMap", "redis"),
        ("Deployment", "orchestrator"), ("Deployment", "workers"), ("Deployment", "hitl-ui"),
        ("StatefulSet", "redis"), ("StatefulSet", "knowledge-store"),
        ("HorizontalPodAutoscaler", "workers"), ("PodDisruptionBudget", "workers"),
    ])  # fmt: skip


@pytest.mark.parametrize("release", ["dox-asdlc", "foo"])
def test_standard_labels_on_every_object_and_pod(release: str) -> None:
    rendered = render(release=release)
    for obj in rendered.objects:
        metas = [obj["metadata"]]
        if obj["kind"] in ("Deployment", "StatefulSet"):
            metas.append(obj["spec"]["template"]["metadata"])
        for meta in metas:
            labels = meta["labels"]
            where = f"{obj['kind']}/{obj['metadata']['name']}"
            for label in STANDARD_LABELS:
                assert labels.get(label), f"{where}: no {label}"
            assert labels["app.kubernetes.io/instance"] == release
            assert labels["app.kubernetes.io/part-of"] == "dox-asdlc"
            assert labels["app.kubernetes.io/managed-by"] == "Helm"
            component, role = IDENTITIES[labels["app.kubernetes.io/name"]]
            assert (labels["app.kubernetes.io/component"], labels["dox-asdlc.io/role"]) == (component, role), where
            assert labels["helm.sh/chart"].startswith(labels["app.kubernetes.io/name"] + "-")


def test_selectors_use_only_name_and_instance(any_render: Rendered) -> None:
    immutable = {"app.kubernetes.io/name", "app.kubernetes.io/instance"}
    for obj in any_render.objects:
        spec = obj.get("spec", {})
        if obj["kind"] in ("Deployment", "StatefulSet", "PodDisruptionBudget"):
            assert set(spec["selector"]["matchLabels"]) == immutable
        if obj["kind"] == "Service":
            assert set(spec["selector"]) == immutable
        if obj["kind"] == "StatefulSet":
            for claim in spec["volumeClaimTemplates"]:
                assert set(claim["metadata"].get("labels", {})) <= immutable, "claim templates are immutable"


def test_provenance_annotation_on_every_top_level_object_only(any_render: Rendered) -> None:
    for key, obj in any_render.index.items():
        annotations = obj["metadata"]["annotations"]
        assert annotations["dox-asdlc.io/template"] == any_render.sources[key], key
        if obj["kind"] in ("Deployment", "StatefulSet"):
            pod_annotations = obj["spec"]["template"]["metadata"].get("annotations", {})
            assert "dox-asdlc.io/template" not in pod_annotations


def expected_wave(obj: dict) -> str:
    kind, name = obj["kind"], obj["metadata"]["name"]
    if kind in WAVE_BASE:
        return "-1"
    if kind == "StatefulSet" or kind == "Service" and obj["metadata"]["labels"]["dox-asdlc.io/role"] == "stateful":
        return "1"
    assert kind in WAVE_STATELESS | {"Service"}, f"no wave expected for {kind}/{name}"
    return "2"


def test_argo_cd_sync_waves(any_render: Rendered) -> None:
    for obj in any_render.objects:
        wave = obj["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"]
        assert wave == expected_wave(obj), f"{obj['kind']}/{obj['metadata']['name']}"


def test_argo_cd_and_helm_never_delete_the_namespace_or_the_state(any_render: Rendered) -> None:
    namespace = any_render.get("Namespace", "dox-asdlc")["metadata"]["annotations"]
    assert namespace["argocd.argoproj.io/sync-options"] == "Delete=false,Prune=false"
    assert namespace["helm.sh/resource-policy"] == "keep"
    for name in ("redis", "knowledge-store"):
        sts = any_render.get("StatefulSet", name)["metadata"]["annotations"]
        assert sts["argocd.argoproj.io/sync-options"] == "Delete=false,Prune=false"


def test_extra_annotations_cannot_override_the_chart_s_own() -> None:
    rendered = render({"hitlUI": {"ingress": {"enabled": True, "annotations": {
        "argocd.argoproj.io/sync-wave": "9", "example.com/owner": "ui-team"}}}})  # fmt: skip
    annotations = rendered.get("Ingress", "hitl-ui")["metadata"]["annotations"]
    assert annotations["argocd.argoproj.io/sync-wave"] == "2"
    assert annotations["example.com/owner"] == "ui-team"
