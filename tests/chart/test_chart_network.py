"""NetworkPolicies: default deny, and exactly the flows the platform needs, checked by evaluating the policies."""

from __future__ import annotations

import ipaddress
from itertools import permutations
from typing import Any

import pytest

from .conftest import Rendered, render

SERVICES = ("orchestrator", "workers", "hitl-ui", "redis", "knowledge-store")
PORTS = {"orchestrator": 8080, "workers": 8081, "hitl-ui": 3000, "redis": 6379, "knowledge-store": 8000}
# (source, destination): the flows between services the design needs, on the destination's port.
FLOWS = {
    ("orchestrator", "redis"), ("workers", "redis"), ("hitl-ui", "redis"),
    ("orchestrator", "knowledge-store"), ("workers", "knowledge-store"),
    ("hitl-ui", "orchestrator"),
}  # fmt: skip
DNS_NAMESPACE = {"kubernetes.io/metadata.name": "kube-system"}
DNS_POD = {"k8s-app": "kube-dns"}
PUBLIC_IP, PRIVATE_IP = "203.0.113.10", "10.1.2.3"


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    assert "matchExpressions" not in selector, "the evaluator only knows matchLabels"
    return selector.get("matchLabels", {}).items() <= labels.items()


def pod_labels(rendered: Rendered, service: str) -> dict[str, str]:
    (workload,) = [w for w in rendered.workloads() if w["metadata"]["name"] == service]
    return workload["spec"]["template"]["metadata"]["labels"]


class Endpoint:
    """A pod (labels in a namespace) or an address outside the cluster."""

    def __init__(self, labels: dict[str, str] | None = None, namespace: dict[str, str] | None = None,
                 ip: str | None = None) -> None:
        self.labels, self.namespace, self.ip = labels, namespace, ip

    def matches(self, peer: dict[str, Any]) -> bool:
        if "ipBlock" in peer:
            if self.ip is None:
                return False
            address = ipaddress.ip_address(self.ip)
            block = peer["ipBlock"]
            return address in ipaddress.ip_network(block["cidr"]) and not any(
                address in ipaddress.ip_network(excluded) for excluded in block.get("except", [])
            )
        if self.labels is None:
            return False
        if "namespaceSelector" in peer:
            if self.namespace is None or not selects(peer["namespaceSelector"], self.namespace):
                return False
        elif self.namespace is not None:
            return False  # a bare podSelector means the policy's own namespace
        return selects(peer.get("podSelector", {}), self.labels)


def rule_allows(rule: dict[str, Any], peers_key: str, other: Endpoint, port: int, protocol: str) -> bool:
    peers = rule.get(peers_key)
    if peers is not None and not any(other.matches(peer) for peer in peers):
        return False
    ports = rule.get("ports")
    return ports is None or any(p.get("port") == port and p.get("protocol", "TCP") == protocol for p in ports)


def allowed(rendered: Rendered, direction: str, subject: dict[str, str], other: Endpoint, port: int,
            protocol: str = "TCP") -> bool:
    """Whether the policies selecting subject allow this ingress (from other) or egress (to other)."""
    policy_type, rules_key, peers_key = (
        ("Ingress", "ingress", "from") if direction == "ingress" else ("Egress", "egress", "to")
    )
    policies = [
        p for p in rendered.of_kind("NetworkPolicy")
        if selects(p["spec"]["podSelector"], subject) and policy_type in p["spec"]["policyTypes"]
    ]  # fmt: skip
    assert policies, f"no {policy_type} policy selects {subject}"
    return any(
        rule_allows(rule, peers_key, other, port, protocol)
        for policy in policies
        for rule in policy["spec"].get(rules_key, [])
    )


def flow_sides(rendered: Rendered, source: str, destination: str, port: int) -> tuple[bool, bool]:
    """Whether the source's egress and the destination's ingress policies each allow the flow."""
    src, dst = pod_labels(rendered, source), pod_labels(rendered, destination)
    return allowed(rendered, "egress", src, Endpoint(dst), port), allowed(rendered, "ingress", dst, Endpoint(src), port)


def flow_allowed(rendered: Rendered, source: str, destination: str, port: int) -> bool:
    return all(flow_sides(rendered, source, destination, port))


