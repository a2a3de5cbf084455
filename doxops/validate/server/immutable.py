"""Which changes the API server refuses in place (immutable fields), decided by the server itself.

The diff's :data:`doxops.diff.plan.ImmutableVerdict`: for one changed object, on the pinned kube-apiserver
(a :class:`Pool`, as the validate stage uses, on 127.0.0.1):

1. the head is sent as a dry-run of a *new* object, in an empty namespace: the fields the server refuses
   there are wrong in the head itself (``validate``'s business), never "immutable";
2. the base is created for real, in the Application's apply mode (client-side apply with the
   last-applied annotation, or server-side apply with Argo CD's field manager);
3. the head is sent as a dry-run *update* of it, in the same mode: server-side apply sends the head as an
   apply patch; client-side apply sends the change from base to head as a JSON merge patch (RFC 7386:
   changed and added fields set, removed ones null, a changed list replaced whole), which changes what
   kubectl's three-way patch changes and leaves what the server set (a Service's clusterIP) alone;
4. the object is deleted again.

The fields the update's rejection names (its ``details.causes``) that the new object's dry-run did not
refuse are the ones that cannot be changed in place: the server's verdict, not a list kept here.

Environments share the namespace name ``dox-asdlc``; each verdict works in a namespace of its own,
``dox-immutable-<digest of the question>`` (a cluster-scoped object gets that digest in its name), so
verdicts of several environments never meet on one server, nor meet the validate stage's namespaces.

Verdicts are cached by content under ``<cache>/apiserver/immutable/``: base, head, apply mode, the server,
etcd and CRD versions and this package's code. A repeated diff is answered from the cache and starts no
server.
"""

from __future__ import annotations

import http.client
from typing import Any, Sequence

from ...paths import cache_dir
from .apiserver import Server, is_builtin
from .cache import ResultCache, code_digest, content_key, server_spec
from .common import FIELD_MANAGER, Progress, StageError, stderr_progress
from .findings import causes
from .modes import Mode, own_mode
from .pool import Pool

HINT = ("run `./dox diff --no-server` to skip the API server's immutable-field check (a change it refuses in "
        "place then shows as an ordinary change)")
#: Where a change rejected in place names no field.
WHOLE_OBJECT = "(the object)"


def merge_patch(old: Any, new: Any) -> Any:
    """The JSON merge patch (RFC 7386) that turns ``old`` into ``new``."""
    if not (isinstance(old, dict) and isinstance(new, dict)):
        return new
    patch: dict = {key: None for key in old if key not in new}
    for key, value in new.items():
        if key not in old:
            patch[key] = value
        elif old[key] != value:
            patch[key] = merge_patch(old[key], value) if isinstance(old[key], dict) and isinstance(value, dict) \
                else value
    return patch


def _fields(answer: Any) -> set[str]:
    return {str(c.get("field") or WHOLE_OBJECT) for c in causes(answer)} or {WHOLE_OBJECT}


