"""Configuration: one ConfigMap per service via envFrom, endpoints that agree with the Services, checksums."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from .conftest import Rendered, pod_spec, render

APP_KEYS = {
    "REDIS_HOST", "REDIS_PORT", "REDIS_DB", "REDIS_URL",
    "KNOWLEDGE_STORE_HOST", "KNOWLEDGE_STORE_PORT", "KNOWLEDGE_STORE_BACKEND", "KNOWLEDGE_STORE_COLLECTION",
    "KNOWLEDGE_STORE_URL", "SERVICE_NAME", "SERVICE_PORT", "GIT_WRITE_ACCESS", "LOG_LEVEL",
}  # fmt: skip


def config(rendered: Rendered, name: str) -> dict[str, str]:
    return rendered.get("ConfigMap", name)["data"]


def main_container(rendered: Rendered, kind: str, name: str) -> dict:
    (only,) = pod_spec(rendered.get(kind, name))["containers"]
    return only


@pytest.mark.parametrize("name", ["orchestrator", "workers", "hitl-ui"])
def test_each_service_reads_its_own_config_map(default_render: Rendered, name: str) -> None:
    main = main_container(default_render, "Deployment", name)
    assert main["envFrom"] == [{"configMapRef": {"name": name}}]
    assert all(isinstance(value, str) for value in config(default_render, name).values())


@pytest.mark.parametrize("name", ["orchestrator", "workers"])
def test_orchestrator_and_workers_configuration(default_render: Rendered, name: str) -> None:
    data = config(default_render, name)
    assert APP_KEYS <= set(data)
    assert data["REDIS_URL"] == "redis://redis.dox-asdlc.svc.cluster.local:6379/0"
    assert data["KNOWLEDGE_STORE_URL"] == "http://knowledge-store.dox-asdlc.svc.cluster.local:8000"
    assert data["KNOWLEDGE_STORE_BACKEND"] == "chromadb"
    assert data["SERVICE_NAME"] == name
    assert data["SERVICE_PORT"] == {"orchestrator": "8080", "workers": "8081"}[name]
    assert data["GIT_WRITE_ACCESS"] == {"orchestrator": "true", "workers": "false"}[name]
    assert data["LOG_LEVEL"] == "INFO"


def test_hitl_ui_configuration(default_render: Rendered) -> None:
    data = config(default_render, "hitl-ui")
    assert data == {
        "REDIS_HOST": "redis.dox-asdlc.svc.cluster.local",
        "REDIS_PORT": "6379",
        "ORCHESTRATOR_URL": "http://orchestrator.dox-asdlc.svc.cluster.local:8080",
    }


def service_endpoint(rendered: Rendered, host: str, port: int) -> None:
    """host is <service>.<namespace>.svc.cluster.local of a rendered Service that listens on port."""
    service_name, namespace, svc, domain = host.split(".", 3)
    assert (svc, domain) == ("svc", "cluster.local")
    service = rendered.get("Service", service_name)
    assert service["metadata"]["namespace"] == namespace
    assert port in [p["port"] for p in service["spec"]["ports"]], f"{host}:{port} matches no Service port"


ENDPOINT_OVERRIDES = [
    {},
    {"global": {"redis": {"port": 6380, "db": 3}, "knowledgeStore": {"port": 8001}, "orchestrator": {"port": 9090}}},
]


@pytest.mark.parametrize("overrides", ENDPOINT_OVERRIDES, ids=["default", "moved-ports"])
def test_urls_hosts_ports_and_services_agree(overrides: dict) -> None:
    rendered = render(overrides)
    for name in ("orchestrator", "workers"):
        data = config(rendered, name)
        redis = urlsplit(data["REDIS_URL"])
        assert redis.scheme == "redis"
        assert (redis.hostname, str(redis.port), redis.path) == (
            data["REDIS_HOST"], data["REDIS_PORT"], "/" + data["REDIS_DB"])
        service_endpoint(rendered, data["REDIS_HOST"], int(data["REDIS_PORT"]))
        store = urlsplit(data["KNOWLEDGE_STORE_URL"])
        assert store.scheme == "http"
        assert (store.hostname, str(store.port)) == (data["KNOWLEDGE_STORE_HOST"], data["KNOWLEDGE_STORE_PORT"])
        service_endpoint(rendered, data["KNOWLEDGE_STORE_HOST"], int(data["KNOWLEDGE_STORE_PORT"]))
    ui = config(rendered, "hitl-ui")
    orchestrator = urlsplit(ui["ORCHESTRATOR_URL"])
    service_endpoint(rendered, orchestrator.hostname, orchestrator.port)
    assert str(orchestrator.port) == config(rendered, "orchestrator")["SERVICE_PORT"]
    service_endpoint(rendered, ui["REDIS_HOST"], int(ui["REDIS_PORT"]))


def test_moved_ports_reach_the_servers() -> None:
    """The Service port is also what the server listens on, so a moved port needs no second value."""
    rendered = render(ENDPOINT_OVERRIDES[1])
    redis_conf = config(rendered, "redis")["redis.conf"].splitlines()
    assert "port 6380" in redis_conf
    (redis_port,) = main_container(rendered, "StatefulSet", "redis")["ports"]
    assert redis_port["containerPort"] == 6380
    chroma = main_container(rendered, "StatefulSet", "knowledge-store")
    assert chroma["args"][chroma["args"].index("--port") + 1] == "8001"
    assert chroma["ports"][0]["containerPort"] == 8001
    assert main_container(rendered, "Deployment", "orchestrator")["ports"][0]["containerPort"] == 9090


def checksum(rendered: Rendered, kind: str, name: str) -> str:
    return rendered.get(kind, name)["spec"]["template"]["metadata"]["annotations"]["checksum/config"]


CHECKSUMMED = [("Deployment", "orchestrator"), ("Deployment", "workers"), ("Deployment", "hitl-ui"),
               ("StatefulSet", "redis")]


def test_checksum_annotation_rolls_pods_when_config_changes(default_render: Rendered) -> None:
    for kind, name in CHECKSUMMED:
        assert len(checksum(default_render, kind, name)) == 64
    changed = render({"orchestrator": {"logLevel": "DEBUG"}})
    assert checksum(changed, "Deployment", "orchestrator") != checksum(default_render, "Deployment", "orchestrator")
    assert checksum(changed, "Deployment", "workers") == checksum(default_render, "Deployment", "workers")
    moved = render({"global": {"redis": {"db": 2}}})
    for kind, name in (("Deployment", "orchestrator"), ("Deployment", "workers")):
        assert checksum(moved, kind, name) != checksum(default_render, kind, name)
    aof = render({"redis": {"persistence": {"mode": "aof"}}})
    assert checksum(aof, "StatefulSet", "redis") != checksum(default_render, "StatefulSet", "redis")

