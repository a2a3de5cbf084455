"""What every Argo CD scenario needs: the Applications' state, waits on it, and the set-up as a user does it.

:class:`ArgoHarness` extends the shared :class:`~doxops.cluster.harness.Harness` with the local
remote and Argo CD's processes: the Applications' sync and health (:meth:`ArgoHarness.synced_at`,
:meth:`ArgoHarness.summary`), and the set-up steps: Argo CD's configuration and start, the
Secrets (``./dox minikube-secrets`` on minikube, the simulated store elsewhere) and the
bootstrap with ``./dox argocd-bootstrap``, both run in the copy as a user would.
"""

from __future__ import annotations

import json
import re
import secrets

from ... import operate
from ...environments import Environment
from ..cluster import Cluster
from ..harness import ARGOCD_NAMESPACE, Harness, Progress, label_selector, load_docs
from ..report import EnvReport, ScenarioFailed
from ..simulators import Simulators
from .install import ArgoCD, ArgoCDError
from .remote import GitRemote

APPLICATIONS = f"/apis/argoproj.io/v1alpha1/namespaces/{ARGOCD_NAMESPACE}/applications"


def resource_path(doc: dict, namespace: str) -> str:
    """The API path of a rendered object (enough for the kinds rendered here)."""
    api_version, kind = doc["apiVersion"], doc["kind"]
    plural = kind.lower()
    plural = plural[:-1] + "ies" if plural.endswith("y") else plural + ("es" if plural.endswith("s") else "s")
    base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    ns = doc["metadata"].get("namespace", namespace)
    return f"{base}/namespaces/{ns}/{plural}/{doc['metadata']['name']}" if kind != "Namespace" else \
        f"{base}/{plural}/{doc['metadata']['name']}"


def short(revision: str | None) -> str:
    return (revision or "none")[:7]


