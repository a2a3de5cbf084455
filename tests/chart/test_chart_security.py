"""Security: Pod Security "restricted", service accounts, and Secrets referenced by name only."""

from __future__ import annotations

import pytest

from .conftest import Rendered, containers, pod_spec, render

# Volume types Pod Security "restricted" allows.
RESTRICTED_VOLUME_TYPES = {
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret",
}  # fmt: skip
SERVICES = ("orchestrator", "workers", "hitl-ui", "redis", "knowledge-store")


def restricted_violations(workload: dict) -> list[str]:
    """What keeps a workload's pod template from Pod Security "restricted" (plus the chart's own rules)."""
    problems: list[str] = []
    spec = pod_spec(workload)
    pod_sc = spec.get("securityContext", {})
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(flag):
            problems.append(f"{flag} set")
    if pod_sc.get("runAsNonRoot") is not True:
        problems.append("pod runAsNonRoot is not true")
    for key in ("runAsUser", "runAsGroup", "fsGroup"):
        value = pod_sc.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            problems.append(f"pod {key} is not a numeric non-root id: {value!r}")
    if pod_sc.get("seccompProfile", {}).get("type") not in ("RuntimeDefault", "Localhost"):
        problems.append("pod seccompProfile is not RuntimeDefault")
    for volume in spec.get("volumes", []):
        kinds = set(volume) - {"name"}
        if not kinds <= RESTRICTED_VOLUME_TYPES:
            problems.append(f"volume {volume['name']} of type {kinds}")
    for c in containers(workload):
        sc = c.get("securityContext", {})
        where = f"container {c['name']}"
        if sc.get("privileged"):
            problems.append(f"{where} privileged")
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{where} allowPrivilegeEscalation is not false")
        caps = sc.get("capabilities", {})
        if "ALL" not in caps.get("drop", []):
            problems.append(f"{where} does not drop ALL capabilities")
        if set(caps.get("add", [])) - {"NET_BIND_SERVICE"}:
            problems.append(f"{where} adds capabilities")
        if sc.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{where} root filesystem is writable")
        if sc.get("runAsUser") == 0 or sc.get("runAsNonRoot") is False:
            problems.append(f"{where} runs as root")
        if sc.get("seccompProfile", {}).get("type") == "Unconfined":
            problems.append(f"{where} seccomp Unconfined")
        for port in c.get("ports", []):
            if port.get("hostPort"):
                problems.append(f"{where} uses a hostPort")
    return problems


def test_every_pod_is_restricted(any_render: Rendered) -> None:
    workloads = any_render.workloads()
    assert len(workloads) == 5
    for workload in workloads:
        assert restricted_violations(workload) == [], workload["metadata"]["name"]


def test_namespace_enforces_restricted(any_render: Rendered) -> None:
    labels = any_render.get("Namespace", "dox-asdlc")["metadata"]["labels"]
    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"
        assert labels[f"pod-security.kubernetes.io/{mode}-version"]


def test_every_pod_has_a_tmp_empty_dir(any_render: Rendered) -> None:
    for workload in any_render.workloads():
        volumes = {v["name"]: v for v in pod_spec(workload)["volumes"]}
        for c in containers(workload):
            (tmp,) = [m for m in c["volumeMounts"] if m["mountPath"] == "/tmp"]
            assert "emptyDir" in volumes[tmp["name"]], workload["metadata"]["name"]


@pytest.mark.parametrize("name", SERVICES)
def test_one_service_account_per_service_without_token(any_render: Rendered, name: str) -> None:
    account = any_render.get("ServiceAccount", name)
    assert account["automountServiceAccountToken"] is False
    workload = next(w for w in any_render.workloads() if w["metadata"]["name"] == name)
    spec = pod_spec(workload)
    assert spec["serviceAccountName"] == name
    assert spec["automountServiceAccountToken"] is False


def test_no_secret_is_ever_rendered(any_render: Rendered) -> None:
    assert not any_render.of_kind("Secret")
    for obj in any_render.of_kind("ConfigMap"):
        text = str(obj["data"]).lower()
        assert "password" not in text and "api_key" not in text and "apikey" not in text, obj["metadata"]["name"]


def secret_refs(workload: dict) -> dict[str, dict]:
    """env name -> secretKeyRef, for every container of the workload."""
    refs: dict[str, dict] = {}
    for c in containers(workload):
        for entry in c.get("env", []):
            ref = entry.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                refs[entry["name"]] = ref
    return refs


