"""What Argo CD did with one push, read from the cluster: live objects before and after, the sync, new pods.

:func:`leaves` flattens an object the way ``./dox diff`` names its paths (named lists keyed
``name=<name>``), so an observed field can be matched with a planned one. :class:`Snapshot` is the
live state of every rendered object (base and head) and of the workloads' ReplicaSets and pods;
:func:`sync_outcome` reads the Application after the push: done (the operation for the head
Succeeded and every resource Synced or requiring a prune, Healthy), failed (the first failed
operation or refused resource, not waiting for retries), or still running.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ...diff.resources import canonical
from ..harness import label_selector
from ..argocd.harness import resource_path

#: Kinds whose pods a rehearsal follows.
WORKLOAD_KINDS = ("Deployment", "StatefulSet")


def leaves(node: Any, path: str = "") -> dict[str, Any]:
    """``{dotted path: scalar}`` of a canonical object (``status`` left out)."""
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            if not path and key == "status":
                continue
            out.update(leaves(value, f"{path}.{key}" if path else str(key)))
        return out if out or not path else {path: {}}
    if isinstance(node, list):
        out = {}
        for i, value in enumerate(node):
            out.update(leaves(value, f"{path}[{i}]"))
        return out if out else {path: []}
    return {path: node}


def object_key(doc: dict, namespace: str) -> tuple[str, str, str]:
    meta = doc.get("metadata") or {}
    ns = meta.get("namespace", namespace) if doc.get("kind") != "Namespace" else ""
    return doc["kind"], ns, meta["name"]


@dataclass
class Snapshot:
    """The live objects (by kind, namespace, name; None when absent), ReplicaSets and pods of the workloads."""

    objects: dict[tuple[str, str, str], dict | None] = field(default_factory=dict)
    replica_sets: dict[str, set[str]] = field(default_factory=dict)
    pods: dict[str, set[str]] = field(default_factory=dict)


def take(api, docs: list[dict], namespace: str) -> Snapshot:
    """Read every object of ``docs`` from the API server, and the pods and ReplicaSets of its workloads."""
    snap = Snapshot()
    for doc in docs:
        key = object_key(doc, namespace)
        path = resource_path(doc, namespace)
        snap.objects[key] = api.get(path) if api.exists(path) else None
        if doc["kind"] in WORKLOAD_KINDS:
            selector = label_selector(((doc.get("spec") or {}).get("selector") or {}).get("matchLabels") or {})
            snap.pods[doc["metadata"]["name"]] = {p["metadata"]["uid"] for p in api.items(
                f"/api/v1/namespaces/{namespace}/pods", labelSelector=selector)}
            if doc["kind"] == "Deployment":
                snap.replica_sets[doc["metadata"]["name"]] = {rs["metadata"]["name"] for rs in api.items(
                    f"/apis/apps/v1/namespaces/{namespace}/replicasets", labelSelector=selector)}
    return snap


def changed_paths(rendered: list[dict], before: dict | None, after: dict | None) -> dict[str, tuple[Any, Any]]:
    """The live changes of one object, at the paths its rendered forms (base, head) write."""
    if before is None or after is None:
        return {}
    live_a, live_b = leaves(canonical(before)), leaves(canonical(after))
    paths: set[str] = set()
    for doc in rendered:
        paths |= set(leaves(canonical(doc)))
    return {p: (live_a.get(p), live_b.get(p)) for p in sorted(paths) if live_a.get(p) != live_b.get(p)}


@dataclass
class SyncOutcome:
    """The child Application's answer to the push: ``done``, ``failed`` (with ``reason``), or neither."""

    done: bool = False
    failed: bool = False
    reason: str = ""
    phase: str = ""
    results: list[dict] = field(default_factory=list)
    requires_pruning: set[tuple[str, str, str]] = field(default_factory=set)


def sync_outcome(app: dict, revision: str) -> SyncOutcome:
    status = app.get("status") or {}
    op = status.get("operationState") or {}
    result = op.get("syncResult") or {}
    out = SyncOutcome(phase=op.get("phase") or "", results=result.get("resources") or [])
    out.requires_pruning = {(r.get("kind"), r.get("namespace") or "", r.get("name"))
                            for r in status.get("resources") or [] if r.get("requiresPruning")}
    target = result.get("revision") or ((op.get("operation") or {}).get("sync") or {}).get("revision")
    sync, health = (status.get("sync") or {}), (status.get("health") or {})
    off = [r for r in status.get("resources") or [] if r.get("status") != "Synced" and not r.get("requiresPruning")]
    if target != revision:
        # Nothing to apply at this revision (its manifests equal the live state): no operation is started.
        # Argo CD starts none either when all that differs requires a prune and automated prune is off
        # (appcontroller.go autoSync: "need to prune extra resources only but automated prune is disabled").
        out.done = (sync.get("revision") == revision
                    and health.get("status") == "Healthy" and not off and op.get("phase") != "Running")
        if out.done:
            out.phase, out.results = "none started (nothing to apply at the head)", []
        return out
    refused = [r for r in out.results if r.get("status") == "SyncFailed"]
    message = op.get("message") or ""
    if refused or out.phase in ("Failed", "Error") or message.lower().startswith("retrying"):
        out.failed = True
        if out.phase == "Running":  # Argo CD is about to retry; the first attempt's result is the answer
            out.phase = "Failed (first attempt; Argo CD retries with back-off)"
        out.reason = "; ".join(f"{r.get('kind')} {r.get('namespace')}/{r.get('name')}: {r.get('message')}"
                               for r in refused) or message or out.phase
        return out
    settled = str(status.get("reconciledAt") or "") >= str(op.get("finishedAt") or "~")
    out.done = (out.phase == "Succeeded" and sync.get("revision") == revision and health.get("status") == "Healthy"
                and not off and settled)
    return out


def result_for(results: list[dict], key: tuple[str, str, str]) -> dict | None:
    kind, ns, name = key
    return next((r for r in results if r.get("kind") == kind and (r.get("namespace") or "") == ns
                 and r.get("name") == name), None)


def new_pods(before: Snapshot, after: Snapshot, created: list[str]) -> dict[str, str]:
    """``{workload: how}`` for each workload that started pods after the push (new ReplicaSet, new pod UIDs,
    or pods the watch saw created, named after the workload)."""
    out: dict[str, str] = {}
    for name, uids in after.pods.items():
        reasons = []
        fresh_sets = sorted(after.replica_sets.get(name, set()) - before.replica_sets.get(name, set()))
        if fresh_sets:
            reasons.append(f"new ReplicaSet {', '.join(fresh_sets)}")
        watched = sorted(p for p in created if p.startswith(name + "-") and
                         not any(p.startswith(other + "-") and len(other) > len(name) for other in after.pods))
        if watched:
            reasons.append(f"pods created {', '.join(watched[:4])}")
        elif uids - before.pods.get(name, set()):
            reasons.append(f"{len(uids - before.pods.get(name, set()))} new pod UID(s)")
        if reasons:
            out[name] = "; ".join(reasons)
    return out


def recreate_gap(timeline, old: set[str], name: str) -> float | None:
    """Seconds between the last old pod of ``name`` gone and its first new pod created (Recreate's gap)."""
    gone = [e.at for e in timeline if e.what == "gone" and e.pod in old]
    created = [e.at for e in timeline if e.what == "created" and e.pod.startswith(name + "-") and e.pod not in old]
    if not gone or not created:
        return None
    return round(min(created) - max(gone), 2)