def test_default_deny_for_every_pod(any_render: Rendered) -> None:
    policy = any_render.get("NetworkPolicy", "default-deny")
    assert policy["apiVersion"] == "networking.k8s.io/v1"
    assert policy["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}


def test_one_policy_per_service(any_render: Rendered) -> None:
    names = {p["metadata"]["name"] for p in any_render.of_kind("NetworkPolicy")}
    assert names == {"default-deny", *SERVICES}
    for service in SERVICES:
        spec = any_render.get("NetworkPolicy", service)["spec"]
        assert spec["podSelector"]["matchLabels"] == {
            "app.kubernetes.io/name": service, "app.kubernetes.io/instance": "dox-asdlc"}
        assert spec["policyTypes"] == ["Ingress", "Egress"]


@pytest.mark.parametrize("release", ["dox-asdlc", "foo"])
def test_exactly_the_needed_flows_between_services(release: str) -> None:
    rendered = render(release=release)
    for source, destination in permutations(SERVICES, 2):
        expected = (source, destination) in FLOWS
        # hitl-ui accepts its port from anywhere: there, only the source's egress policy decides.
        ingress_expected = expected or destination == "hitl-ui"
        sides = flow_sides(rendered, source, destination, PORTS[destination])
        assert sides == (expected, ingress_expected), (source, destination)


def test_no_flow_on_other_ports(default_render: Rendered) -> None:
    """Each side restricts the port on its own, not only the pair together."""
    for source, destination in FLOWS:
        assert flow_sides(default_render, source, destination, PORTS[destination] + 1) == (False, False)


def test_flows_follow_moved_ports() -> None:
    rendered = render({"global": {"redis": {"port": 6380}, "knowledgeStore": {"port": 8001}}})
    assert flow_allowed(rendered, "workers", "redis", 6380)
    assert not flow_allowed(rendered, "workers", "redis", 6379)
    assert flow_allowed(rendered, "orchestrator", "knowledge-store", 8001)


def test_dns_only_for_the_services_that_resolve_names(any_render: Rendered) -> None:
    dns = Endpoint(DNS_POD, DNS_NAMESPACE)
    elsewhere = Endpoint(DNS_POD, {"kubernetes.io/metadata.name": "default"})
    for service in SERVICES:
        labels = pod_labels(any_render, service)
        expected = service in ("orchestrator", "workers", "hitl-ui")
        for protocol in ("UDP", "TCP"):
            assert allowed(any_render, "egress", labels, dns, 53, protocol) is expected, (service, protocol)
            assert not allowed(any_render, "egress", labels, elsewhere, 53, protocol)


def test_external_egress_defaults(default_render: Rendered) -> None:
    expected = {("orchestrator", 443), ("orchestrator", 22), ("workers", 443)}
    for service in SERVICES:
        labels = pod_labels(default_render, service)
        for port in (443, 22, 80):
            want = (service, port) in expected
            assert allowed(default_render, "egress", labels, Endpoint(ip=PUBLIC_IP), port) is want, (service, port)
            assert not allowed(default_render, "egress", labels, Endpoint(ip=PRIVATE_IP), port), (service, port)


def test_external_egress_cidrs_are_values(variant_render: Rendered) -> None:
    workers, orchestrator = pod_labels(variant_render, "workers"), pod_labels(variant_render, "orchestrator")
    assert allowed(variant_render, "egress", workers, Endpoint(ip="160.79.104.10"), 443)
    assert not allowed(variant_render, "egress", workers, Endpoint(ip=PUBLIC_IP), 443)
    assert allowed(variant_render, "egress", orchestrator, Endpoint(ip="140.82.112.5"), 22)
    assert not allowed(variant_render, "egress", orchestrator, Endpoint(ip=PUBLIC_IP), 22)
    assert not allowed(variant_render, "egress", workers, Endpoint(ip="140.82.112.5"), 443)


def test_hitl_ui_reachable_from_anywhere_on_its_port(any_render: Rendered) -> None:
    ui = pod_labels(any_render, "hitl-ui")
    for source in (Endpoint(ip=PUBLIC_IP), Endpoint({"app": "ingress-nginx"}, {"kubernetes.io/metadata.name": "x"})):
        assert allowed(any_render, "ingress", ui, source, 3000)
        assert not allowed(any_render, "ingress", ui, source, 3001)
    for service in ("orchestrator", "workers", "redis", "knowledge-store"):
        assert not allowed(any_render, "ingress", pod_labels(any_render, service), Endpoint(ip=PUBLIC_IP),
                           PORTS[service])


def test_hitl_ui_ingress_sources_are_values() -> None:
    rendered = render({"hitlUI": {"networkPolicy": {
        "allowFromAnywhere": False, "ingressFrom": {"office": {"cidr": "198.51.100.0/24"}}}}})  # fmt: skip
    ui = pod_labels(rendered, "hitl-ui")
    assert allowed(rendered, "ingress", ui, Endpoint(ip="198.51.100.7"), 3000)
    assert not allowed(rendered, "ingress", ui, Endpoint(ip=PUBLIC_IP), 3000)
    assert flow_allowed(rendered, "hitl-ui", "redis", 6379)