class ArgoHarness(Harness):
    """One environment's rendered manifests on a cluster with Argo CD and a local remote."""

    def __init__(self, env: Environment, cluster: Cluster, remote: GitRemote, argocd: ArgoCD, report: EnvReport,
                 progress: Progress) -> None:
        super().__init__(env, cluster, remote.rendered, report, progress)
        self.remote, self.argocd = remote, argocd
        self.app_names = [d["metadata"]["name"] for d in self.argocd_docs if d.get("kind") == "Application"]
        self.child = next(d["metadata"]["name"] for d in self.argocd_docs if d.get("kind") == "Application"
                          and d["spec"]["destination"].get("namespace") == env.namespace)
        self.head = ""

    # --------------------------------------------------------------- helpers

    def reload(self) -> None:
        self.docs = [d for _, d in load_docs(self.manifests / "workloads")]

    def app(self, name: str) -> dict:
        return self.api.get(f"{APPLICATIONS}/{name}")

    @staticmethod
    def state(app: dict) -> tuple[str, str, str]:
        status = app.get("status") or {}
        return ((status.get("sync") or {}).get("status", "Unknown"), (status.get("health") or {}).get("status",
                "Unknown"), (status.get("sync") or {}).get("revision") or "")

    def summary(self) -> str:
        parts = []
        for name in self.app_names:
            app = self.api.get_or_none(f"{APPLICATIONS}/{name}")
            if app is None:
                parts.append(f"{name}: absent")
                continue
            sync, health, revision = self.state(app)
            status = app.get("status") or {}
            op = status.get("operationState") or {}
            conditions = "; ".join(f"{c.get('type')}: {c.get('message', '')[:200]}"
                                   for c in status.get("conditions") or [])
            off = [f"{r.get('kind')}/{r.get('name')}={r.get('status')}" for r in status.get("resources") or []
                   if r.get("status") != "Synced"]
            parts.append(f"{name}: {sync}/{health} at {short(revision)}, operation {op.get('phase')} "
                         f"{(op.get('message') or '')[:200]!r}" + (f", conditions: {conditions}" if conditions else "")
                         + (f", not synced: {', '.join(off[:8])}" if off else ""))
        return " | ".join(parts)

    def synced_at(self, revision: str, *, operation: bool = False, names: list[str] | None = None) -> bool:
        for name in names or self.app_names:
            app = self.app(name)
            sync, health, current = self.state(app)
            if (sync, health, current) != ("Synced", "Healthy", revision):
                return False
            if operation and name == self.child:
                op = (app.get("status") or {}).get("operationState") or {}
                if op.get("phase") != "Succeeded" or (op.get("syncResult") or {}).get("revision") != revision:
                    return False
        return True

    def wait_apps(self, what: str, check, timeout: float, interval: float = 0.5):
        try:
            return self.api.wait_for(what, check, timeout, interval)
        except TimeoutError as exc:
            self.check(what, False, f"{exc}; {self.summary()}")
            raise ScenarioFailed(what) from None

    def replica_sets(self, deployment: dict) -> dict[str, dict]:
        selector = label_selector(deployment["spec"]["selector"]["matchLabels"])
        return {rs["metadata"]["name"]: rs for rs in self.api.items(f"{self.apps}/replicasets", labelSelector=selector)}

    def config_consumers(self, configmap: str) -> list[dict]:
        """Deployments whose pods read ``configmap`` (envFrom, env or a volume)."""
        out = []
        for deployment in self.docs_of("Deployment"):
            spec = deployment["spec"]["template"]["spec"]
            names = {e["configMapRef"]["name"] for c in spec["containers"] for e in c.get("envFrom") or []
                     if "configMapRef" in e}
            names |= {(e.get("valueFrom") or {}).get("configMapKeyRef", {}).get("name") for c in spec["containers"]
                      for e in c.get("env") or []}
            names |= {v["configMap"]["name"] for v in spec.get("volumes") or [] if "configMap" in v}
            if configmap in names:
                out.append(deployment)
        return out

    def rendered_checksum(self, deployment_name: str) -> str | None:
        return (self.doc("Deployment", deployment_name)["spec"]["template"]["metadata"].get("annotations") or {}) \
            .get("checksum/config")

    # --------------------------------------------------------------- set-up

    def apply_config(self, objects: list[dict]) -> None:
        """Argo CD's configuration objects, server-side (argocd-secret's generated key travels on stdin)."""
        stream = json.dumps({"apiVersion": "v1", "kind": "List", "items": objects})
        proc = self.cluster.kubectl("apply", "--server-side", "--field-manager=dox-e2e", "-f", "-", input=stream,
                                    check=False)
        if proc.returncode != 0:
            raise ArgoCDError(f"applying Argo CD's configuration failed: {proc.stderr.strip()}")

    def start_argocd(self) -> None:
        self.argocd.start(self.apply_config)  # raises, with log tails, when a process is not ready
        kinds = sorted(f"{o['kind']}/{o['metadata']['name']}" for o in self.argocd.config_objects())
        self.observe(f"Argo CD started: redis, repo-server, application controller on 127.0.0.1; config "
                     f"{', '.join(kinds)}; version {self.version()}")

    def version(self) -> str:
        match = re.search(r'version="?(v[^"\s]+)', self.argocd.log_text())
        return match.group(1) if match else "?"

    def provide_secrets_as_user(self, simulators: Simulators) -> None:
        """prod: the simulated External Secrets store; minikube: the real ``./dox minikube-secrets`` task."""
        if self.docs_of("ExternalSecret"):
            self.provide_secrets(simulators)
            return
        generated = {"DOX_GIT_USERNAME": "e2e-" + secrets.token_hex(4), "DOX_GIT_TOKEN": secrets.token_urlsafe(24),
                     "ANTHROPIC_API_KEY": secrets.token_urlsafe(32), "DOX_REDIS_PASSWORD": secrets.token_urlsafe(24)}
        self.remote.dox("minikube-secrets", "--env", self.env.name, env={**self.kube_env(), **generated})
        live = {s["metadata"]["name"]: sorted(s.get("data") or {}) for s in self.api.items(f"{self.ns}/secrets")}
        wanted = {m["metadata"]["name"]: sorted(m["data"]) for m in operate.secret_manifests(self.env, generated)}
        self.check("Secrets created by `./dox minikube-secrets` (generated values, never printed)",
                   all(live.get(name) == keys for name, keys in wanted.items()),
                   f"wanted {wanted}; in the cluster {live}")

    def kube_env(self) -> dict[str, str]:
        home = self.remote.directory / "kube-home"
        home.mkdir(parents=True, exist_ok=True)
        return {"KUBECONFIG": str(self.cluster.kubeconfig_path), "DOX_KUBECTL": self.cluster.binary("kubectl"),
                "HOME": str(home)}

    def bootstrap(self) -> None:
        """``./dox argocd-bootstrap --env ENV``, run in the copy against this cluster: the user's one step."""
        output = self.remote.dox("argocd-bootstrap", "--env", self.env.name, env=self.kube_env())
        applied = re.findall(r"applied (\S+)", output)
        self.check(f"`./dox argocd-bootstrap --env {self.env.name}` applied the bootstrap project and root "
                   "Application", len(applied) == 2, ", ".join(applied))

