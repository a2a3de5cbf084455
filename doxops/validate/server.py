"""The API-server stage: every rendered object sent to the pinned kube-apiserver as a dry-run apply.

What Kubernetes itself enforces (validation, defaulting, admission such as Pod Security, object and
annotation size limits, field validation) is asked of the real thing instead of being imitated
(ARCHITECTURE.md, decision 12). Per run and Kubernetes version, one etcd and one kube-apiserver are
started on 127.0.0.1 (free ports; :class:`doxops.cluster.cluster.Cluster` with those two components
only), the namespaces the objects use are created for real with the labels the rendered Namespace
gives them (Pod Security admission reads them), and so are the CRDs of only the custom kinds the
output uses, taken from the pinned Go modules of ``[crds]`` in tools.toml. Then every object is sent
exactly as its environment's Argo CD Application syncs it:

* client-side apply (Argo CD's default, and ``kubectl apply``'s): the object with Argo CD's tracking
  annotation and the ``kubectl.kubernetes.io/last-applied-configuration`` annotation, created with
  ``dryRun=All`` (an object that already exists, such as its own Namespace, is patched instead);
* server-side apply when the Application's ``syncOptions`` (or the object's
  ``argocd.argoproj.io/sync-options`` annotation) say ``ServerSideApply=true``: an apply patch with
  ``force`` and the ``argocd-controller`` field manager;
* field validation ``Strict``, unless the sync options say ``Validate=false``.

A rejection is an ``api-server`` error at the field the server names, with the server's own message; each
``Warning`` header is an ``api-server`` warning. The object the server would store is compared with the
manifest: every field the manifest sets must come back with the same value (``stored-as-written``,
a warning naming the field, the written and the stored value; defaults the server adds are ignored).
No secret value reaches a message: values the diff masks are masked here too.

Results are cached per object under ``<cache>/apiserver/`` (``$DOX_CACHE_DIR`` aware), keyed by the
object's content and everything else that decides the answer: the server and etcd versions, the pinned
CRD sources, the labels of the object's namespace, the apply mode and this module's code. An unchanged
object is never sent again, and when every object is answered from the cache no server is started.
"""

from __future__ import annotations

import base64
import copy
import functools
import hashlib
import http.client
import json
import os
import re
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from ..errors import DoxError, ToolError
from ..paths import cache_dir, relative
from .diagnostics import Diagnostic
from .manifests import Manifest, locate

RULE = "api-server"
STORED_RULE = "stored-as-written"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
TRACKING = "argocd.argoproj.io/tracking-id"
SYNC_OPTIONS = "argocd.argoproj.io/sync-options"
FIELD_MANAGER = "argocd-controller"
EXEMPT_PREFIX = "exempt.dox-asdlc.io/"
HINT = "run with --no-server to skip the API-server stage (validation is then weaker: schema and policy only)"
#: Parallel dry-run requests per server (the API server does the work; two cores are shared).
WORKERS = 4

Progress = Callable[[str], None]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class StageError(ToolError):
    """The stage cannot answer: no server for a version, a server that does not start (exit 3)."""


# --------------------------------------------------------------------------- how Argo CD applies


@dataclass(frozen=True)
class Mode:
    """How one object is applied: the Application that syncs it and its relevant sync options."""

    server_side: bool = False
    validate: bool = True
    application: str = ""
    destination: str = ""

    @property
    def key(self) -> str:
        return f"{'ssa' if self.server_side else 'csa'}:{'strict' if self.validate else 'ignore'}:{self.application}"

    @property
    def name(self) -> str:
        return "server-side apply" if self.server_side else "client-side apply"


def _options(values: Iterable[str]) -> dict[str, str]:
    out = {}
    for value in values:
        for part in str(value).split(","):
            key, _, setting = part.strip().partition("=")
            if key:
                out[key] = setting.strip().lower()
    return out


def _annotations(manifest: Manifest) -> dict:
    found = manifest.meta.get("annotations")
    return found if isinstance(found, dict) else {}


def _labels(manifest: Manifest) -> dict:
    found = manifest.meta.get("labels")
    return found if isinstance(found, dict) else {}