class ImmutableCheck:
    """``check(key, base, head, server_side=False, validate=True)`` -> the fields the server refuses to change
    in place (``[]``: allowed, or not judged; :attr:`unjudged` says which and why). ``close()`` stops the
    servers it started."""

    #: The diff passes the Application's apply mode to a verdict that says it wants it.
    wants_apply_mode = True

    def __init__(self, pool: Pool | None = None, cache: ResultCache | None = None,
                 progress: Progress = stderr_progress, kubernetes_versions: dict[str, str] | None = None) -> None:
        """``kubernetes_versions``: each environment's ``kubeVersion``; one whose minor is not the pinned server's
        is exit 3 (its verdict would be another version's)."""
        self.kubernetes_versions = kubernetes_versions or {}
        self.own_pool = pool is None
        self.pool = pool or Pool(progress=progress, hint=HINT, who="diff")
        self.cache = cache or ResultCache(cache_dir() / "apiserver" / "immutable")
        self.progress = progress
        self.asked = 0  # verdicts asked of a server (not answered from the cache)
        self.unjudged: list[str] = []

    def close(self) -> None:
        if self.own_pool:
            self.pool.close()

    def __enter__(self) -> "ImmutableCheck":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __call__(self, key: Sequence[str], base: dict, head: dict, server_side: bool = False,
                 validate: bool = True) -> list[str]:
        mode = own_mode(head, Mode(server_side, validate))
        spec = server_spec()
        self._check_version(key[0], spec.kubernetes, spec.minor)
        question = content_key("immutable", code_digest(), spec.kubernetes, spec.etcd, spec.crds, mode.key, base, head)
        cached = self.cache.get(question)
        if cached is not None:
            return [str(f) for f in cached]
        title = f"{key[0]}: {key[2]} {key[3] + '/' if key[3] else ''}{key[4]}"
        api_version, kind = str(head.get("apiVersion")), str(head.get("kind"))
        group = api_version.split("/")[0] if "/" in api_version else ""
        crds = [] if is_builtin(api_version) else [self.pool.crd_documents().get((group, kind))]
        if None in crds:
            self.unjudged.append(f"{title} (no CRD for {kind} in tools.toml [crds])")
            return []
        server = self.pool.server(spec)
        server.ensure_crds(crds)
        try:
            fields = self._ask(server, question[:12], base, head, mode, title)
        except (OSError, http.client.HTTPException) as exc:
            raise StageError(f"API-server stage: asking whether {title} can change in place failed: {exc}; "
                             f"{HINT}") from None
        self.asked += 1
        if fields is not None:
            self.cache.put(question, fields)
        return fields or []

    def _check_version(self, env: str, pinned: str, minor: str) -> None:
        from ...schemas import minor_of  # noqa: PLC0415

        wanted = self.kubernetes_versions.get(env)
        if wanted and minor_of(wanted) != minor:
            raise StageError(f"{env}: targets Kubernetes {minor_of(wanted)}, but the only kube-apiserver pinned for "
                             f"the immutable-field check is {pinned} ([cluster.kubernetes] in tools.toml); target "
                             f"{minor} or pin a server of that minor, or {HINT}")

    def _ask(self, server: Server, digest: str, base: dict, head: dict, mode: Mode, title: str) -> list[str] | None:
        namespace = f"dox-immutable-{digest}"
        status, answer, _ = server.request("POST", "/api/v1/namespaces", {
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": namespace, "labels": {"pod-security.kubernetes.io/enforce": "privileged"}}})
        if status >= 300 and status != 409:
            server.checked(f"creating namespace {namespace}", status, answer)
        found = server.collection(str(head.get("apiVersion")), str(head.get("kind")), namespace)
        if found is None:
            self.unjudged.append(f"{title} (the API server serves no such kind)")
            return None
        collection, namespaced = found
        base, head = _named(base, namespaced, digest), _named(head, namespaced, digest)
        name = head["metadata"]["name"]
        status, answer, _ = server.apply(head, mode, namespace, dry_run=True)
        refused_new = _fields(answer) if status >= 300 else set()
        status, answer, _ = server.apply(base, mode, namespace, dry_run=False)
        if status >= 300:
            self.unjudged.append(f"{title} (the API server refuses the base object itself: "
                                 f"{answer.get('message') if isinstance(answer, dict) else status})")
            return []
        try:
            query = {"dryRun": "All", "fieldManager": FIELD_MANAGER,
                     "fieldValidation": "Strict" if mode.validate else "Ignore"}
            if mode.server_side:
                status, answer, _ = server.apply(head, mode, namespace, dry_run=True)
            else:
                patch = merge_patch(server.applied_form(base, mode, namespace, namespaced),
                                    server.applied_form(head, mode, namespace, namespaced))
                status, answer, _ = server.request("PATCH", f"{collection}/{name}", patch,
                                                   "application/merge-patch+json", query)
        finally:
            server.request("DELETE", f"{collection}/{name}", query={"propagationPolicy": "Background"})
        if status < 300:
            return []
        return sorted(_fields(answer) - refused_new)


def _named(data: dict, namespaced: bool, digest: str) -> dict:
    """``data`` with a name of its own when it is cluster-scoped (a namespace of its own holds the others)."""
    if namespaced:
        return data
    meta = dict(data.get("metadata") or {})
    meta["name"] = f"{str(meta.get('name') or 'object')[:40]}-{digest}"
    return {**data, "metadata": meta}
