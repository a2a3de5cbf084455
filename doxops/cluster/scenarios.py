"""The plain e2e's acceptance scenarios of one environment (ARCHITECTURE.md), each a named check.

:class:`Scenario` adds to the :class:`~doxops.cluster.harness.Harness` what is observed once
everything is applied: External Secrets synced, StatefulSets Ready with bound claims, the
orchestrator's singleton rollouts and the workers' autoscaling (both in :mod:`.rollouts`),
hitl-ui's NodePort or Ingress, ConfigMaps and Service addresses, Pod Security, the Argo CD
objects, and loopback only (the sockets sampled during the whole run by
:class:`~doxops.cluster.sockets.SocketSampler`).
"""

from __future__ import annotations

import urllib.parse

from . import rollouts
from .api import ApiError
from .cluster import LOOPBACK, METRICS_SERVICE, NODE_NAME
from .harness import ARGOCD_NAMESPACE, Harness, label_selector
from .simulators import INGRESS_ADDRESS
from .sockets import SocketSampler


class Scenario(Harness):
    """The acceptance scenarios of one environment on one running cluster."""

    def stateful_sets(self) -> None:
        for sts in self.docs_of("StatefulSet"):
            name, replicas = sts["metadata"]["name"], sts["spec"].get("replicas", 1)
            self.wait(f"StatefulSet {name} Ready", lambda: (self.api.get(f"{self.apps}/statefulsets/{name}")
                                                           .get("status", {}).get("readyReplicas", 0) == replicas), 90)
            claims = [f"{t['metadata']['name']}-{name}-{i}" for t in sts["spec"].get("volumeClaimTemplates") or []
                      for i in range(replicas)]
            phases = {c: (self.api.get_or_none(f"{self.ns}/persistentvolumeclaims/{c}") or {})
                      .get("status", {}).get("phase") for c in claims}
            self.check(f"StatefulSet {name}: {replicas}/{replicas} Ready, claims Bound", all(
                p == "Bound" for p in phases.values()) and bool(claims), ", ".join(f"{c}={p}" for c, p in phases.items()))

    def config_and_service_resolution(self) -> None:
        services = {s["metadata"]["name"]: s for s in self.api.items(f"{self.ns}/services")}
        for deployment in self.docs_of("Deployment"):
            name = deployment["metadata"]["name"]
            spec = deployment["spec"]["template"]["spec"]
            refs = [e["configMapRef"]["name"] for c in spec["containers"] for e in c.get("envFrom") or []
                    if "configMapRef" in e]
            maps = {r: self.api.get_or_none(f"{self.ns}/configmaps/{r}") for r in refs}
            self.check(f"{name}: ConfigMap {', '.join(refs) or '(none)'} exists", bool(refs) and all(maps.values()))
            selector = label_selector(deployment["spec"]["selector"]["matchLabels"])
            pods = self.running(selector)
            if not pods:
                self.check(f"{name}: a Running pod to read the environment of", False)
                continue
            environment: dict[str, str] = {}
            for ref in refs:
                environment.update((maps[ref] or {}).get("data") or {})
            for container in pods[0]["spec"]["containers"]:
                environment.update({e["name"]: e["value"] for e in container.get("env") or [] if "value" in e})
            unresolved, resolved = [], []
            for key, value in sorted(environment.items()):
                host, port = _service_address(key, value, environment)
                if host is None:
                    continue
                service_name, _, rest = host.partition(".")
                namespace = rest.split(".")[0] if rest else self.namespace
                service = services.get(service_name) if namespace == self.namespace else None
                ports = [p["port"] for p in (service or {}).get("spec", {}).get("ports") or []]
                if service is None or (port is not None and port not in ports):
                    unresolved.append(f"{key}={host}:{port}")
                else:
                    resolved.append(f"{key}->{service_name}:{port}")
            needs = ["REDIS_HOST"] + (["KNOWLEDGE_STORE_HOST"] if "KNOWLEDGE_STORE_HOST" in environment else [])
            missing = [n for n in needs if not any(r.startswith(n + "->") for r in resolved)]
            self.check(f"{name}: pod environment resolves to existing Services", not unresolved and not missing,
                       "; ".join(unresolved + [f"{m} not set" for m in missing]) or ", ".join(resolved))
            self._secret_references(name, pods[0])

    def _secret_references(self, name: str, pod: dict) -> None:
        """kwok starts pods whatever they reference; a kubelet would not: check every Secret reference."""
        missing = []
        for container in pod["spec"]["containers"]:
            for env in container.get("env") or []:
                ref = (env.get("valueFrom") or {}).get("secretKeyRef")
                if ref:
                    secret = self.api.get_or_none(f"{self.ns}/secrets/{ref['name']}")
                    if not secret or ref["key"] not in (secret.get("data") or {}):
                        missing.append(f"{ref['name']}/{ref['key']}")
        for volume in pod["spec"].get("volumes") or []:
            if "secret" in volume and not self.api.exists(f"{self.ns}/secrets/{volume['secret']['secretName']}"):
                missing.append(volume["secret"]["secretName"])
        self.check(f"{name}: every Secret and key the pod references exists", not missing, ", ".join(missing))

    def pod_security(self) -> None:
        namespace = self.api.get(f"/api/v1/namespaces/{self.namespace}")
        labels = namespace["metadata"].get("labels") or {}
        self.check("namespace enforces Pod Security restricted",
                   labels.get("pod-security.kubernetes.io/enforce") == "restricted",
                   f"enforce={labels.get('pod-security.kubernetes.io/enforce')}")
        failed = [e for e in self.api.items(f"{self.ns}/events")
                  if e.get("reason") == "FailedCreate" and "PodSecurity" in e.get("message", "")]
        pods = self.api.items(f"{self.ns}/pods")
        self.check("every pod admitted under enforced restricted (no FailedCreate)", not failed and bool(pods),
                   f"{len(pods)} pods admitted" if not failed else failed[0]["message"])

    def argocd(self) -> None:
        if not self.argocd_docs:
            return
        accepted = []
        for doc in self.argocd_docs:
            kind, name = doc["kind"], doc["metadata"]["name"]
            plural = {"Application": "applications", "AppProject": "appprojects"}.get(kind)
            namespace = doc["metadata"].get("namespace", ARGOCD_NAMESPACE)
            if plural and self.api.exists(f"/apis/argoproj.io/v1alpha1/namespaces/{namespace}/{plural}/{name}"):
                accepted.append(f"{kind}/{name}")
        self.check("Argo CD Applications and AppProjects accepted by CRD validation",
                   len(accepted) == len(self.argocd_docs), ", ".join(accepted))
        try:  # the test of the test: the same validation refuses an Application without a destination
            self.api.create(f"/apis/argoproj.io/v1alpha1/namespaces/{ARGOCD_NAMESPACE}/applications",
                            {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
                             "metadata": {"name": "e2e-invalid"}, "spec": {"project": "default"}}, dryRun="All")
            self.check("CRD validation refuses an invalid Application (test of the test)", False, "it was accepted")
        except ApiError as exc:
            self.check("CRD validation refuses an invalid Application (test of the test)", exc.status == 422,
                       exc.message[:160])

    def external_secrets(self) -> None:
        for es in self.docs_of("ExternalSecret"):
            name = es["metadata"]["name"]
            path = f"/apis/external-secrets.io/v1/namespaces/{self.namespace}/externalsecrets/{name}"
            target = (es["spec"].get("target") or {}).get("name") or name

            def ready(path=path) -> dict | None:  # the operator's verdict, either way
                return next((c for c in (self.api.get(path).get("status") or {}).get("conditions") or []
                             if c.get("type") == "Ready"), None)

            condition = self.wait(f"ExternalSecret {name}: the simulated operator reports Ready", ready, 30)
            secret = self.api.get_or_none(f"{self.ns}/secrets/{target}") or {}
            owners = [o["kind"] for o in secret.get("metadata", {}).get("ownerReferences") or []]
            owned = (es["spec"].get("target") or {}).get("creationPolicy", "Owner") == "Owner"
            self.check(f"ExternalSecret {name}: Ready, Secret {target} created from the environment's store",
                       condition.get("status") == "True" and bool(secret.get("data"))
                       and (owners == ["ExternalSecret"]) == owned,
                       f"Ready={condition.get('status')} {condition.get('reason')}: {condition.get('message')}; "
                       f"keys {sorted(secret.get('data') or {})}, owners {owners}")

    def hitl_ui(self) -> None:
        web = self.role("web")
        name = web["metadata"]["name"]
        selector = label_selector(web["spec"]["selector"]["matchLabels"])
        self.wait(f"{name}: 1 pod Running", lambda: len(self.running(selector)) == web["spec"].get("replicas", 1), 60)
        service = self.api.get(f"{self.ns}/services/{name}")
        wanted = next((d for d in self.docs_of("Service") if d["metadata"]["name"] == name), {})
        if wanted.get("spec", {}).get("type") == "NodePort":
            want = [p.get("nodePort") for p in wanted["spec"]["ports"]]
            got = [p.get("nodePort") for p in service["spec"]["ports"]]
            self.check(f"{name}: NodePort Service with node port {want} allocated", got == want and all(got),
                       f"type {service['spec']['type']}, nodePort {got}")
        ingresses = self.docs_of("Ingress")
        for ingress in ingresses:
            ing_name = ingress["metadata"]["name"]
            path = f"/apis/networking.k8s.io/v1/namespaces/{self.namespace}/ingresses/{ing_name}"
            live = self.wait(f"Ingress {ing_name} has a load-balancer address (simulated controller)",
                             lambda: ((self.api.get(path).get("status") or {}).get("loadBalancer") or {}).get("ingress"),
                             30)
            self.check(f"Ingress {ing_name} accepted, class {ingress['spec'].get('ingressClassName')}, "
                       f"address {live[0].get('ip')}", live == [{"ip": INGRESS_ADDRESS}])
        if not ingresses and wanted.get("spec", {}).get("type") != "NodePort":
            self.check(f"{name}: reachable through a NodePort or an Ingress", False, "neither is rendered")

    def orchestrator(self) -> None:
        rollouts.orchestrator(self)

    def workers(self) -> None:
        rollouts.workers(self)

    def loopback(self, sampler: SocketSampler) -> None:
        node = self.api.get(f"/api/v1/nodes/{NODE_NAME}")
        addresses = [a["address"] for a in node["status"].get("addresses") or [] if a["type"] == "InternalIP"]
        port = node["status"].get("daemonEndpoints", {}).get("kubeletEndpoint", {}).get("Port")
        namespace, service_name = METRICS_SERVICE
        service = self.api.get(f"/api/v1/namespaces/{namespace}/services/{service_name}")
        endpoints = self.api.get_or_none("/api/v1/namespaces/default/endpoints/kubernetes")
        self.check("loopback only: node InternalIP, kubelet port and metrics Service name 127.0.0.1 only",
                   addresses == [LOOPBACK] and port == self.cluster.ports.kwok
                   and service["spec"].get("type") == "ExternalName" and service["spec"].get("externalName") == LOOPBACK
                   and not (endpoints or {}).get("subsets"),
                   f"node {addresses}:{port}, metrics-server Service {service['spec'].get('type')} "
                   f"{service['spec'].get('externalName')}, kubernetes Endpoints {(endpoints or {}).get('subsets')}")
        now = sampler.sample()
        names = {n for n, *_ in now}
        self.check("loopback only: every TCP/UDP socket of every process, in every state, sampled every second "
                   "during the whole run", sampler.proved() and set(self.cluster.components) <= names,
                   f"{sampler.summary()}; processes with sockets now: {sorted(names)}")


def _service_address(key: str, value: str, environment: dict[str, str]) -> tuple[str | None, int | None]:
    """``(host, port)`` when an environment variable names an in-cluster service, else ``(None, None)``."""
    value = str(value)
    if "://" in value:
        parsed = urllib.parse.urlsplit(value)
        host, port = parsed.hostname or "", parsed.port
    elif key.endswith("_HOST"):
        host = value
        port_value = environment.get(key[:-len("_HOST")] + "_PORT")
        port = int(port_value) if port_value and str(port_value).isdigit() else None
    else:
        return None, None
    if not (host.endswith(".svc.cluster.local") or host.endswith(".svc") or key.endswith("_HOST")):
        return None, None
    return host, port