def apply_modes(manifests: list[Manifest], directory: Path | None) -> Callable[[Manifest], Mode]:
    """``mode(manifest)``: the Application among ``manifests`` whose ``source.path`` holds the
    manifest's file decides (its ``syncOptions``, then the object's own sync-options annotation).
    A file no Application syncs is applied as ``kubectl apply`` does: client-side."""
    apps: list[tuple[Path, Mode]] = []
    if directory is not None:
        base = Path(directory).resolve()
        for m in manifests:
            if m.kind != "Application" or m.group != "argoproj.io":
                continue
            spec = m.data.get("spec") if isinstance(m.data.get("spec"), dict) else {}
            source = spec.get("source") if isinstance(spec.get("source"), dict) else {}
            path = str(source.get("path") or "")
            policy = spec.get("syncPolicy") if isinstance(spec.get("syncPolicy"), dict) else {}
            listed = policy.get("syncOptions")
            options = _options(listed if isinstance(listed, list) else [])  # ill-typed: the schema stage says so
            destination = spec.get("destination") if isinstance(spec.get("destination"), dict) else {}
            mode = Mode(options.get("ServerSideApply") == "true", options.get("Validate") != "false",
                        m.name, str(destination.get("namespace") or ""))
            # source.path is relative to the repository root: look for it above the validated directory
            for root in (base, *base.parents):
                candidate = (root / path).resolve() if path else None
                if candidate is not None and candidate.is_dir() and \
                        (candidate == base or base in candidate.parents or candidate in base.parents):
                    apps.append((candidate, mode))
                    break

    def mode_of(manifest: Manifest) -> Mode:
        found = Mode()
        best = -1
        file = manifest.path.resolve()
        for root, mode in apps:
            if (root == file.parent or root in file.parents) and len(root.parts) > best:
                found, best = mode, len(root.parts)
        own = _options([_annotations(manifest).get(SYNC_OPTIONS, "")])
        if "ServerSideApply" in own:
            found = Mode(own["ServerSideApply"] == "true", found.validate, found.application, found.destination)
        if "Validate" in own:
            found = Mode(found.server_side, own["Validate"] != "false", found.application, found.destination)
        return found

    return mode_of


# --------------------------------------------------------------------------- secrets never printed


@functools.lru_cache(maxsize=1)
def _mask_settings():
    from ..diff import load_settings  # noqa: PLC0415 - the diff's masking is the one rule

    return load_settings()


def secret_strings(data: dict) -> list[str]:
    """Every value the diff would mask in ``data`` (and the decoded form of base64 Secret data)."""
    from ..diff import MASK  # noqa: PLC0415 - the diff's masking is the one rule
    from ..diff.mask import Masker  # noqa: PLC0415

    masked = Masker(_mask_settings()).mask(data)
    found: set[str] = set()

    def walk(original: Any, hidden: Any) -> None:
        if hidden == MASK and not isinstance(original, (dict, list)):
            if original is not None and len(str(original)) >= 3:
                found.add(str(original))
                try:
                    decoded = base64.b64decode(str(original), validate=True).decode()
                    if len(decoded) >= 3:
                        found.add(decoded)
                except (ValueError, UnicodeDecodeError):
                    pass
            return
        if isinstance(original, dict) and isinstance(hidden, dict):
            for key, value in original.items():
                walk(value, hidden.get(key, MASK))
        elif isinstance(original, list) and isinstance(hidden, list):
            for a, b in zip(original, hidden):
                walk(a, b)
        elif isinstance(original, dict) or isinstance(original, list):
            walk_all(original)
        elif isinstance(original, str) and isinstance(hidden, str) and original != hidden:
            found.add(original)  # free text with a credential inside: hide the whole text

    def walk_all(node: Any) -> None:
        if isinstance(node, dict):
            for v in node.values():
                walk_all(v)
        elif isinstance(node, list):
            for v in node:
                walk_all(v)
        elif node is not None and len(str(node)) >= 3:
            found.add(str(node))

    walk(data, masked)
    return sorted(found, key=len, reverse=True)


def hide(text: str, secrets: list[str]) -> str:
    from ..diff import MASK  # noqa: PLC0415

    for value in secrets:
        for form in {value, json.dumps(value)[1:-1]}:
            if form and form in text:
                text = text.replace(form, MASK)
    return text


# --------------------------------------------------------------------------- field paths and values


_SEGMENT = re.compile(r"([^.\[\]]+)|\[([^\]]*)\]")


def field_pointer(path: str) -> str:
    """``spec.template.spec.containers[0].env[1]`` -> ``/spec/template/spec/containers/0/env/1``."""
    parts = []
    for name, index in _SEGMENT.findall(path or ""):
        part = name or index
        if part:
            parts.append(part.replace("~", "~0").replace("/", "~1"))
    return "/" + "/".join(parts) if parts else ""


