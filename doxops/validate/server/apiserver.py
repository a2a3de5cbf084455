"""One etcd and kube-apiserver on 127.0.0.1: HTTP with warnings, discovery, CRDs, namespaces, applies as Argo CD does."""

from __future__ import annotations

import copy
import http.client
import json
import threading
import time
from pathlib import Path
from typing import Any

from .cache import ServerSpec
from .common import FIELD_MANAGER, HINT, LAST_APPLIED, TRACKING, Progress, StageError
from .findings import warning_text
from .modes import Mode

#: kube-apiserver flags replaced for the dry-run server: its one client is an administrator
#: (system:masters), so RBAC and API priority and fairness change no answer; without them the server is
#: ready about a second sooner (no bootstrap roles and flow schemas to write first).
FAST_START = {"--authorization-mode": "--authorization-mode=AlwaysAllow",
              "--enable-priority-and-fairness": "--enable-priority-and-fairness=false"}


def dry_run_cluster(binaries: dict[str, Path], progress: Progress):
    """The e2e harness's Cluster with etcd and kube-apiserver only, and the flags of :data:`FAST_START`."""
    from ...cluster.cluster import Cluster  # noqa: PLC0415

    class DryRunCluster(Cluster):
        def plan(self):
            components = super().plan()
            for component in components:
                if component.name == "kube-apiserver":
                    kept = [a for a in component.argv if a.split("=", 1)[0] not in FAST_START]
                    component.argv = kept + list(FAST_START.values())
            return components

    return DryRunCluster(components=("etcd", "kube-apiserver"), binaries=binaries, progress=progress,
                         name="validate")


def is_builtin(api_version: str) -> bool:
    """A kind of Kubernetes itself (strategic merge patch applies), not a custom resource."""
    group = api_version.split("/")[0] if "/" in api_version else ""
    return "." not in group or group.endswith(".k8s.io")


