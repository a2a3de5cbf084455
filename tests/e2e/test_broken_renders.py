"""Deliberately broken renders fail on the real API server, with the API server's own message.

Each test takes the committed ``rendered/minikube`` output, breaks one thing the way a bad chart
change would, applies it to a light cluster (etcd, API server, controller manager) and asserts what
the server (or its controllers) said, word for word where the words are the API's.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path

import pytest
import yaml

from doxops.paths import REPO_ROOT

pytestmark = pytest.mark.e2e

RENDERED = REPO_ROOT / "rendered" / "minikube" / "workloads"


def _docs() -> list[dict]:
    return [d for p in sorted(RENDERED.glob("*.yaml")) for d in yaml.safe_load_all(p.read_text()) if d]


def _write(path: Path, *docs: dict) -> Path:
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def applied(light_cluster, tmp_path_factory):
    """The committed minikube render, applied as is (namespace first, then everything)."""
    directory = tmp_path_factory.mktemp("minikube")
    docs = _docs()
    # In dependency order, as Argo CD's sync waves do: the namespace, what pods need, then the workloads.
    phases = [[d for d in docs if d["kind"] == "Namespace"],
              [d for d in docs if d["kind"] not in ("Namespace", "Deployment", "StatefulSet")],
              [d for d in docs if d["kind"] in ("Deployment", "StatefulSet")]]
    for index, phase in enumerate(phases):
        light_cluster.kubectl("apply", "--server-side", "-f", str(_write(directory / f"phase{index}.yaml", *phase)))
    return docs


def test_a_second_service_claiming_node_port_30000_is_refused(light_cluster, applied, tmp_path):
    service = next(d for d in applied if d["kind"] == "Service" and d["spec"].get("type") == "NodePort")
    port = service["spec"]["ports"][0]["nodePort"]
    assert port == 30000
    live = light_cluster.api.get(f"/api/v1/namespaces/{service['metadata']['namespace']}/services/"
                                 f"{service['metadata']['name']}")
    assert live["spec"]["ports"][0]["nodePort"] == 30000  # the first claim was allocated

    second = copy.deepcopy(service)
    second["metadata"]["name"] = f"{service['metadata']['name']}-second"
    proc = light_cluster.kubectl("apply", "--server-side", "-f", str(_write(tmp_path / "second.yaml", second)),
                                 check=False)
    assert proc.returncode != 0
    assert (f'Service "{second["metadata"]["name"]}" is invalid: spec.ports[0].nodePort: '
            f"Invalid value: {port}: provided port is already allocated") in proc.stderr, proc.stderr


def test_a_pod_running_as_root_is_refused_by_pod_security(light_cluster, applied, tmp_path):
    deployment = copy.deepcopy(next(d for d in applied if d["kind"] == "Deployment"
                                    and d["metadata"]["name"] == "hitl-ui"))
    pod = deployment["spec"]["template"]["spec"]
    pod["securityContext"].update({"runAsUser": 0, "runAsNonRoot": False})
    for container in pod["containers"]:
        container["securityContext"]["runAsNonRoot"] = False
    namespace, name = deployment["metadata"]["namespace"], deployment["metadata"]["name"]
    proc = light_cluster.kubectl("apply", "--server-side", "-f", str(_write(tmp_path / "root.yaml", deployment)),
                                 check=False)
    # A Deployment is admitted (Pod Security judges pods), with the namespace's warn-level warning.
    assert proc.returncode == 0, proc.stderr
    assert 'would violate PodSecurity "restricted:latest"' in proc.stderr, proc.stderr

    api = light_cluster.api
    path = f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}"
    deadline = time.monotonic() + 60
    condition = None
    while time.monotonic() < deadline and condition is None:
        conditions = api.get(path).get("status", {}).get("conditions") or []
        condition = next((c for c in conditions if c["type"] == "ReplicaFailure" and c["status"] == "True"
                          and "PodSecurity" in c.get("message", "")), None)
        time.sleep(0.5)
    assert condition, f"no ReplicaFailure condition on deployment/{name}: {conditions}"
    assert condition["reason"] == "FailedCreate"
    assert 'violates PodSecurity "restricted:latest"' in condition["message"]
    assert "runAsUser=0" in condition["message"] and "runAsNonRoot != true" in condition["message"]

    events = [e for e in api.items(f"/api/v1/namespaces/{namespace}/events")
              if e.get("reason") == "FailedCreate" and e["involvedObject"]["kind"] == "ReplicaSet"
              and e["involvedObject"]["name"].startswith(f"{name}-")]
    assert events and 'violates PodSecurity "restricted:latest"' in events[0]["message"], events
    root_pods = [p for p in api.items(f"/api/v1/namespaces/{namespace}/pods", labelSelector=f"app.kubernetes.io/name={name}")
                 if (p["spec"].get("securityContext") or {}).get("runAsUser") == 0]
    assert not root_pods