def pointer_field(pointer: str) -> str:
    out = ""
    for part in [p for p in pointer.split("/") if p]:
        part = part.replace("~1", "/").replace("~0", "~")
        out += f"[{part}]" if part.isdigit() or not re.fullmatch(r"[A-Za-z0-9_-]+", part) else f".{part}"
    return out.lstrip(".")


_QUANTITY = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+|[numkMGTPE]|[KMGTPE]i)?$")


def _is_quantity(value: Any) -> bool:
    return isinstance(value, (str, int, float)) and not isinstance(value, bool) and bool(_QUANTITY.match(str(value)))


def _same(written: Any, stored: Any) -> bool:
    if isinstance(written, bool) or isinstance(stored, bool):
        return type(written) is type(stored) and written == stored
    if isinstance(written, (int, float)) and isinstance(stored, str):
        return str(written) == stored  # a number written where the type is a string (a quantity)
    if isinstance(written, (int, float)) and isinstance(stored, (int, float)):
        return written == stored
    return type(written) is type(stored) and written == stored


def _empty(value: Any) -> bool:
    return value in ({}, [], "", None)


def stored_differences(written: Any, stored: Any, pointer: str = "") -> list[tuple[str, Any, Any]]:
    """``(pointer, written, stored)`` for every value the manifest sets that the server stores otherwise.

    Fields the manifest does not set (defaults) are ignored; so are ``null`` (unset) and empty values
    that the server omits."""
    if written is None:
        return []
    if isinstance(written, dict):
        if not isinstance(stored, dict):
            return [] if _empty(written) and stored is None else [(pointer, written, stored)]
        out = []
        for key, value in written.items():
            child = f"{pointer}/{str(key).replace('~', '~0').replace('/', '~1')}"
            if key not in stored:
                if not _empty(value):
                    out.append((child, value, None))
                continue
            out += stored_differences(value, stored[key], child)
        return out
    if isinstance(written, list):
        if not isinstance(stored, list):
            return [] if _empty(written) and stored is None else [(pointer, written, stored)]
        if len(written) != len(stored):
            return [(pointer, written, stored)]
        out = []
        for i, (a, b) in enumerate(zip(written, stored)):
            out += stored_differences(a, b, f"{pointer}/{i}")
        return out
    return [] if _same(written, stored) else [(pointer, written, stored)]


def _shown(value: Any) -> str:
    if value is None:
        return "nothing (the server drops it)"
    text = json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else repr(value) \
        if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= 200 else text[:200] + "..."


# --------------------------------------------------------------------------- the result cache


def _code_digest() -> str:
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]


@dataclass(frozen=True)
class ServerSpec:
    """What answers: the pinned server and etcd versions and the pinned CRD sources."""

    kubernetes: str
    etcd: str
    crds: str

    @property
    def minor(self) -> str:
        from ..schemas import minor_of  # noqa: PLC0415

        return minor_of(self.kubernetes)


def server_spec() -> ServerSpec:
    from ..cluster import binaries  # noqa: PLC0415
    from ..toolchain import load_config  # noqa: PLC0415

    specs = binaries.load_specs()
    crds = json.dumps(load_config().get("crds", {}), sort_keys=True)
    return ServerSpec(specs["kubernetes"].version, specs["etcd"].version,
                      hashlib.sha256(crds.encode()).hexdigest()[:16])


class ResultCache:
    """One JSON file per answered object, ``<root>/<key[:2]>/<key>.json``, written atomically."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root else cache_dir() / "apiserver"

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> list[dict] | None:
        try:
            data = json.loads(self._path(key).read_text())
        except (OSError, ValueError):
            return None
        return data.get("findings") if isinstance(data, dict) and isinstance(data.get("findings"), list) else None

    def put(self, key: str, findings: list[dict]) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
        with os.fdopen(fd, "w") as handle:
            json.dump({"findings": findings}, handle)
        os.replace(tmp, path)


# --------------------------------------------------------------------------- one server


#: kube-apiserver flags replaced for the dry-run server: its one client is an administrator
#: (system:masters), so RBAC and API priority and fairness change no answer; without them the server is
#: ready about a second sooner (no bootstrap roles and flow schemas to write first).
_FAST_START = {"--authorization-mode": "--authorization-mode=AlwaysAllow",
               "--enable-priority-and-fairness": "--enable-priority-and-fairness=false"}


def _cluster(binaries: dict[str, Path], progress: Progress):
    """The e2e harness's Cluster with etcd and kube-apiserver only, and the flags of :data:`_FAST_START`."""
    from ..cluster.cluster import Cluster  # noqa: PLC0415

    class DryRunCluster(Cluster):
        def plan(self):
            components = super().plan()
            for component in components:
                if component.name == "kube-apiserver":
                    kept = [a for a in component.argv if a.split("=", 1)[0] not in _FAST_START]
                    component.argv = kept + list(_FAST_START.values())
            return components

    return DryRunCluster(components=("etcd", "kube-apiserver"), binaries=binaries, progress=progress,
                         name="validate")