def env_names(workload: dict) -> dict[str, dict]:
    return {e["name"]: e for c in containers(workload) for e in c.get("env", [])}


REDIS_PASSWORD = {"name": "redis-password", "key": "password"}
ANTHROPIC_KEY = {"name": "anthropic-api-key", "key": "api-key"}


def test_secrets_come_only_through_secret_key_refs(any_render: Rendered) -> None:
    expected = {
        "orchestrator": {"REDIS_PASSWORD": REDIS_PASSWORD, "ANTHROPIC_API_KEY": ANTHROPIC_KEY},
        "workers": {"REDIS_PASSWORD": REDIS_PASSWORD, "ANTHROPIC_API_KEY": ANTHROPIC_KEY},
        "hitl-ui": {"REDIS_PASSWORD": REDIS_PASSWORD},
        "redis": {"REDIS_PASSWORD": REDIS_PASSWORD, "REDISCLI_AUTH": REDIS_PASSWORD},
        "knowledge-store": {},
    }
    for workload in any_render.workloads():
        name = workload["metadata"]["name"]
        assert secret_refs(workload) == expected[name], name
        for env in ("REDIS_PASSWORD", "ANTHROPIC_API_KEY"):
            assert "value" not in env_names(workload).get(env, {}), f"{name}: literal {env}"


def test_secret_names_are_values() -> None:
    rendered = render({"global": {"secrets": {
        "redisPassword": {"name": "cache-auth", "key": "pw"},
        "anthropicApiKey": {"name": "claude", "key": "token"},
        "gitCredentials": {"name": "deploy-key"},
    }}})  # fmt: skip
    assert secret_refs(rendered.get("Deployment", "workers")) == {
        "REDIS_PASSWORD": {"name": "cache-auth", "key": "pw"},
        "ANTHROPIC_API_KEY": {"name": "claude", "key": "token"},
    }
    volumes = pod_spec(rendered.get("Deployment", "orchestrator"))["volumes"]
    assert {"deploy-key"} == {v["secret"]["secretName"] for v in volumes if "secret" in v}


def test_git_credentials_only_in_the_orchestrator_read_only(any_render: Rendered) -> None:
    for workload in any_render.workloads():
        name = workload["metadata"]["name"]
        secret_volumes = [v for v in pod_spec(workload).get("volumes", []) if "secret" in v]
        if name != "orchestrator":
            assert secret_volumes == [], name
            continue
        (volume,) = secret_volumes
        assert volume["secret"]["secretName"] == "git-credentials"
        (mount,) = [m for c in containers(workload) for m in c["volumeMounts"] if m["name"] == volume["name"]]
        assert mount["readOnly"] is True
        assert mount["mountPath"] == "/etc/git-credentials"
        assert volume["secret"]["defaultMode"] & 0o077 in (0, 0o040), "not world-readable"
    orchestrator = any_render.get("ConfigMap", "orchestrator")["data"]
    assert orchestrator["GIT_WRITE_ACCESS"] == "true"
    assert any_render.get("ConfigMap", "workers")["data"]["GIT_WRITE_ACCESS"] == "false"


def test_external_secrets_mirror_the_secret_names(default_render: Rendered, variant_render: Rendered) -> None:
    assert not default_render.of_kind("ExternalSecret")
    found = {obj["metadata"]["name"]: obj for obj in variant_render.of_kind("ExternalSecret")}
    assert set(found) == {"git-credentials", "anthropic-api-key", "redis-password"}
    for name, obj in found.items():
        assert obj["apiVersion"] == "external-secrets.io/v1"
        spec = obj["spec"]
        assert spec["target"]["name"] == name
        assert spec["secretStoreRef"] == {"kind": "ClusterSecretStore", "name": "vault-backend"}
        assert spec["refreshInterval"] == "30m"
    assert found["redis-password"]["spec"]["data"] == [
        {"secretKey": "password", "remoteRef": {"key": "dox-asdlc/redis", "property": "password"}}
    ]
    assert found["anthropic-api-key"]["spec"]["data"][0]["secretKey"] == "api-key"
    assert found["git-credentials"]["spec"]["dataFrom"] == [{"extract": {"key": "dox-asdlc/git-credentials"}}]
