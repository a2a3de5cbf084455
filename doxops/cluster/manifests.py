"""The configuration files and objects the cluster harness writes itself, and the addresses they use.

Nothing here applies upstream manifests: the kubeconfig, kwok's own configuration, the simulated
node and the metrics API's APIService and Service are written out below, all naming 127.0.0.1.
"""

from __future__ import annotations

import base64
from pathlib import Path

from .pki import Pki

STAGES_DIR = Path(__file__).resolve().parent / "stages"
LOOPBACK = "127.0.0.1"
SERVICE_CIDR = "10.96.0.0/16"
POD_CIDR = "10.244.0.0/16"
NODE_NAME = "kwok-node-0"
METRICS_SERVICE = ("kube-system", "metrics-server")
CPU_ANNOTATION = "cpu-usage.e2e.dox-asdlc.io/"


def kubeconfig(server: str, pki: Pki, user: str = "admin") -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "e2e", "cluster": {"server": server, "certificate-authority": str(pki.ca)}}],
        "users": [{"name": user, "user": {"client-certificate": str(pki.cert(user)),
                                         "client-key": str(pki.key(user))}}],
        "contexts": [{"name": "e2e", "context": {"cluster": "e2e", "user": user}}],
        "current-context": "e2e",
    }


def kwok_configuration() -> dict:
    """kwok's own options (in its --config file): no exec/logs/port-forward handlers, no profiling."""
    return {
        "apiVersion": "config.kwok.x-k8s.io/v1alpha1",
        "kind": "KwokConfiguration",
        # A configuration given replaces kwok's defaults entirely: the parallelism settings must be stated.
        "options": {"enableDebuggingHandlers": False, "enableProfilingHandler": False,
                    "enableContentionProfiling": False, "podPlayStageParallelism": 4,
                    "nodePlayStageParallelism": 4, "nodeLeaseParallelism": 4, "podsOnNodeSyncParallelism": 1,
                    "enablePodsOnNodeSyncListPager": True, "enablePodsOnNodeSyncStreamWatch": False},
    }


def node_manifest(name: str) -> dict:
    """A simulated node; kwok (annotation selector) fills its status, addresses and kubelet port."""
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {
                "kwok.x-k8s.io/node": "fake",
                "node.alpha.kubernetes.io/ttl": "0",
                "metrics.k8s.io/resource-metrics-path": f"/metrics/nodes/{name}/metrics/resource",
            },
            "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                       "kubernetes.io/arch": "amd64", "type": "kwok"},
        },
        "spec": {},
        "status": {"allocatable": {"cpu": "32", "memory": "256Gi", "pods": "110"},
                   "capacity": {"cpu": "32", "memory": "256Gi", "pods": "110"}},
    }


def metrics_api_manifests(port: int, ca_bundle: bytes) -> list[dict]:
    """The metrics.k8s.io APIService and the ExternalName Service (127.0.0.1) it is reached through."""
    namespace, name = METRICS_SERVICE
    return [
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": name, "namespace": namespace, "labels": {"app.kubernetes.io/name": name}},
         "spec": {"type": "ExternalName", "externalName": LOOPBACK}},
        {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
         "metadata": {"name": "v1beta1.metrics.k8s.io"},
         "spec": {"group": "metrics.k8s.io", "version": "v1beta1",
                  "service": {"namespace": namespace, "name": name, "port": port},
                  "caBundle": base64.b64encode(ca_bundle).decode(),
                  "groupPriorityMinimum": 100, "versionPriority": 100}},
    ]