class Server:
    """etcd and kube-apiserver of one version on 127.0.0.1, with the namespaces and CRDs created so far."""

    def __init__(self, spec: ServerSpec, binaries: dict[str, Path], progress: Progress) -> None:
        self.spec = spec
        self.progress = progress
        self.cluster = _cluster(binaries, progress)
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
        from ..cluster.process import stop_all  # noqa: PLC0415

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
                warnings = [_warning_text(w) for w in response.headers.get_all("Warning") or []]
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

    def _check(self, what: str, status: int, body: Any) -> Any:
        if status >= 300:
            message = body.get("message") if isinstance(body, dict) else body
            raise StageError(f"API-server stage: {what} failed ({status}): {message}; {HINT}")
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
                self._check(f"creating CRD {crd['metadata']['name']}", status, answer)
        deadline = time.monotonic() + 60
        for crd in new:
            spec = crd["spec"]
            versions = [v["name"] for v in spec.get("versions") or [] if v.get("served", True)]
            while True:
                ok = all(self._served(f"{spec['group']}/{v}", spec["names"]["kind"]) for v in versions)
                if ok:
                    break
                if time.monotonic() > deadline:
                    raise StageError(f"API-server stage: CRD {crd['metadata']['name']} was not served after 60 s; {HINT}")
                time.sleep(0.1)
        self.progress(f"validate: api-server: CRDs {', '.join(c['metadata']['name'] for c in new)} created in "
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
                body = self._check(f"reading namespace {name}", status, body)
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

    # ---------------------------------------------------------------- the dry-run apply

    def dry_run(self, data: dict, mode: Mode, namespace: str) -> tuple[int, Any, list[str]]:
        """Send ``data`` as Argo CD would apply it, with ``dryRun=All``: ``(status, answer, warnings)``."""
        api_version, kind = str(data.get("apiVersion")), str(data.get("kind"))
        found = self.resource(api_version, kind)
        if found is None:
            return 404, {"message": f"the API server serves no kind {kind} in {api_version}; for a custom "
                                    "resource, add its CRD to tools.toml [crds]"}, []
        plural, namespaced = found
        prefix = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
        collection = f"{prefix}/namespaces/{namespace}/{plural}" if namespaced else f"{prefix}/{plural}"
        obj = copy.deepcopy(data)
        meta = obj.setdefault("metadata", {})
        if namespaced:
            meta["namespace"] = namespace
        annotations = dict(meta.get("annotations") or {})
        if mode.application:  # Argo CD's default tracking method: an annotation
            group = api_version.split("/")[0] if "/" in api_version else ""
            annotations[TRACKING] = f"{mode.application}:{group}/{kind}:{namespace if namespaced else ''}/{meta.get('name')}"
        query = {"dryRun": "All", "fieldManager": FIELD_MANAGER,
                 "fieldValidation": "Strict" if mode.validate else "Ignore"}
        if mode.server_side:
            meta["annotations"] = annotations
            query["force"] = "true"
            return self.request("PATCH", f"{collection}/{meta.get('name')}", obj, "application/apply-patch+yaml",
                                query)
        annotations.pop(LAST_APPLIED, None)
        meta["annotations"] = annotations
        last_applied = json.dumps(obj, separators=(",", ":"), sort_keys=True)
        meta["annotations"] = {**annotations, LAST_APPLIED: last_applied + "\n"}
        status, answer, warnings = self.request("POST", collection, obj, query=query)
        if status == 409 and isinstance(answer, dict) and answer.get("reason") == "AlreadyExists":
            group = api_version.split("/")[0] if "/" in api_version else ""
            builtin = "." not in group or group.endswith(".k8s.io")
            patch_type = "application/strategic-merge-patch+json" if builtin else "application/merge-patch+json"
            status, answer, warnings = self.request("PATCH", f"{collection}/{meta.get('name')}", obj, patch_type,
                                                    query)
        return status, answer, warnings


def _warning_text(header: str) -> str:
    match = re.match(r'^\s*\d{3}\s+\S+\s+"(.*)"\s*(?:"[^"]*")?\s*$', header, re.DOTALL)
    text = match.group(1) if match else header
    return text.replace('\\"', '"').replace("\\\\", "\\")


# --------------------------------------------------------------------------- answers -> findings


def _rejection(answer: Any, status: int, secrets: list[str]) -> list[dict]:
    if not isinstance(answer, dict):
        return [{"pointer": "", "level": "error", "rule": RULE,
                 "message": hide(f"the API server answered {status}: {str(answer)[:500]}", secrets)}]
    message = str(answer.get("message") or answer.get("reason") or f"HTTP {status}")
    causes = (answer.get("details") or {}).get("causes") or []
    prefix = message.split(" is invalid: ", 1)[0] if " is invalid: " in message else ""
    out = []
    for cause in causes:
        field_path = str(cause.get("field") or "")
        text = f"{field_path}: {cause.get('message', '')}" if field_path else str(cause.get("message", ""))
        out.append({"pointer": field_pointer(field_path), "level": "error", "rule": RULE,
                    "message": hide(f"{prefix} is invalid: {text}" if prefix else text, secrets)})
    if not out:
        out.append({"pointer": "", "level": "error", "rule": RULE, "message": hide(message, secrets)})
    return out


def _warnings(warnings: list[str], secrets: list[str]) -> list[dict]:
    out = []
    for text in warnings:
        head = text.split(": ", 1)[0] if ": " in text else ""
        pointer = field_pointer(head) if re.fullmatch(r"[A-Za-z][\w.\-/\[\]]*", head or "-") else ""
        out.append({"pointer": pointer, "level": "warning", "rule": RULE,
                    "message": hide(f"the API server warns: {text}", secrets)})
    return out


def _stored(manifest: Manifest, stored: Any, mode: Mode, custom: bool, secrets: list[str]) -> list[dict]:
    """``stored-as-written`` findings: every set field back with the value written."""
    from ..diff import MASK  # noqa: PLC0415

    if not isinstance(stored, dict):
        return []
    out = []
    for pointer, written, value in stored_differences(manifest.data, stored):
        quantity = _is_quantity(written) and _is_quantity(value)
        masked = manifest.kind in _mask_settings().masked_kinds or \
            any(s in json.dumps(written) or s in json.dumps(value) for s in secrets)
        shown_written, shown_stored = (MASK, MASK) if masked else (_shown(written), _shown(value))
        what = "a non-canonical quantity" if quantity else "a value the server rewrites"
        if mode.server_side:
            consequence = "the committed file never equals the live object (`kubectl diff` shows it)"
        elif quantity and not custom:
            consequence = ("Argo CD normalises quantities of built-in kinds and stays Synced, but the committed file "
                           "never equals the live object (`kubectl diff` and anyone comparing with the cluster see it)")
        else:
            consequence = ("a perpetual diff: Argo CD's comparison keeps showing it"
                           + (" (it normalises built-in kinds only, and this is a custom resource)" if custom else ""))
        out.append({"pointer": pointer, "level": "warning", "rule": STORED_RULE,
                    "message": hide(f"{manifest.ref}: {pointer_field(pointer)} is written {shown_written} but "
                                    f"stored {shown_stored} ({what}); {consequence}; write the stored form", secrets)})
    return out


# --------------------------------------------------------------------------- the stage


class Pool:
    """The servers of one run: at most one per Kubernetes version, started on first need, shared."""

    def __init__(self, binaries: dict[str, Path] | None = None, progress: Progress = _stderr) -> None:
        self.binaries = binaries
        self.progress = progress
        self.servers: dict[str, Server] = {}
        self.starts = 0
        self._errors: dict[str, DoxError] = {}
        self._lock = threading.Lock()
        self._version_locks: dict[str, threading.Lock] = {}
        self._crd_docs: dict[tuple[str, str], dict] | None = None
        self._crd_lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._started: list[Server] = []
        self._closed = False

    def _binaries(self) -> dict[str, Path]:
        if self.binaries is not None:
            return self.binaries
        from ..cluster import binaries as binaries_mod  # noqa: PLC0415

        try:
            resolved = binaries_mod.ensure(["kubernetes", "etcd"], build_missing=False, progress=self.progress)
        except ToolError:
            self.progress("validate: api-server: building the pinned kube-apiserver and etcd once, only what this "
                          "stage needs (several minutes on first use; --no-server skips the stage)...")
            resolved = binaries_mod.ensure(["kubernetes", "etcd"], progress=self.progress)
        self.binaries = resolved.paths
        return self.binaries

    def server(self, spec: ServerSpec) -> Server:
        with self._lock:
            lock = self._version_locks.setdefault(spec.minor, threading.Lock())
        with lock:
            if spec.minor in self._errors:
                raise self._errors[spec.minor]
            if spec.minor in self.servers:
                return self.servers[spec.minor]
            if self._closed:
                raise StageError("API-server stage: stopped (the run is ending)")
            try:
                binaries = self._binaries()
                self.progress(f"validate: api-server: starting etcd {spec.etcd} and kube-apiserver {spec.kubernetes} "
                              "on 127.0.0.1...")
                server = Server(spec, binaries, self.progress)
                self.starts += 1
                with self._lock:
                    self._started.append(server)  # stopped by close() even while it is starting
                try:
                    # Started from the pool's own thread: each process dies with the thread that started it
                    # (PR_SET_PDEATHSIG), and an environment's worker thread ends before the run does.
                    self._starter().submit(server.start).result()
                except BaseException:
                    server.stop()
                    raise
            except (DoxError, OSError) as exc:
                reason = exc.message if isinstance(exc, DoxError) else f"{type(exc).__name__}: {exc}"
                error = StageError(f"API-server stage: kube-apiserver {spec.kubernetes} could not start: "
                                   f"{reason}\n{HINT}")
                self._errors[spec.minor] = error
                raise error from None
            self.servers[spec.minor] = server
            return server

    def crd_documents(self) -> dict[tuple[str, str], dict]:
        """``{(group, kind): CRD}`` from the pinned modules of ``[crds]`` (as doxops.schemas reads them).

        Parsing the CRD files takes seconds (about 3 MB of YAML), so the parsed documents are kept as JSON in
        ``<cache>/apiserver/crds-<sources>.json``, keyed by the pinned sources."""
        with self._crd_lock:
            if self._crd_docs is None:
                stored = cache_dir() / "apiserver" / f"crds-{server_spec().crds}.json"
                try:
                    documents = json.loads(stored.read_text())
                except (OSError, ValueError):
                    documents = None
                if not isinstance(documents, list):
                    import yaml  # noqa: PLC0415

                    from .. import schemas  # noqa: PLC0415

                    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
                    documents = [doc for path in schemas.crd_manifests()
                                 for doc in yaml.load_all(Path(path).read_text(), Loader=loader)
                                 if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition"]
                    stored.parent.mkdir(parents=True, exist_ok=True)
                    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=stored.parent)
                    with os.fdopen(fd, "w") as handle:
                        json.dump(documents, handle, default=str)
                    os.replace(tmp, stored)
                self._crd_docs = {(d["spec"]["group"], d["spec"]["names"]["kind"]): d for d in documents}
            return self._crd_docs

    def _starter(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dox-apiserver")
            return self._executor

    def close(self) -> None:
        """Stop every server, a starting one too (an interrupted run ends at once)."""
        with self._lock:
            self._closed = True
            started, self._started = self._started, []
        for server in started:
            server.stop()
        self.servers.clear()
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    def __enter__(self) -> "Pool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclass
class _Item:
    manifest: Manifest
    mode: Mode
    namespace: str
    key: str
    secrets: list[str] = field(default_factory=list)


class Stage:
    """The API-server stage of one run: ``check(manifests, version, directory)`` -> diagnostics."""

    def __init__(self, pool: Pool | None = None, cache: ResultCache | None = None,
                 progress: Progress = _stderr) -> None:
        self.own_pool = pool is None
        self.pool = pool or Pool(progress=progress)
        self.cache = cache or ResultCache()
        self.progress = progress
        self.sent = 0

    def close(self) -> None:
        if self.own_pool:
            self.pool.close()

    def __enter__(self) -> "Stage":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def check(self, manifests: list[Manifest], kubernetes_version: str, directory: Path | None = None,
              default_namespace: str = "default", name: str = "") -> list[Diagnostic]:
        from ..schemas import minor_of  # noqa: PLC0415

        spec = server_spec()
        if minor_of(kubernetes_version) != spec.minor:
            raise StageError(
                f"{name + ': ' if name else ''}targets Kubernetes {minor_of(kubernetes_version)}, but the only "
                f"kube-apiserver pinned for the API-server stage is {spec.kubernetes} ([cluster.kubernetes] in "
                f"tools.toml); target {spec.minor} or pin a server of that minor, or {HINT}")
        mode_of = apply_modes(manifests, directory)
        namespace_labels = {m.name: _labels(m) for m in manifests if m.kind == "Namespace" and m.api_version == "v1"}
        code = _code_digest()
        items: list[_Item] = []
        for m in manifests:
            mode = mode_of(m)
            namespace = m.namespace or mode.destination or default_namespace
            labels = namespace_labels.get(namespace, {}) if m.kind != "Namespace" else _labels(m)
            material = json.dumps([code, spec.kubernetes, spec.etcd, spec.crds, namespace, labels, mode.key,
                                   default_namespace, m.data], sort_keys=True, default=str)
            items.append(_Item(m, mode, namespace, hashlib.sha256(material.encode()).hexdigest()))
        answers: dict[str, list[dict]] = {}
        missing = []
        for item in items:
            found = self.cache.get(item.key)
            if found is None:
                missing.append(item)
            else:
                answers[item.key] = found
        if missing:
            answers.update(self._send(missing, spec, namespace_labels, name))
        out = []
        for item in items:
            m = item.manifest
            for finding in answers.get(item.key, []):
                if str(_annotations(m).get(EXEMPT_PREFIX + finding["rule"]) or "").strip():
                    continue
                line, col = locate(m, finding["pointer"]) if finding["pointer"] else (m.line, 1)
                out.append(Diagnostic(relative(m.path), line, col, finding["level"], finding["message"],
                                      finding["rule"], m.template))
        return sorted(set(out))

    def _send(self, items: list[_Item], spec: ServerSpec, namespace_labels: dict[str, dict],
              name: str) -> dict[str, list[dict]]:
        label = f"{name}: " if name else ""
        with ThreadPoolExecutor(max_workers=1) as side:  # the CRDs are read while the server starts
            crd_future = side.submit(self.pool.crd_documents)
            server = self.pool.server(spec)
            crd_docs = crd_future.result()
        started = time.monotonic()
        wanted = {(m.manifest.group, m.manifest.kind) for m in items}
        custom = {gk for gk in wanted if gk in crd_docs}
        namespaces = sorted({i.namespace for i in items if i.namespace})
        held = []
        try:
            for ns in namespaces:
                server.acquire_namespace(ns, namespace_labels.get(ns, {}))
                held.append(ns)
            self.progress(f"validate: api-server: {label}sending {len(items)} object(s) as dry-run applies...")

            def one(item: _Item) -> tuple[str, list[dict]]:
                m = item.manifest
                item.secrets = secret_strings(m.data)
                try:
                    status, answer, warnings = server.dry_run(m.data, item.mode, item.namespace)
                except (OSError, http.client.HTTPException) as exc:
                    raise StageError(f"API-server stage: sending {m.ref} ({relative(m.path)}) failed: {exc}; "
                                     f"{HINT}") from None
                findings = _warnings(warnings, item.secrets)
                if status >= 300:
                    findings += _rejection(answer, status, item.secrets)
                else:
                    findings += _stored(m, answer, item.mode, (m.group, m.kind) in custom, item.secrets)
                return item.key, findings

            with ThreadPoolExecutor(max_workers=WORKERS) as workers:
                # built-in kinds are sent while the CRDs are created and become served; custom ones after
                crds = workers.submit(server.ensure_crds, [crd_docs[gk] for gk in sorted(custom)])
                results = dict(workers.map(one, [i for i in items if (i.manifest.group, i.manifest.kind) not in custom]))
                crds.result()
                results.update(workers.map(one, [i for i in items if (i.manifest.group, i.manifest.kind) in custom]))
        finally:
            for ns in held:
                server.release_namespace(ns)
        for key, findings in results.items():
            self.cache.put(key, findings)
        self.sent += len(items)
        self.progress(f"validate: api-server: {label}{len(items)} object(s) answered in "
                      f"{time.monotonic() - started:.1f} s")
        return results
