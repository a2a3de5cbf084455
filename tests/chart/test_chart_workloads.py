"""The design's parameter table and the behaviour of each service's workload, HPA, PDB, Service and Ingress."""

from __future__ import annotations

import pytest

from .conftest import (
    Rendered,
    containers,
    pod_spec,
    render,
)


def container(rendered: Rendered, kind: str, name: str) -> dict:
    (only,) = pod_spec(rendered.get(kind, name))["containers"]
    return only


def service_port(rendered: Rendered, name: str) -> dict:
    (port,) = rendered.get("Service", name)["spec"]["ports"]
    return port


# ---- the parameter table of design P06-F04, with default values


def test_orchestrator_parameters(default_render: Rendered) -> None:
    deployment = default_render.get("Deployment", "orchestrator")
    assert deployment["spec"]["replicas"] == 1
    resources = container(default_render, "Deployment", "orchestrator")["resources"]
    assert resources["requests"]["memory"] == "512Mi"
    assert resources["limits"]["memory"] == "1Gi"


def test_workers_parameters(default_render: Rendered) -> None:
    hpa = default_render.get("HorizontalPodAutoscaler", "workers")["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (2, 10)
    (metric,) = hpa["metrics"]
    assert metric["resource"]["target"]["averageUtilization"] == 70
    resources = container(default_render, "Deployment", "workers")["resources"]
    assert resources["requests"]["memory"] == "256Mi"
    assert resources["limits"]["memory"] == "512Mi"


def test_hitl_ui_parameters(default_render: Rendered) -> None:
    assert default_render.get("Deployment", "hitl-ui")["spec"]["replicas"] == 1
    service = default_render.get("Service", "hitl-ui")["spec"]
    assert service["type"] == "NodePort"
    assert service["ports"][0]["nodePort"] == 30000


# ---- Services


SERVICE_PORTS = {"orchestrator": 8080, "workers": 8081, "hitl-ui": 3000, "redis": 6379, "knowledge-store": 8000}


@pytest.mark.parametrize("release", ["dox-asdlc", "foo"])
def test_services_have_fixed_names_and_ports_whatever_the_release(release: str) -> None:
    rendered = render(release=release)
    for name, port in SERVICE_PORTS.items():
        assert service_port(rendered, name)["port"] == port
        assert rendered.get("Service", name)["metadata"]["namespace"] == "dox-asdlc"
    assert rendered.get("Service", "redis-headless")["spec"]["clusterIP"] == "None"
    names = {obj["metadata"]["name"] for obj in rendered.objects}
    assert not any(release in name for name in names if release != "dox-asdlc")
    assert not any("hitlUI" in name or "knowledgeStore" in name for name in names)


@pytest.mark.parametrize("name", sorted(SERVICE_PORTS))
def test_every_service_selects_its_pods_by_name_and_instance(default_render: Rendered, name: str) -> None:
    selector = default_render.get("Service", name)["spec"]["selector"]
    assert selector == {"app.kubernetes.io/name": name, "app.kubernetes.io/instance": "dox-asdlc"}
    workload = next(w for w in default_render.workloads() if w["metadata"]["name"] == name)
    assert workload["spec"]["selector"]["matchLabels"] == selector
    pod_labels = workload["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= pod_labels.items()
    target = service_port(default_render, name)["targetPort"]
    (port,) = [p for c in containers(workload) for p in c.get("ports", []) if p["name"] == target]
    assert port["containerPort"] == SERVICE_PORTS[name]


def test_hitl_ui_cluster_ip_renders_no_node_port() -> None:
    rendered = render({"hitlUI": {"service": {"type": "ClusterIP"}}})
    service = rendered.get("Service", "hitl-ui")["spec"]
    assert service["type"] == "ClusterIP"
    assert "nodePort" not in service["ports"][0]


def test_ingress_only_when_enabled(default_render: Rendered, variant_render: Rendered) -> None:
    assert not default_render.of_kind("Ingress")
    ingress = variant_render.get("Ingress", "hitl-ui")
    assert ingress["apiVersion"] == "networking.k8s.io/v1"
    spec = ingress["spec"]
    assert spec["ingressClassName"] == "nginx"
    assert "tls" not in spec, "the design asks for HTTP only"
    (rule,) = spec["rules"]
    assert rule["host"] == "hitl.dox-asdlc.example.com"
    (path,) = rule["http"]["paths"]
    assert path["path"] == "/"
    assert path["backend"]["service"] == {"name": "hitl-ui", "port": {"number": 3000}}
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/ssl-redirect"] == "false"
    assert variant_render.get("Service", "hitl-ui")["spec"]["type"] == "ClusterIP"


def test_ingress_without_class_or_host() -> None:
    rendered = render({"hitlUI": {"ingress": {"enabled": True, "path": "/approvals"}}})
    spec = rendered.get("Ingress", "hitl-ui")["spec"]
    assert "ingressClassName" not in spec
    (rule,) = spec["rules"]
    assert "host" not in rule
    assert rule["http"]["paths"][0]["path"] == "/approvals"


# ---- orchestrator


def test_orchestrator_is_a_single_recreated_replica(any_render: Rendered) -> None:
    spec = any_render.get("Deployment", "orchestrator")["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}
    assert 0 < spec["template"]["spec"]["terminationGracePeriodSeconds"] <= 30


def test_orchestrator_grace_period_is_a_value() -> None:
    rendered = render({"orchestrator": {"terminationGracePeriodSeconds": 10}})
    assert pod_spec(rendered.get("Deployment", "orchestrator"))["terminationGracePeriodSeconds"] == 10


# ---- workers


def test_workers_deployment_leaves_replicas_to_the_hpa(any_render: Rendered) -> None:
    deployment = any_render.get("Deployment", "workers")
    assert "replicas" not in deployment["spec"]
    hpa = any_render.get("HorizontalPodAutoscaler", "workers")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "workers"}
    (metric,) = hpa["spec"]["metrics"]
    assert metric["type"] == "Resource"
    assert metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"]["type"] == "Utilization"
    assert hpa["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 300
    assert container(any_render, "Deployment", "workers")["resources"]["requests"]["cpu"]


def test_hpa_bounds_and_stabilization_window_are_values(variant_render: Rendered) -> None:
    spec = variant_render.get("HorizontalPodAutoscaler", "workers")["spec"]
    assert (spec["minReplicas"], spec["maxReplicas"]) == (3, 8)
    assert spec["metrics"][0]["resource"]["target"]["averageUtilization"] == 60
    short = render({"workers": {"scaleDownStabilizationWindowSeconds": 15}})
    behavior = short.get("HorizontalPodAutoscaler", "workers")["spec"]["behavior"]
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] == 15


def test_workers_pdb_never_blocks_a_drain(any_render: Rendered) -> None:
    pdb = any_render.get("PodDisruptionBudget", "workers")
    assert pdb["apiVersion"] == "policy/v1"
    spec = pdb["spec"]
    assert "minAvailable" not in spec
    assert isinstance(spec["maxUnavailable"], int) and spec["maxUnavailable"] >= 1
    # Unready workers never hold a drain up (the Kubernetes default, IfHealthyBudget, would).
    assert spec["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
    deployment = any_render.get("Deployment", "workers")
    assert spec["selector"] == deployment["spec"]["selector"]


def test_workers_pdb_eviction_policy_is_a_value() -> None:
    pdb = render({"workers": {"podDisruptionBudget": {"unhealthyPodEvictionPolicy": "IfHealthyBudget"}}})
    assert pdb.get("PodDisruptionBudget", "workers")["spec"]["unhealthyPodEvictionPolicy"] == "IfHealthyBudget"


def test_workers_spread_across_nodes(any_render: Rendered) -> None:
    (constraint,) = pod_spec(any_render.get("Deployment", "workers"))["topologySpreadConstraints"]
    assert constraint["topologyKey"] == "kubernetes.io/hostname"
    assert constraint["whenUnsatisfiable"] == "ScheduleAnyway"
    assert constraint["labelSelector"]["matchLabels"] == any_render.get("Deployment", "workers")["spec"]["selector"][
        "matchLabels"
    ]


def test_home_of_the_workers_is_a_writable_empty_dir(any_render: Rendered) -> None:
    workers = any_render.get("Deployment", "workers")
    env = {e["name"]: e.get("value") for e in container(any_render, "Deployment", "workers")["env"]}
    assert env["HOME"]
    assert mount_volume(workers, env["HOME"]).get("emptyDir") is not None


# ---- probes


def mount_volume(workload: dict, path: str) -> dict:
    """The volume mounted at exactly this path in the workload's only container (claim templates included)."""
    (main,) = pod_spec(workload)["containers"]
    (mount,) = [m for m in main["volumeMounts"] if m["mountPath"] == path]
    volumes = {v["name"]: v for v in pod_spec(workload).get("volumes", [])}
    for claim in workload["spec"].get("volumeClaimTemplates", []):
        volumes[claim["metadata"]["name"]] = {"name": claim["metadata"]["name"], "persistentVolumeClaim": {}}
    return volumes[mount["name"]]


HTTP_PROBES = {
    "orchestrator": ("/health/live", "/health/ready", "/health"),
    "workers": ("/health/live", "/health/ready", "/health"),
    "hitl-ui": ("/health", "/health", "/health"),
}


@pytest.mark.parametrize("name", sorted(HTTP_PROBES))
def test_stateless_services_probe_their_health_endpoints(default_render: Rendered, name: str) -> None:
    main = container(default_render, "Deployment", name)
    live, ready, startup = HTTP_PROBES[name]
    assert main["livenessProbe"]["httpGet"]["path"] == live
    assert main["readinessProbe"]["httpGet"]["path"] == ready
    assert main["startupProbe"]["httpGet"]["path"] == startup


def test_every_container_has_three_probes(any_render: Rendered) -> None:
    for workload in any_render.workloads():
        for c in containers(workload):
            for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
                assert probe in c, f"{workload['metadata']['name']}/{c['name']}: no {probe}"


def test_knowledge_store_probes_the_heartbeat(default_render: Rendered) -> None:
    main = container(default_render, "StatefulSet", "knowledge-store")
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert main[probe]["httpGet"]["path"] == "/api/v1/heartbeat"


def test_redis_probes_are_exec_or_tcp(default_render: Rendered) -> None:
    main = container(default_render, "StatefulSet", "redis")
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert {"exec", "tcpSocket"} & set(main[probe]), probe


# ---- stateful services


STATEFUL = ("redis", "knowledge-store")


@pytest.mark.parametrize("name", STATEFUL)
def test_stateful_sets_keep_their_volumes(any_render: Rendered, name: str) -> None:
    sts = any_render.get("StatefulSet", name)
    spec = sts["spec"]
    assert spec["replicas"] == 1
    assert spec["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}
    (claim,) = spec["volumeClaimTemplates"]
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert any_render.get("Service", spec["serviceName"])["spec"]["clusterIP"] == "None"
    assert sts["metadata"]["annotations"]["argocd.argoproj.io/sync-options"] == "Delete=false,Prune=false"


def test_storage_class_and_size_are_values(default_render: Rendered, variant_render: Rendered) -> None:
    for name in STATEFUL:
        (claim,) = default_render.get("StatefulSet", name)["spec"]["volumeClaimTemplates"]
        assert "storageClassName" not in claim["spec"], "default: the cluster's default StorageClass"
    sizes = {"redis": "20Gi", "knowledge-store": "50Gi"}
    for name in STATEFUL:
        (claim,) = variant_render.get("StatefulSet", name)["spec"]["volumeClaimTemplates"]
        assert claim["spec"]["storageClassName"] == "fast-ssd"
        assert claim["spec"]["resources"]["requests"]["storage"] == sizes[name]


def redis_conf(rendered: Rendered) -> dict[str, str]:
    conf: dict[str, str] = {}
    for line in rendered.get("ConfigMap", "redis")["data"]["redis.conf"].splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition(" ")
            conf[key] = value
    return conf


def test_redis_persistence_mode(default_render: Rendered, variant_render: Rendered) -> None:
    rdb = redis_conf(default_render)
    assert rdb["appendonly"] == "no"
    assert rdb["save"] and rdb["save"] != '""'
    aof = redis_conf(variant_render)
    assert aof["appendonly"] == "yes"
    assert aof["appendfsync"] == "everysec"
    for conf in (rdb, aof):
        assert conf["dir"] == "/data"
        assert conf["maxmemory-policy"] == "noeviction"
        assert "requirepass" not in conf, "the password comes from the Secret, never from the ConfigMap"


def test_redis_runs_with_password_from_the_secret(any_render: Rendered) -> None:
    redis = any_render.get("StatefulSet", "redis")
    main = container(any_render, "StatefulSet", "redis")
    args = main["args"]
    assert args[args.index("--requirepass") + 1] == "$(REDIS_PASSWORD)"
    assert args[1] == mount_dir(main, "config") + "/redis.conf"
    env = {e["name"]: e for e in main["env"]}
    assert env["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "redis-password", "key": "password"}
    assert mount_volume(redis, "/data") == {"name": "data", "persistentVolumeClaim": {}}
    assert pod_spec(redis)["securityContext"]["runAsUser"] == 999
    assert pod_spec(redis)["securityContext"]["runAsGroup"] == 1000


def mount_dir(main: dict, volume: str) -> str:
    (mount,) = [m for m in main["volumeMounts"] if m["name"] == volume]
    return mount["mountPath"]


def test_chromadb_runs_non_root_with_writable_workdir_and_data(any_render: Rendered) -> None:
    sts = any_render.get("StatefulSet", "knowledge-store")
    main = container(any_render, "StatefulSet", "knowledge-store")
    env = {e["name"]: e.get("value") for e in main["env"]}
    assert env["IS_PERSISTENT"] == "TRUE"
    assert env["PERSIST_DIRECTORY"] == "/chroma/chroma"
    assert env["ANONYMIZED_TELEMETRY"] == "FALSE"
    assert env["PYTHONPATH"] == "/chroma"
    assert mount_volume(sts, "/chroma/chroma")["name"] == "data"
    assert mount_volume(sts, main["workingDir"]).get("emptyDir") is not None
    args = main["args"]
    assert args[args.index("--log-config") + 1] == "/chroma/chromadb/log_config.yml"
    assert args[args.index("--port") + 1] == "8000"
    security = pod_spec(sts)["securityContext"]
    assert security["runAsUser"] == 1000 and security["runAsNonRoot"] is True


# ---- images


def all_images(rendered: Rendered) -> dict[str, str]:
    return {f"{w['metadata']['name']}/{c['name']}": c["image"] for w in rendered.workloads() for c in containers(w)}


def test_default_images_are_pinned(default_render: Rendered) -> None:
    assert all_images(default_render) == {
        "orchestrator/orchestrator": "dox-asdlc/orchestrator:0.1.0",
        "workers/workers": "dox-asdlc/workers:0.1.0",
        "hitl-ui/hitl-ui": "dox-asdlc/hitl-ui:0.1.0",
        "redis/redis": "redis:7.2.5-alpine",
        "knowledge-store/knowledge-store": "chromadb/chroma:0.4.24",
    }


def test_no_image_uses_latest_or_no_tag(any_render: Rendered) -> None:
    for where, image in all_images(any_render).items():
        name = image.split("@", 1)[0]
        repository, _, tag = name.rpartition(":")
        assert repository and "/" not in tag, f"{where}: {image} has no tag"
        assert tag.lower() != "latest", f"{where}: {image}"


def test_image_repository_tag_digest_and_pull_policy_are_values(variant_render: Rendered) -> None:
    images = all_images(variant_render)
    assert images["orchestrator/orchestrator"] == (
        "registry.example.com/mirror/dox-asdlc/orchestrator:0.1.0@sha256:" + "1" * 64
    )
    assert images["redis/redis"] == "registry.example.com/mirror/redis:7.2.5-alpine"
    assert container(variant_render, "Deployment", "workers")["imagePullPolicy"] == "Always"
    custom = render({"workers": {"image": {"repository": "acme/worker", "tag": "1.2.3", "pullPolicy": "Never"}}})
    main = container(custom, "Deployment", "workers")
    assert (main["image"], main["imagePullPolicy"]) == ("acme/worker:1.2.3", "Never")


def test_resources_are_values() -> None:
    rendered = render({"hitlUI": {"resources": {"requests": {"cpu": "50m", "memory": "64Mi"}}}})
    resources = container(rendered, "Deployment", "hitl-ui")["resources"]
    assert resources["requests"] == {"cpu": "50m", "memory": "64Mi"}
    assert resources["limits"]["memory"] == "256Mi"
