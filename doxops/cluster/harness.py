"""The harness both e2e runs share: an environment's rendered manifests on one running cluster.

:class:`Harness` holds what every scenario needs: the rendered objects (``workloads/`` and
``argocd/``), the report helpers (:meth:`Harness.check` records an assertion,
:meth:`Harness.observe` a milestone or a fact, :meth:`Harness.wait` a wait that becomes a
failed check when it times out) and the set-up phases both runs start with (refuse webhooks,
provide storage, apply the Namespace and the CRDs, provide the Secrets, dry-run and apply).
:func:`run_each` runs one environment's function per selected environment, side by side.
The plain e2e's scenarios are :mod:`.scenarios` and :mod:`.rollouts`; Argo CD's are in
:mod:`.argocd`.
"""

from __future__ import annotations

import secrets
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

from .. import environments, operate, schemas
from ..progress import Progress
from ..environments import Environment
from . import binaries as binaries_mod
from .cluster import Cluster
from .report import Check, EnvReport, ScenarioFailed
from .simulators import Simulators, store_definition
from .values import environment_values


FORBIDDEN_KINDS = {"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration", "APIService",
                   "Endpoints", "EndpointSlice"}
ARGOCD_NAMESPACE = "argocd"


def load_docs(directory: Path) -> list[tuple[Path, dict]]:
    out = []
    for path in sorted(directory.rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                out.append((path, doc))
    return out


def is_running(pod: dict) -> bool:
    if pod["metadata"].get("deletionTimestamp") or pod.get("status", {}).get("phase") != "Running":
        return False
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in pod["status"].get("conditions") or [])


def cpu_millis(quantity: str) -> int:
    quantity = str(quantity)
    if quantity.endswith("m"):
        return int(quantity[:-1])
    return int(float(quantity) * 1000)


def label_selector(match_labels: dict) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(match_labels.items()))


class Harness:
    """One environment's rendered manifests on one running cluster: report helpers and set-up phases."""

    def __init__(self, env: Environment, cluster: Cluster, manifests: Path, report: EnvReport,
                 progress: Progress) -> None:
        self.env, self.cluster, self.api = env, cluster, cluster.api
        self.manifests, self.report, self.progress = manifests, report, progress
        self.namespace = env.namespace
        self.docs = [d for _, d in load_docs(manifests / "workloads")]
        self.argocd_docs = [d for _, d in load_docs(manifests / "argocd")] if (manifests / "argocd").is_dir() else []
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
        return [p for p in self.pods(selector) if is_running(p)]

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
        namespace_files = sorted({str(p) for p, d in load_docs(self.manifests / "workloads")
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
        self.observe(f"Namespace and {len(names)} CRDs applied server-side, the CRDs Established")
        if self.argocd_docs and not self.api.exists(f"/api/v1/namespaces/{ARGOCD_NAMESPACE}"):
            self.api.create("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                   "metadata": {"name": ARGOCD_NAMESPACE}})

    def provide_secrets(self, simulators: Simulators) -> None:
        external = self.docs_of("ExternalSecret")
        if external:
            # The store the environment's values say exists: never what the ExternalSecrets ask for.
            definition = store_definition(environment_values(self.env), {
                name: [k for k in keys if k] for name, keys in operate.MINIKUBE_SECRETS.items()})
            store = simulators.external_secrets.create_store(definition)
            self.observe(f"External Secrets: simulated store {definition.kind} {store} (fake provider, generated "
                         f"values) holding {', '.join(definition.keys())}, for {len(external)} ExternalSecrets")
            return
        # minikube: the Secrets `./dox minikube-secrets` creates (its own function), from generated test values.
        generated = {variable: "e2e-" + secrets.token_urlsafe(24) for keys in operate.MINIKUBE_SECRETS.values()
                     for variable in keys.values()}
        made = []
        for manifest in operate.secret_manifests(self.env, generated):
            manifest["metadata"].setdefault("annotations", {})["e2e.dox-asdlc.io/generated"] = "test values"
            self.api.create(f"{self.ns}/secrets", manifest)
            made.append(f"{manifest['metadata']['name']} ({', '.join(sorted(manifest['data']))})")
        self.observe(f"Secrets {', '.join(made)} created as `./dox minikube-secrets` makes them, with generated "
                     "test values")

    def dry_run_stage(self) -> None:
        """Every manifest through validate's API-server stage (the same code, cache and apply modes as
        ``./dox validate``): a rejection there is a failed check here, before anything is applied."""
        from ..validate.manifests import load_directory  # noqa: PLC0415 - only the e2e needs the stage
        from ..validate.server import Stage  # noqa: PLC0415

        manifests = load_directory(self.manifests)
        with Stage(progress=lambda message: self.progress(f"{self.env.name}: {message}")) as stage:
            found = stage.check(manifests, self.env.kubernetes_version, self.manifests, self.namespace,
                                self.env.name, env=self.env.name)
        errors = [f"{d.path}:{d.line}: {d.message}" for d in found if d.level == "error"]
        self.check(f"validate's API-server stage accepts all {len(manifests)} manifests (dry-run applies as the "
                   "Applications sync them)", not errors, "; ".join(errors[:3]))
        if errors:
            raise ScenarioFailed("dry-run")

    def apply_everything(self) -> None:
        targets = [self.manifests / "workloads"] + ([self.manifests / "argocd"] if self.argocd_docs else [])
        self.dry_run_stage()
        warnings = self.kubectl_apply(*targets)
        psa = [line for line in warnings.splitlines() if "PodSecurity" in line]
        self.check("server-side apply of workloads/ and argocd/ (no Pod Security warnings)", not psa, "; ".join(psa))


def run_each(run_one, env_names: list[str] | None, *, keep: bool, progress: Progress, parallel: bool,
             paths: dict[str, Path] | None) -> list[EnvReport]:
    """``run_one(env, paths, keep=, progress=)`` for each selected environment, side by side if ``parallel``."""
    envs = environments.select(",".join(env_names) if env_names else None)
    paths = paths or binaries_mod.ensure(progress=progress).paths
    if parallel and len(envs) > 1:
        with ThreadPoolExecutor(max_workers=len(envs)) as pool:
            return list(pool.map(lambda e: run_one(e, paths, keep=keep, progress=progress), envs))
    return [run_one(e, paths, keep=keep, progress=progress) for e in envs]

