"""The e2e run: each environment applied to a real control plane, the design's acceptance scenarios observed.

For each environment, :func:`run_e2e`:

1. renders a *test variant* of the environment (``render_all`` in a copy of the sources, with one
   more values file, :data:`E2E_VALUES`, that shortens the workers' scale-down stabilisation
   window) and checks that it differs from the committed ``rendered/<env>`` in exactly that;
2. starts a :class:`~doxops.cluster.cluster.Cluster` (etcd, API server, controller manager,
   scheduler, kwok nodes, metrics-server; all on 127.0.0.1) and pre-made PersistentVolumes for
   the StatefulSets' claims;
3. applies in phases: the Namespace and the CRDs of Argo CD and External Secrets (server-side;
   waits until they are Established), the ``argocd`` namespace, the Secrets (minikube: created
   with generated test values; prod: the simulated External Secrets store), then a server-side
   dry-run of everything, then the server-side apply of ``workloads/`` and ``argocd/``;
4. observes the acceptance scenarios (each a named :class:`Check`, see :class:`Scenario`).

Nothing is faked on the API side: every object is admitted (or refused) by the real API server,
Deployments, ReplicaSets, StatefulSets, the HPA and the PV binder are the real controllers, and the
HPA acts on metrics-server's numbers. What is simulated is listed in :data:`SIMULATED`.
"""

from __future__ import annotations

import base64
import secrets
import shutil
import tempfile
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import yaml

from .. import environments, render, schemas
from ..environments import Environment
from ..errors import Findings
from ..paths import REPO_ROOT
from . import binaries as binaries_mod
from .api import MERGE, STRATEGIC, Api, ApiError, end_watch, events
from .cluster import CPU_ANNOTATION, LOOPBACK, METRICS_SERVICE, NODE_NAME, Cluster, non_loopback_sockets
from .simulators import INGRESS_ADDRESS, Simulators

Progress = Callable[[str], None]

#: Helm values added to each environment for the test variant (the chart's own knob, not a patch).
E2E_VALUES = {"workers": {"scaleDownStabilizationWindowSeconds": 5}}

#: What the e2e cluster simulates instead of running (also in the README).
SIMULATED = (
    "kubelets and nodes: kwok (pods go Pending then Running after ~1-2 s, terminate 2-3 s after deletion; "
    "no containers, probes or volume mounts)",
    "container CPU usage: kwok's resource-usage simulation, set per container through a node annotation",
    "ingress controller: doxops.cluster.simulators.IngressSimulator (status address 127.0.0.1)",
    "External Secrets Operator: doxops.cluster.simulators.ExternalSecretsSimulator "
    "(fake-provider ClusterSecretStore with generated values)",
    "storage: pre-made hostPath PersistentVolumes pre-bound to the StatefulSets' claims (nothing mounts them)",
)

FORBIDDEN_KINDS = {"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration", "APIService",
                   "Endpoints", "EndpointSlice"}
ARGOCD_NAMESPACE = "argocd"


# ---------------------------------------------------------------------- report


@dataclass
class Check:
    name: str
    ok: bool
    detail: str = ""


@dataclass
class EnvReport:
    env: str
    seconds: float = 0.0
    checks: list[Check] = field(default_factory=list)
    observations: list[str] = field(default_factory=list)
    not_done: list[str] = field(default_factory=list)
    workdir: str = ""

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    def text(self) -> str:
        lines = [f"e2e {self.env}: {'PASSED' if self.ok else 'FAILED'} in {self.seconds:.0f} s"]
        lines += [f"  [{'ok' if c.ok else 'FAIL'}] {c.name}" + (f": {c.detail}" if c.detail else "")
                  for c in self.checks]
        lines += [f"  observed: {o}" for o in self.observations]
        lines += [f"  not done: {n}" for n in self.not_done]
        if self.workdir:
            lines.append(f"  work directory (logs) kept: {self.workdir}")
        return "\n".join(lines)


class ScenarioFailed(Exception):
    """A step the rest of the scenario depends on failed; the report says which."""


# ---------------------------------------------------------------------- the test variant