class Server:
    """etcd and kube-apiserver of one version on 127.0.0.1, with the namespaces and CRDs created so far."""

    def __init__(self, spec: ServerSpec, binaries: dict[str, Path], progress: Progress, hint: str = HINT,
                 who: str = "validate") -> None:
        self.spec = spec
        self.who = who
        self.progress = progress
        self.hint = hint
        self.cluster = dry_run_cluster(binaries, progress)
        self._local = threading.local()
        self._connections: list[http.client.HTTPSConnection] = []
        self._lock = threading.Lock()
        self._resources: dict[str, dict[str, tuple[str, bool]] | None] = {}
        self._crds: set[str] = set()
        self._crd_lock = threading.Lock()
        self._namespaces: dict[str, str] = {}  # name -> labels (JSON) as created
        self._ns_cond = threading.Condition()
        self._ns_holders: dict[str, int] = {}

    def start(self) -> None:
        self.cluster.start()
        self.port = self.cluster.ports.apiserver
        import ssl  # noqa: PLC0415

        pki = self.cluster.pki
        self.context = ssl.create_default_context(cafile=str(pki.ca))
        self.context.load_cert_chain(str(pki.cert("admin")), str(pki.key("admin")))

    def stop(self) -> None:
        """Close every connection (the API server drains open ones before it exits), then stop both
        processes with a short grace: nothing of this throwaway store needs keeping."""
        from ...cluster.process import stop_all  # noqa: PLC0415

        with self._lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()
        stop_all(self.cluster.processes, grace=0.2)
        self.cluster.stop()

    # ---------------------------------------------------------------- HTTP (headers matter: warnings)

    def request(self, method: str, path: str, body: Any = None, content_type: str = "application/json",
                query: dict | None = None) -> tuple[int, Any, list[str]]:
        """``(status, decoded body, warnings)``; one keep-alive connection per thread, 127.0.0.1 only."""
        import urllib.parse  # noqa: PLC0415

        if query:
            path += "?" + urllib.parse.urlencode(query)
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = content_type
        for attempt in (1, 2):
            conn = getattr(self._local, "conn", None)
            if conn is None:
                conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.context, timeout=60)
                self._local.conn = conn
                with self._lock:
                    self._connections.append(conn)
            try:
                conn.request(method, path, body=data, headers=headers)
                response = conn.getresponse()
                raw = response.read()
                warnings = [warning_text(w) for w in response.headers.get_all("Warning") or []]
                break
            except (http.client.HTTPException, OSError):
                conn.close()
                self._local.conn = None
                if attempt == 2:
                    raise
        try:
            decoded = json.loads(raw) if raw else None
        except ValueError:
            decoded = raw.decode(errors="replace")
        return response.status, decoded, warnings

    def checked(self, what: str, status: int, body: Any) -> Any:
        """``body``, or a StageError naming ``what`` failed and the server's message."""
        if status >= 300:
            message = body.get("message") if isinstance(body, dict) else body
            raise StageError(f"API-server stage: {what} failed ({status}): {message}; {self.hint}")
        return body

    # ---------------------------------------------------------------- discovery, CRDs, namespaces

    def resource(self, api_version: str, kind: str) -> tuple[str, bool] | None:
        """``(plural, namespaced)`` of a kind, from discovery (cached per group version)."""
        with self._lock:
            known = self._resources.get(api_version, False)
        if known is False or (known is not None and kind not in known):
            path = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
            status, body, _ = self.request("GET", path)
            known = None
            if status == 200 and isinstance(body, dict):
                known = {r["kind"]: (r["name"], bool(r.get("namespaced")))
                         for r in body.get("resources") or [] if "/" not in r.get("name", "")}
            with self._lock:
                self._resources[api_version] = known
        return (known or {}).get(kind)

    def collection(self, api_version: str, kind: str, namespace: str) -> tuple[str, bool] | None:
        """``(collection path, namespaced)`` of a kind in ``namespace``, or None when the server serves no such kind."""
        found = self.resource(api_version, kind)
        if found is None:
            return None
        plural, namespaced = found
        prefix = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
        return (f"{prefix}/namespaces/{namespace}/{plural}" if namespaced else f"{prefix}/{plural}"), namespaced

    def ensure_crds(self, crds: list[dict]) -> None:
        """Create the CRDs not created yet and wait until they are served (one caller at a time, so no
        environment sends a custom resource before its CRD is served)."""
        with self._crd_lock:
            new = [c for c in crds if c["metadata"]["name"] not in self._crds]
            if new:
                self._create_crds(new)
                self._crds.update(c["metadata"]["name"] for c in new)

    def _create_crds(self, new: list[dict]) -> None:
        started = time.monotonic()
        for crd in new:
            body = {k: v for k, v in crd.items() if k in ("apiVersion", "kind", "spec")}
            body["metadata"] = {"name": crd["metadata"]["name"]}
            status, answer, _ = self.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", body)
            if status != 409:
                self.checked(f"creating CRD {crd['metadata']['name']}", status, answer)
        deadline = time.monotonic() + 60
        for crd in new:
            spec = crd["spec"]
            versions = [v["name"] for v in spec.get("versions") or [] if v.get("served", True)]
            while not all(self._served(f"{spec['group']}/{v}", spec["names"]["kind"]) for v in versions):
                if time.monotonic() > deadline:
                    raise StageError(f"API-server stage: CRD {crd['metadata']['name']} was not served after 60 s; "
                                     f"{self.hint}")
                time.sleep(0.1)
        self.progress(f"{self.who}: api-server: CRDs {', '.join(c['metadata']['name'] for c in new)} created in "
                      f"{time.monotonic() - started:.1f} s")

    def _served(self, api_version: str, kind: str) -> bool:
        with self._lock:
            self._resources.pop(api_version, None)
        return self.resource(api_version, kind) is not None

    def acquire_namespace(self, name: str, labels: dict) -> None:
        """Hold namespace ``name`` with exactly ``labels`` (created, or relabelled once no one holds it
        with other labels): environments share a namespace name but may label it differently."""
        wanted = json.dumps(labels, sort_keys=True)
        with self._ns_cond:
            while self._namespaces.get(name, wanted) != wanted and self._ns_holders.get(name, 0) > 0:
                self._ns_cond.wait()
            current = self._namespaces.get(name)
            if current is None:
                # A name or labels the server refuses are not this stage's failure: the Namespace's own
                # dry-run reports the labels, and every object sent into a namespace that could not be
                # made gets the server's "not found", located at that object.
                for attempt in (labels, {}):
                    status, body, _ = self.request("POST", "/api/v1/namespaces", {
                        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": attempt}})
                    if status < 300:
                        break
                    if status == 409:  # one the server makes itself (default, kube-system): label it as written
                        current = ""
                        break
            if current is not None and current != wanted:
                status, body, _ = self.request("GET", f"/api/v1/namespaces/{name}")
                body = self.checked(f"reading namespace {name}", status, body)
                body["metadata"]["labels"] = labels
                self.request("PUT", f"/api/v1/namespaces/{name}", body)
                time.sleep(0.5)  # admission (Pod Security) reads namespaces from an informer: let it catch up
            self._namespaces[name] = wanted
            self._ns_holders[name] = self._ns_holders.get(name, 0) + 1

    def release_namespace(self, name: str) -> None:
        with self._ns_cond:
            self._ns_holders[name] -= 1
            self._ns_cond.notify_all()

    def exists(self, path: str) -> bool:
        return self.request("GET", path)[0] == 200

    # ---------------------------------------------------------------- applies

    def applied_form(self, data: dict, mode: Mode, namespace: str, namespaced: bool) -> dict:
        """``data`` as Argo CD sends it: in ``namespace``, with its tracking annotation and, for client-side
        apply, the last-applied annotation holding the object itself."""
        api_version, kind = str(data.get("apiVersion")), str(data.get("kind"))
        obj = copy.deepcopy(data)
        meta = obj.setdefault("metadata", {})
        if namespaced:
            meta["namespace"] = namespace
        annotations = dict(meta.get("annotations") or {})
        if mode.application:  # Argo CD's default tracking method: an annotation
            group = api_version.split("/")[0] if "/" in api_version else ""
            annotations[TRACKING] = f"{mode.application}:{group}/{kind}:{namespace if namespaced else ''}/{meta.get('name')}"
        if mode.server_side:
            meta["annotations"] = annotations
            return obj
        annotations.pop(LAST_APPLIED, None)
        meta["annotations"] = annotations
        last_applied = json.dumps(obj, separators=(",", ":"), sort_keys=True)
        meta["annotations"] = {**annotations, LAST_APPLIED: last_applied + "\n"}
        return obj

    def apply(self, data: dict, mode: Mode, namespace: str, dry_run: bool = True) -> tuple[int, Any, list[str]]:
        """Send ``data`` as Argo CD would apply it (``dryRun=All`` unless ``dry_run`` is False, which creates
        it for real): ``(status, answer, warnings)``."""
        api_version, kind = str(data.get("apiVersion")), str(data.get("kind"))
        found = self.collection(api_version, kind, namespace)
        if found is None:
            return 404, {"message": f"the API server serves no kind {kind} in {api_version}; for a custom "
                                    "resource, add its CRD to tools.toml [crds]"}, []
        collection, namespaced = found
        obj = self.applied_form(data, mode, namespace, namespaced)
        name = obj["metadata"].get("name")
        query = {"fieldManager": FIELD_MANAGER, "fieldValidation": "Strict" if mode.validate else "Ignore"}
        if dry_run:
            query["dryRun"] = "All"
        if mode.server_side:
            return self.request("PATCH", f"{collection}/{name}", obj, "application/apply-patch+yaml",
                                {**query, "force": "true"})
        status, answer, warnings = self.request("POST", collection, obj, query=query)
        if status == 409 and isinstance(answer, dict) and answer.get("reason") == "AlreadyExists":
            patch_type = ("application/strategic-merge-patch+json" if is_builtin(api_version)
                          else "application/merge-patch+json")
            status, answer, warnings = self.request("PATCH", f"{collection}/{name}", obj, patch_type, query)
        return status, answer, warnings

    def dry_run(self, data: dict, mode: Mode, namespace: str) -> tuple[int, Any, list[str]]:
        """Send ``data`` as Argo CD would apply it, with ``dryRun=All``: ``(status, answer, warnings)``."""
        return self.apply(data, mode, namespace, dry_run=True)
