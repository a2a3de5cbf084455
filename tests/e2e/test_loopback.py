"""Loopback only: every address the harness configures, and every socket its processes hold, is 127.0.0.0/8.

The first test parses what the harness generates (command lines, kubeconfig, kwok configuration, the
objects it creates) without running anything; the second inspects the sockets of a running cluster.
"""

from __future__ import annotations

import ipaddress
import re
import urllib.parse
from pathlib import Path

import pytest
import yaml

from doxops.cluster import cluster as cluster_mod
from doxops.cluster.cluster import Cluster, metrics_api_manifests, node_manifest, non_loopback_sockets

pytestmark = pytest.mark.e2e

#: Flags whose values are address ranges nothing dials (Service cluster IPs without kube-proxy, pod IPs).
UNDIALLED_RANGES = {"--service-cluster-ip-range": "10.96.0.0/16", "--cidr": "10.244.0.0/16"}
#: Flags whose values are URLs used as names only (the issuer written into service-account tokens).
NAMES_ONLY = {"--service-account-issuer": "https://kubernetes.default.svc.cluster.local"}
IPV4 = re.compile(r"(?<![\d.])(\d{1,3}(?:\.\d{1,3}){3})(?:/\d+)?(?![\d.])")
URL = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s,\"']+")


def _loopback(host: str) -> bool:
    return host == "localhost" or ipaddress.ip_address(host).is_loopback


@pytest.fixture
def planned(tmp_path):
    fake = {name: Path(f"/bin/{name}") for name in ("etcd", "kube-apiserver", "kube-controller-manager",
                                                    "kube-scheduler", "kubectl", "kwok", "metrics-server")}
    cluster = Cluster(tmp_path / "c", binaries=fake, progress=lambda m: None)
    return cluster, {c.name: c.argv for c in cluster.plan()}


def _flag(argv: list[str], name: str) -> str:
    values = [a.split("=", 1)[1] for a in argv if a.startswith(name + "=")]
    assert len(values) == 1, f"{name}: {values}"
    return values[0]


def test_every_planned_address_is_loopback(planned):
    cluster, argvs = planned
    assert set(argvs) == set(cluster_mod.ALL_COMPONENTS)
    texts = [(name, arg) for name, argv in argvs.items() for arg in argv[1:]]
    texts += [(str(path), text) for path, text in cluster.config_files().items()]
    for owner, text in texts:
        flag = text.split("=", 1)[0]
        for match in IPV4.finditer(text):
            if flag in UNDIALLED_RANGES:
                assert text == f"{flag}={UNDIALLED_RANGES[flag]}", (owner, text)
                continue
            assert _loopback(match.group(1)), (owner, text)
        if flag in NAMES_ONLY:
            assert text == f"{flag}={NAMES_ONLY[flag]}", (owner, text)
            continue
        for url in URL.findall(text):
            host = urllib.parse.urlsplit(url).hostname
            if host:
                assert _loopback(host), (owner, url)
        assert "0.0.0.0" not in text and "[::]" not in text, (owner, text)

    ports = cluster.ports
    for name in ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "metrics-server"):
        assert _flag(argvs[name], "--bind-address") == "127.0.0.1", name
    api = argvs["kube-apiserver"]
    assert _flag(api, "--advertise-address") == "127.0.0.1"
    assert _flag(api, "--endpoint-reconciler-type") == "none"
    assert _flag(api, "--secure-port") == str(ports.apiserver)
    assert _flag(api, "--etcd-servers") == f"http://127.0.0.1:{ports.etcd_client}"
    etcd = argvs["etcd"]
    for flag in ("--listen-client-urls", "--advertise-client-urls", "--listen-peer-urls",
                 "--initial-advertise-peer-urls"):
        assert urllib.parse.urlsplit(_flag(etcd, flag)).hostname == "127.0.0.1", flag
    kwok = argvs["kwok"]
    assert _flag(kwok, "--node-ip") == "127.0.0.1"
    assert _flag(kwok, "--server-address") == f"127.0.0.1:{ports.kwok}"
    assert _flag(kwok, "--node-port") == str(ports.kwok)
    metrics = argvs["metrics-server"]
    assert _flag(metrics, "--kubelet-preferred-address-types") == "InternalIP"
    assert _flag(metrics, "--kubelet-port") == str(ports.kwok)
    assert "--kubelet-insecure-tls" in metrics
    kubeconfig = yaml.safe_load(cluster.config_files()[cluster.kubeconfig_path])
    assert kubeconfig["clusters"][0]["cluster"]["server"] == f"https://127.0.0.1:{ports.apiserver}"
    assert len(set(vars(ports).values())) == len(vars(ports)), "ports must be distinct"


def test_the_metrics_api_is_reached_through_an_external_name_service_on_loopback():
    service, api_service = metrics_api_manifests(4443, b"-----BEGIN CERTIFICATE-----\n")
    assert service["kind"] == "Service"
    assert service["spec"] == {"type": "ExternalName", "externalName": "127.0.0.1"}  # no ClusterIP, no ports
    assert api_service["spec"]["service"] == {"namespace": "kube-system", "name": "metrics-server", "port": 4443}
    node = node_manifest("n")
    assert "addresses" not in node["status"]  # kwok fills them from --node-ip (127.0.0.1)
    stage = (Path(cluster_mod.STAGES_DIR) / "node.yaml").read_text()
    assert "address: {{ NodeIP | Quote }}" in stage and "Port: {{ NodePort }}" in stage


def test_a_running_cluster_holds_loopback_sockets_only(light_cluster):
    report = light_cluster.socket_report()
    names = {name for name, _, _, _ in report}
    assert {"etcd", "kube-apiserver", "kube-controller-manager"} <= names
    assert any(state == "LISTEN" for _, _, state, _ in report)
    assert non_loopback_sockets(report) == []
    endpoints = light_cluster.api.get_or_none("/api/v1/namespaces/default/endpoints/kubernetes")
    assert not (endpoints or {}).get("subsets")  # --endpoint-reconciler-type=none: nothing to dial