def _load_docs(directory: Path) -> list[tuple[Path, dict]]:
    out = []
    for path in sorted(directory.rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                out.append((path, doc))
    return out


def render_variant(env: Environment, target: Path, progress: Progress) -> tuple[Path, dict[str, str]]:
    """Render ``env`` plus :data:`E2E_VALUES` from a copy of the sources into ``target/rendered/<env>``."""
    source = target / "src"
    for name in ("helm", "apps", "environments", "argocd"):
        if (REPO_ROOT / name).exists():
            shutil.copytree(REPO_ROOT / name, source / name, ignore=shutil.ignore_patterns(".*", "__pycache__"))
    env_dir = source / "environments" / env.name
    (env_dir / "e2e-values.yaml").write_text(
        "# Added by doxops.cluster.e2e for the test variant only.\n" + yaml.safe_dump(E2E_VALUES))
    kfile = env_dir / environments.KUSTOMIZATION
    data = yaml.safe_load(kfile.read_text())
    for chart in data.get("helmCharts") or []:
        chart["additionalValuesFiles"] = [*(chart.get("additionalValuesFiles") or []), "e2e-values.yaml"]
    kfile.write_text(yaml.safe_dump(data, sort_keys=False))
    copy = next(e for e in environments.discover(source) if e.name == env.name)
    [result] = render.render_all([copy], root=source, write=False, use_cache=False, jobs=1,
                                 progress=lambda message: None)
    out = target / "rendered" / env.name
    for rel, text in result.files.items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text(text)
    return out, result.files


def variant_differences(env: Environment, files: dict[str, str]) -> list[str]:
    """How the test variant differs from the committed render, beyond the shortened window (should be none)."""
    committed_dir = REPO_ROOT / render.RENDERED / env.name
    committed = {str(p.relative_to(committed_dir)): p.read_text() for p in committed_dir.rglob("*.yaml")}
    problems = []
    for rel in sorted(set(committed) | set(files)):
        if rel not in committed or rel not in files:
            problems.append(f"{rel}: only in {'the variant' if rel in files else 'rendered/'}")
            continue
        # Objects are compared, not bytes: the header comments name source paths, here those of the copy.
        new, old = yaml.safe_load(files[rel]), yaml.safe_load(committed[rel])
        if new == old:
            continue
        if new.get("kind") == "HorizontalPodAutoscaler":
            for doc in (new, old):
                doc.get("spec", {}).get("behavior", {}).get("scaleDown", {}).pop("stabilizationWindowSeconds", None)
            if new == old:
                continue
        problems.append(f"{rel}: differs from rendered/{env.name}/{rel} beyond the stabilisation window "
                        f"(is rendered/ stale? run ./dox render)")
    return problems


# ---------------------------------------------------------------------- watching pods


class PodWatch:
    """Watches pods matching a selector; records how many existed at once (terminating ones count)."""

    def __init__(self, api: Api, namespace: str, selector: str) -> None:
        self.api, self.path, self.selector = api, f"/api/v1/namespaces/{namespace}/pods", selector
        listing = api.get(self.path, labelSelector=selector)
        self.present: dict[str, dict] = {p["metadata"]["name"]: p for p in listing.get("items") or []}
        self.max_present = len(self.present)
        self.started = time.monotonic()
        self.timeline: list[tuple[float, str, str, str]] = []
        self._response = api.open_watch(self.path, listing["metadata"]["resourceVersion"], timeout=600,
                                        labelSelector=selector)
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"watch {selector}")
        self._thread.start()

    def _run(self) -> None:
        for event in events(self._response):
            kind, pod = event.get("type"), event.get("object") or {}
            name = (pod.get("metadata") or {}).get("name", "")
            with self._lock:
                if kind in ("ADDED", "MODIFIED"):
                    if name not in self.present:
                        self.timeline.append((time.monotonic() - self.started, "created", name, ""))
                    elif pod["metadata"].get("deletionTimestamp") and \
                            not self.present[name]["metadata"].get("deletionTimestamp"):
                        self.timeline.append((time.monotonic() - self.started, "terminating", name, ""))
                    self.present[name] = pod
                elif kind == "DELETED":
                    self.present.pop(name, None)
                    self.timeline.append((time.monotonic() - self.started, "gone", name, ""))
                self.max_present = max(self.max_present, len(self.present))

    def stop(self) -> None:
        end_watch(self._response)
        self._thread.join(timeout=5)
        try:
            self._response.close()
        except Exception:  # noqa: BLE001 - closing a finished stream
            pass

    def story(self) -> str:
        with self._lock:
            return "; ".join(f"{t:.1f}s {what} {name}" for t, what, name, _ in self.timeline)


# ---------------------------------------------------------------------- the scenario


def _is_running(pod: dict) -> bool:
    if pod["metadata"].get("deletionTimestamp") or pod.get("status", {}).get("phase") != "Running":
        return False
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in pod["status"].get("conditions") or [])


def _cpu_millis(quantity: str) -> int:
    quantity = str(quantity)
    if quantity.endswith("m"):
        return int(quantity[:-1])
    return int(float(quantity) * 1000)


def _selector(match_labels: dict) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(match_labels.items()))


class Scenario:
    """The acceptance scenarios of one environment on one running cluster."""

    def __init__(self, env: Environment, cluster: Cluster, manifests: Path, report: EnvReport,
                 progress: Progress) -> None:
        self.env, self.cluster, self.api = env, cluster, cluster.api
        self.manifests, self.report, self.progress = manifests, report, progress
        self.namespace = env.namespace
        self.docs = [d for _, d in _load_docs(manifests / "workloads")]
        self.argocd_docs = [d for _, d in _load_docs(manifests / "argocd")] if (manifests / "argocd").is_dir() else []
        self.ns = f"/api/v1/namespaces/{self.namespace}"
        self.apps = f"/apis/apps/v1/namespaces/{self.namespace}"
        self._lock = threading.Lock()

    # --------------------------------------------------------------- helpers

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        with self._lock:
            self.report.checks.append(Check(name, bool(ok), detail))
        self.progress(f"  [{'ok' if ok else 'FAIL'}] {name}" + (f": {detail}" if detail else ""))
        return bool(ok)

    def observe(self, text: str) -> None:
        with self._lock:
            self.report.observations.append(text)
        self.progress(f"  observed: {text}")

    def require(self, name: str, ok: bool, detail: str = "") -> None:
        if not self.check(name, ok, detail):
            raise ScenarioFailed(name)

    def wait(self, what: str, check, timeout: float = 60.0, interval: float = 0.5):
        try:
            return self.api.wait_for(what, check, timeout, interval)
        except TimeoutError as exc:
            self.check(what, False, str(exc))
            raise ScenarioFailed(what) from None

    def docs_of(self, kind: str) -> list[dict]:
        return [d for d in self.docs if d.get("kind") == kind]

    def doc(self, kind: str, name: str) -> dict:
        return next(d for d in self.docs if d.get("kind") == kind and d["metadata"]["name"] == name)

    def role(self, role: str) -> dict:
        """The one Deployment with ``dox-asdlc.io/role=<role>`` (found by label, not by name)."""
        found = [d for d in self.docs_of("Deployment")
                 if (d["metadata"].get("labels") or {}).get("dox-asdlc.io/role") == role]
        if len(found) != 1:
            raise ScenarioFailed(f"expected one Deployment with role {role}, found {len(found)}")
        return found[0]

    def pods(self, selector: str) -> list[dict]:
        return self.api.items(f"{self.ns}/pods", labelSelector=selector)

    def running(self, selector: str) -> list[dict]:
        return [p for p in self.pods(selector) if _is_running(p)]

    def kubectl_apply(self, *paths: Path, dry_run: bool = False) -> str:
        args = ["apply", "--server-side", "--field-manager=dox-e2e"]
        if dry_run:
            args.append("--dry-run=server")
        for path in paths:
            args += ["-f", str(path)] + (["--recursive"] if path.is_dir() else [])
        proc = self.cluster.kubectl(*args, check=False)
        if proc.returncode != 0:
            self.check(f"{'server-side dry-run' if dry_run else 'apply'} of {', '.join(p.name for p in paths)}",
                       False, proc.stderr.strip())
            raise ScenarioFailed("apply")
        return proc.stderr

    # --------------------------------------------------------------- phases

    def guard(self) -> None:
        """Refuse what must never be applied here: webhooks, APIServices, Endpoints, webhook conversion."""
        bad = []
        for doc in self.docs + self.argocd_docs:
            if doc.get("kind") in FORBIDDEN_KINDS:
                bad.append(f"{doc['kind']} {doc['metadata'].get('name')}")
            if doc.get("kind") == "CustomResourceDefinition" and \
                    (doc.get("spec", {}).get("conversion") or {}).get("strategy") == "Webhook":
                bad.append(f"CRD {doc['metadata'].get('name')} with webhook conversion")
        self.require("rendered manifests hold no webhooks, APIServices or Endpoints", not bad, ", ".join(bad))

    def provide_storage(self) -> None:
        """A StorageClass per class the claims name and one pre-bound hostPath PV per claim."""
        classes: set[str] = set()
        count = 0
        for sts in self.docs_of("StatefulSet"):
            replicas = sts["spec"].get("replicas", 1)
            for template in sts["spec"].get("volumeClaimTemplates") or []:
                spec = template["spec"]
                storage_class = spec.get("storageClassName")
                if storage_class and storage_class not in classes:
                    classes.add(storage_class)
                    self.api.create("/apis/storage.k8s.io/v1/storageclasses", {
                        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                        "metadata": {"name": storage_class},
                        "provisioner": "kubernetes.io/no-provisioner", "volumeBindingMode": "Immediate",
                        "reclaimPolicy": "Retain"})
                for ordinal in range(replicas):
                    claim = f"{template['metadata']['name']}-{sts['metadata']['name']}-{ordinal}"
                    path = self.cluster.workdir / "volumes" / claim
                    path.mkdir(parents=True, exist_ok=True)
                    self.api.create("/api/v1/persistentvolumes", {
                        "apiVersion": "v1", "kind": "PersistentVolume",
                        "metadata": {"name": f"e2e-{self.namespace}-{claim}"},
                        "spec": {"capacity": {"storage": spec["resources"]["requests"]["storage"]},
                                 "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
                                 "storageClassName": storage_class or "",
                                 "persistentVolumeReclaimPolicy": "Retain",
                                 "claimRef": {"namespace": self.namespace, "name": claim},
                                 "hostPath": {"path": str(path), "type": "DirectoryOrCreate"}}})
                    count += 1
        self.observe(f"storage: {count} pre-made PersistentVolumes, StorageClasses {', '.join(sorted(classes))}")

    def apply_crds_and_namespaces(self) -> None:
        namespace_files = sorted({str(p) for p, d in _load_docs(self.manifests / "workloads")
                                  if d.get("kind") == "Namespace"})
        crds = [Path(p) for p in schemas.crd_manifests()]
        crd_docs = [d for p in crds for d in yaml.safe_load_all(p.read_text()) if d]
        webhooks = [d["metadata"]["name"] for d in crd_docs if d.get("kind") != "CustomResourceDefinition"
                    or (d.get("spec", {}).get("conversion") or {}).get("strategy") == "Webhook"]
        self.require("upstream CRD files hold CRDs only, without conversion webhooks", not webhooks,
                      ", ".join(webhooks))
        self.kubectl_apply(*[Path(p) for p in namespace_files], *crds)
        names = [d["metadata"]["name"] for d in crd_docs]

        def established() -> bool:
            for name in names:
                crd = self.api.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
                if not any(c["type"] == "Established" and c["status"] == "True"
                           for c in crd.get("status", {}).get("conditions") or []):
                    return False
            return True

        self.wait("CRDs of Argo CD and External Secrets Established", established, 60)
        self.check("Namespace and CRDs applied server-side", True, f"{len(names)} CRDs")
        if self.argocd_docs and not self.api.exists(f"/api/v1/namespaces/{ARGOCD_NAMESPACE}"):
            self.api.create("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                   "metadata": {"name": ARGOCD_NAMESPACE}})

    def provide_secrets(self, simulators: Simulators) -> None:
        external = self.docs_of("ExternalSecret")
        if external:
            stores = simulators.external_secrets.create_store(external)
            self.observe(f"External Secrets: simulated store {', '.join(stores)} (fake provider, generated values) "
                         f"for {len(external)} ExternalSecrets")
            return
        # minikube: the three Secrets the README's task creates from the operator's environment.
        wanted = {"git-credentials": {"username": "e2e-" + secrets.token_hex(4), "password": secrets.token_urlsafe(24)},
                  "anthropic-api-key": {"api-key": secrets.token_urlsafe(32)},
                  "redis-password": {"password": secrets.token_urlsafe(24)}}
        for name, data in wanted.items():
            self.api.create(f"{self.ns}/secrets", {
                "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                "metadata": {"name": name, "annotations": {"e2e.dox-asdlc.io/generated": "test values"}},
                "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}})
        self.observe("Secrets git-credentials, anthropic-api-key (api-key), redis-password (password) "
                     "created with generated test values")

    def apply_everything(self) -> None:
        targets = [self.manifests / "workloads"] + ([self.manifests / "argocd"] if self.argocd_docs else [])
        warnings = self.kubectl_apply(*targets, dry_run=True)
        self.check("server-side dry-run of every manifest", True)
        warnings += self.kubectl_apply(*targets)
        psa = [line for line in warnings.splitlines() if "PodSecurity" in line]
        self.check("server-side apply of workloads/ and argocd/ (no Pod Security warnings)", not psa, "; ".join(psa))

    # --------------------------------------------------------------- scenarios

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
            selector = _selector(deployment["spec"]["selector"]["matchLabels"])
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
            self.wait(f"ExternalSecret {name} Ready (simulated operator)", lambda: any(
                c.get("type") == "Ready" and c.get("status") == "True"
                for c in (self.api.get(path).get("status") or {}).get("conditions") or []), 30)
            secret = self.api.get_or_none(f"{self.ns}/secrets/{target}") or {}
            owners = [o["kind"] for o in secret.get("metadata", {}).get("ownerReferences") or []]
            self.check(f"ExternalSecret {name}: Ready, Secret {target} created with keys "
                       f"{sorted(secret.get('data') or {})}", bool(secret.get("data")) and
                       (owners == ["ExternalSecret"]) == ((es["spec"].get("target") or {}).get("creationPolicy", "Owner") == "Owner"))

    def hitl_ui(self) -> None:
        web = self.role("web")
        name = web["metadata"]["name"]
        selector = _selector(web["spec"]["selector"]["matchLabels"])
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
        singleton = self.role("singleton")
        name = singleton["metadata"]["name"]
        selector = _selector(singleton["spec"]["selector"]["matchLabels"])
        path = f"{self.apps}/deployments/{name}"

        def settled(image: str | None = None):
            deployment = self.api.get(path)
            status = deployment.get("status", {})
            pods = self.pods(selector)
            if status.get("observedGeneration", 0) < deployment["metadata"]["generation"]:
                return None
            if status.get("updatedReplicas") != 1 or status.get("availableReplicas") != 1 or len(pods) != 1:
                return None
            if not _is_running(pods[0]):
                return None
            if image and pods[0]["spec"]["containers"][0]["image"] != image:
                return None
            return pods[0]

        pod = self.wait(f"{name}: exactly 1 pod Running", settled, 60)
        self.check(f"{name}: exactly 1 pod Running", True, pod["metadata"]["name"])

        mount_path, secret_name = _git_credentials_expectation()
        container = pod["spec"]["containers"][0]
        mounts = {m["mountPath"]: m for m in container.get("volumeMounts") or []}
        mount = mounts.get(mount_path)
        volume = next((v for v in pod["spec"].get("volumes") or [] if mount and v["name"] == mount["name"]), {})
        self.check(f"{name}: Git credentials Secret {secret_name} mounted read-only at {mount_path}",
                   bool(mount) and mount.get("readOnly") is True
                   and (volume.get("secret") or {}).get("secretName") == secret_name,
                   f"mounts {sorted(mounts)}")
        others = [d["metadata"]["name"] for d in self.docs_of("Deployment") + self.docs_of("StatefulSet")
                  if d["metadata"]["name"] != name and any(
                      (v.get("secret") or {}).get("secretName") == secret_name
                      for v in d["spec"]["template"]["spec"].get("volumes") or [])]
        self.check(f"only {name} mounts {secret_name}", not others, ", ".join(others))

        image = container["image"]
        repository = image.rsplit(":", 1)[0]

        # 1. An image change under the rendered strategy: never two pods at once.
        strategy = self.api.get(path)["spec"]["strategy"]["type"]
        watch = PodWatch(self.api, self.namespace, selector)
        new_image = f"{repository}:e2e-rollout-1"
        started = time.monotonic()
        self.api.patch(path, {"spec": {"template": {"spec": {"containers": [{"name": container["name"],
                                                                             "image": new_image}]}}}}, STRATEGIC)
        self.wait(f"{name}: rollout to {new_image}", lambda: settled(new_image), 90)
        watch.stop()
        self.check(f"{name}: image change rolled out ({strategy}) with never two pods at once",
                   watch.max_present == 1 and strategy == "Recreate",
                   f"at most {watch.max_present} pod(s) in {time.monotonic() - started:.1f} s: {watch.story()}")

        # 2. A pod deleted by hand: the ReplicaSet replaces it at once, the old one still terminating.
        victim = settled(new_image)["metadata"]["name"]
        watch = PodWatch(self.api, self.namespace, selector)
        self.api.delete(f"{self.ns}/pods/{victim}")

        def replaced():  # one pod again, Running, and it is not the deleted one
            pod = settled(new_image)
            return pod if pod and pod["metadata"]["name"] != victim else None

        self.wait(f"{name}: replacement of a deleted pod Running", replaced, 60)
        watch.stop()
        if watch.max_present >= 2:
            gone = next((t for t, what, pod_name, _ in watch.timeline if what == "gone" and pod_name == victim), None)
            created = next((t for t, what, pod_name, _ in watch.timeline if what == "created"), None)
            span = f" for {gone - created:.1f} s" if gone is not None and created is not None else ""
            self.observe(f"{name}: deleting pod {victim}: the ReplicaSet created a replacement while it was still "
                         f"terminating, so two orchestrator pods overlapped{span} ({watch.story()}). Recreate orders "
                         "rollouts only; a deleted or evicted pod is replaced at once.")
        else:
            self.observe(f"{name}: deleting pod {victim}: the replacement came only after it was gone, no overlap "
                         f"({watch.story()})")
        self.check(f"{name}: deleted pod replaced, back to exactly 1 pod", settled(new_image) is not None)

        # 3. The test of the test: the same watch sees two pods under RollingUpdate with maxSurge 1.
        watch = PodWatch(self.api, self.namespace, selector)
        variant_image = f"{repository}:e2e-rollout-2"
        self.api.patch(path, {"spec": {"strategy": {"type": "RollingUpdate",
                                                    "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
                                       "template": {"spec": {"containers": [{"name": container["name"],
                                                                             "image": variant_image}]}}}}, STRATEGIC)
        self.wait(f"{name}: RollingUpdate variant rolled out", lambda: settled(variant_image), 90)
        watch.stop()
        self.check("the rollout watch catches overlap under RollingUpdate maxSurge 1 (test of the test)",
                   watch.max_present == 2, f"at most {watch.max_present} pod(s): {watch.story()}")
        self.api.patch(path, {"spec": {"strategy": {"type": strategy, "rollingUpdate": None}}}, MERGE)

    def workers(self) -> None:
        pool = self.role("autoscaled-pool")
        name = pool["metadata"]["name"]
        selector = _selector(pool["spec"]["selector"]["matchLabels"])
        hpa_doc = next(h for h in self.docs_of("HorizontalPodAutoscaler")
                       if h["spec"]["scaleTargetRef"]["name"] == name)
        hpa_path = f"/apis/autoscaling/v2/namespaces/{self.namespace}/horizontalpodautoscalers/{hpa_doc['metadata']['name']}"
        low, high = hpa_doc["spec"]["minReplicas"], hpa_doc["spec"]["maxReplicas"]
        target = hpa_doc["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"]
        window = hpa_doc["spec"].get("behavior", {}).get("scaleDown", {}).get("stabilizationWindowSeconds")
        self.check(f"{name}: the Deployment sets no replica count (the HPA owns it)", "replicas" not in pool["spec"])
        deployment_path = f"{self.apps}/deployments/{name}"

        def replicas() -> int:
            return self.api.get(deployment_path)["spec"].get("replicas", 0)

        self.wait(f"{name}: HPA brings the pool to {low} Running pods",
                  lambda: replicas() == low and len(self.running(selector)) == low, 60)
        rescales = [e["message"] for e in self.api.items(f"{self.ns}/events", fieldSelector=(
            f"involvedObject.kind=HorizontalPodAutoscaler,involvedObject.name={hpa_doc['metadata']['name']}"))
            if e.get("reason") == "SuccessfulRescale"]
        self.check(f"{name}: {low} pods, brought there by the HPA", bool(rescales), "; ".join(rescales))

        container = pool["spec"]["template"]["spec"]["containers"][0]
        request = _cpu_millis(container["resources"]["requests"]["cpu"])
        metrics_path = f"/apis/metrics.k8s.io/v1beta1/namespaces/{self.namespace}/pods"

        def set_usage(millis: int) -> None:
            self.api.patch(f"/api/v1/nodes/{NODE_NAME}",
                           {"metadata": {"annotations": {CPU_ANNOTATION + container["name"]: f"{millis}m"}}})

        # Up: simulated usage of three times the request, far above the target.
        peak, seen_limited = 0, False
        hot = request * 3
        set_usage(hot)
        started = time.monotonic()

        def at_max():
            nonlocal peak, seen_limited
            count = replicas()
            peak = max(peak, count)
            status = self.api.get(hpa_path).get("status", {})
            seen_limited = seen_limited or any(c.get("type") == "ScalingLimited" and c.get("status") == "True"
                                               and c.get("reason") == "TooManyReplicas" for c in status.get("conditions") or [])
            return count == high and len(self.running(selector)) == high

        self.wait(f"{name}: scale up to {high} under {hot}m CPU per pod ({hot * 100 // request}% of the request)",
                  at_max, 150, interval=1.0)
        up_seconds = time.monotonic() - started
        usage = {m["metadata"]["name"]: c["usage"]["cpu"] for m in self.api.items(metrics_path, labelSelector=selector)
                 for c in m.get("containers") or [] if c["name"] == container["name"]}
        self.check(f"{name}: metrics.k8s.io (metrics-server, scraping kwok) reports the pods' CPU",
                   len(usage) >= low, f"{len(usage)} pods, e.g. {next(iter(usage.values()), None)}")
        status = self.api.get(hpa_path).get("status", {})
        utilisation = next((m["resource"]["current"].get("averageUtilization") for m in status.get("currentMetrics") or []
                            if m.get("type") == "Resource"), None)
        for _ in range(6):  # keep looking for a few seconds: the cap must hold
            time.sleep(0.5)
            at_max()
        self.check(f"{name}: CPU above {target}% scales up to {high}, capped there",
                   peak == high, f"reached {high} in {up_seconds:.0f} s at {utilisation}% CPU; never above {peak}; "
                   f"ScalingLimited/TooManyReplicas {'seen' if seen_limited else 'not seen'}")

        # Down: usage a tenth of the request; the HPA waits out the stabilisation window first.
        set_usage(max(1, request // 10))
        started = time.monotonic()
        self.wait(f"{name}: scale back down to {low}", lambda: replicas() == low, 150, interval=1.0)
        down_seconds = time.monotonic() - started
        self.wait(f"{name}: {low} pods left after scale-down", lambda: len(self.pods(selector)) == low, 60)
        live_window = (self.api.get(hpa_path)["spec"].get("behavior", {}).get("scaleDown", {})
                       .get("stabilizationWindowSeconds"))
        self.check(f"{name}: back down to {low} after the stabilisation window ({window} s)",
                   window is not None and live_window == window and down_seconds >= window,
                   f"scaled down {down_seconds:.0f} s after CPU fell to 10% (live HPA window {live_window} s)")

    def loopback(self) -> None:
        node = self.api.get(f"/api/v1/nodes/{NODE_NAME}")
        addresses = [a["address"] for a in node["status"].get("addresses") or [] if a["type"] == "InternalIP"]
        port = node["status"].get("daemonEndpoints", {}).get("kubeletEndpoint", {}).get("Port")
        namespace, service_name = METRICS_SERVICE
        service = self.api.get(f"/api/v1/namespaces/{namespace}/services/{service_name}")
        endpoints = self.api.get_or_none("/api/v1/namespaces/default/endpoints/kubernetes")
        bad = non_loopback_sockets(self.cluster.socket_report())
        self.check("loopback only: node InternalIP, metrics Service, sockets of every process",
                   addresses == [LOOPBACK] and port == self.cluster.ports.kwok
                   and service["spec"].get("type") == "ExternalName" and service["spec"].get("externalName") == LOOPBACK
                   and not (endpoints or {}).get("subsets") and not bad,
                   f"node {addresses}:{port}, metrics-server Service {service['spec'].get('type')} "
                   f"{service['spec'].get('externalName')}; non-loopback sockets: {bad or 'none'}")


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


def _git_credentials_expectation() -> tuple[str, str]:
    """Where the chart says the Git credentials go (its values), and the Secret's name."""
    chart = REPO_ROOT / "helm" / "dox-asdlc"
    orchestrator = yaml.safe_load((chart / "charts" / "orchestrator" / "values.yaml").read_text())
    umbrella = yaml.safe_load((chart / "values.yaml").read_text())
    return (orchestrator["gitCredentials"]["mountPath"],
            umbrella["global"]["secrets"]["gitCredentials"]["name"])


# ---------------------------------------------------------------------- the runner


def _attempt(report: EnvReport, step: Callable[[], None]) -> bool:
    """Run one scenario step; a failed requirement or an unexpected error becomes a failed check."""
    try:
        step()
        return True
    except ScenarioFailed:
        return False
    except Exception as exc:  # noqa: BLE001 - reported with its message; the other steps still run
        report.checks.append(Check(f"{step.__name__.replace('_', ' ')} ran to the end", False,
                                   f"{type(exc).__name__}: {exc}"))
        return False


def run_env(env: Environment, paths: dict[str, Path], *, keep: bool = False, progress: Progress = print) -> EnvReport:
    """One environment, from render to teardown; never raises for a failed check (the report says it)."""
    report = EnvReport(env.name)
    started = time.monotonic()
    scratch = Path(tempfile.mkdtemp(prefix=f"dox-e2e-{env.name}-"))
    say = lambda message: progress(f"[{env.name}] {message}")  # noqa: E731
    cluster = Cluster(scratch / "cluster", binaries=paths, keep=keep, progress=say, name=env.name)
    try:
        manifests, files = render_variant(env, scratch / "variant", say)
        problems = variant_differences(env, files)
        report.checks.append(Check(f"test variant = rendered/{env.name} + {E2E_VALUES} only", not problems,
                                   "; ".join(problems[:5])))
        with cluster:
            scenario = Scenario(env, cluster, manifests, report, say)
            with Simulators(cluster.api) as simulators:
                def provide_secrets() -> None:
                    scenario.provide_secrets(simulators)

                setup = (scenario.guard, scenario.provide_storage, scenario.apply_crds_and_namespaces,
                         provide_secrets, scenario.apply_everything)
                if all(_attempt(report, step) for step in setup):
                    for step in (scenario.external_secrets, scenario.stateful_sets):
                        _attempt(report, step)
                    # The orchestrator's rollouts and the workers' autoscaling touch different objects and
                    # mostly wait on controllers: they run side by side.
                    with ThreadPoolExecutor(max_workers=2) as pool:
                        list(pool.map(lambda step: _attempt(report, step), (scenario.orchestrator, scenario.workers)))
                    for step in (scenario.hitl_ui, scenario.config_and_service_resolution, scenario.pod_security,
                                 scenario.argocd, scenario.loopback):
                        _attempt(report, step)
                if simulators.errors:
                    report.checks.append(Check("simulators ran without errors", False,
                                               "; ".join(simulators.errors[:3])))
            if not report.ok:
                cluster.mark_failed()
    except Exception as exc:  # noqa: BLE001 - start-up errors carry their log tails in the message
        cluster.mark_failed()
        report.checks.append(Check("the cluster and the run itself", False, f"{type(exc).__name__}: {exc}"))
    finally:
        report.seconds = time.monotonic() - started
        if not report.ok and cluster.processes and not any("log tails" in o for o in report.observations):
            report.observations.append("log tails:\n" + "\n\n".join(p.describe() for p in cluster.processes))
        if report.ok and not keep:
            shutil.rmtree(scratch, ignore_errors=True)
        else:
            report.workdir = str(scratch)
    return report


def run_reports(env_names: list[str] | None, keep: bool = False, progress: Progress = print,
                parallel: bool = True, paths: dict[str, Path] | None = None) -> list[EnvReport]:
    """Run each environment (all when ``env_names`` is empty) and return the reports; never raises for checks.

    ``parallel`` runs the environments side by side, each on its own cluster and ports (most of a run
    is waiting for controllers, so two fit the two cores).
    """
    return run_each(run_env, env_names, keep=keep, progress=progress, parallel=parallel, paths=paths)


def run_each(run_one, env_names: list[str] | None, *, keep: bool, progress: Progress, parallel: bool,
             paths: dict[str, Path] | None) -> list[EnvReport]:
    """``run_one(env, paths, keep=, progress=)`` for each selected environment, side by side if ``parallel``."""
    envs = environments.select(",".join(env_names) if env_names else None)
    paths = paths or binaries_mod.ensure(progress=progress).paths
    if parallel and len(envs) > 1:
        with ThreadPoolExecutor(max_workers=len(envs)) as pool:
            return list(pool.map(lambda e: run_one(e, paths, keep=keep, progress=progress), envs))
    return [run_one(e, paths, keep=keep, progress=progress) for e in envs]


def run_e2e(env_names: list[str] | None, keep: bool = False, progress: Progress = print,
            parallel: bool = True) -> list[EnvReport]:
    """Apply each environment (all when ``env_names`` is empty) to its own real control plane and check it.

    Builds the pinned binaries on first use. Prints each environment's report; raises
    :class:`~doxops.errors.Findings` (exit 1) naming every failed check when any environment
    fails, and returns the reports otherwise. ``keep`` keeps every work directory (logs,
    kubeconfig, the rendered variant); a failed environment's is always kept.
    """
    return conclude("e2e", run_reports(env_names, keep=keep, progress=progress, parallel=parallel), progress)


def conclude(what: str, reports: list, progress: Progress) -> list:
    """Print every report; raise Findings (exit 1) naming each failed check, or return the reports."""
    for report in reports:
        progress(report.text())
    failed = [r for r in reports if not r.ok]
    if failed:
        raise Findings(f"{what} failed:\n" + "\n".join(
            f"  {r.env}: {c.name}: {c.detail}" for r in failed for c in r.failures)
            + "\n(logs: " + ", ".join(r.workdir for r in failed) + ")")
    return reports
