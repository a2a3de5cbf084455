"""What Argo CD will do with the changes: prune or not, in which order, which pods roll.

Facts taken from Argo CD v3.5.1 (the pinned version), ``gitops-engine/pkg/sync``:

* A resource removed from git is a *prune task*. It is deleted only when the sync runs with
  prune: for automated sync that is ``spec.syncPolicy.automated.prune`` (controller/appcontroller.go
  ``autoSync``: ``Prune: app.Spec.SyncPolicy.Automated.GetPrune()``); otherwise the result is
  "ignored (requires pruning)" (sync_context.go ``pruneObject``) and the Application stays OutOfSync.
* ``argocd.argoproj.io/sync-options: Prune=false`` on the object (or ``Prune=false`` in the
  Application's syncOptions, the default the annotation overrides) is "ignored (no prune)": it is
  kept, even by a sync with prune. ``Prune=confirm`` waits for a confirmation
  (``isPruningDisabled``, ``objRequiresPruneConfirmation``).
* Order (sync_tasks.go ``Less``): phase, then wave (``argocd.argoproj.io/sync-wave``, else
  ``helm.sh/hook-weight``, else 0; syncwaves.Wave), then kind (Helm's kind order, unknown kinds
  last), then name. Prune tasks take the live object's wave, mirrored among the prune waves so
  deletion runs in reverse creation order; with ``PruneLast=true`` (Application syncOptions or the
  object's annotation) they move to one wave after the last (``getSyncTasks``). Within a wave,
  prunes run first (``runTasks``: "prune first").

Not modelled, because nothing rendered here uses them: hooks and their phases (PreSync, PostSync), and
``adjustDeps`` (a Namespace or CRD moved before the first object that needs it when it sits in a later wave).

Immutable fields are the API server's verdict, not a list kept here: :data:`ImmutableVerdict` is the
seam a server-backed check plugs into (see :func:`arrange`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import yaml

from .compare import ADD, CHANGE, REMOVE, SAME, Change
from .resources import Key, annotations

SYNC_OPTIONS = "argocd.argoproj.io/sync-options"
SYNC_WAVE = "argocd.argoproj.io/sync-wave"
HOOK_WEIGHT = "helm.sh/hook-weight"

PRUNED = "will be pruned"
PRUNED_ON_CONFIRM = "will be pruned once confirmed (Prune=confirm)"
LEFT = "left in the cluster: requires pruning (prune: false)"
KEPT = "kept (Prune=false)"

#: gitops-engine's kind order (sync_tasks.go, after Helm's kind_sorter): earlier kinds sync first.
KIND_ORDER = ["Namespace", "NetworkPolicy", "ResourceQuota", "LimitRange", "PodSecurityPolicy",
              "PodDisruptionBudget", "ServiceAccount", "Secret", "SecretList", "ConfigMap", "StorageClass",
              "PersistentVolume", "PersistentVolumeClaim", "CustomResourceDefinition", "ClusterRole",
              "ClusterRoleList", "ClusterRoleBinding", "ClusterRoleBindingList", "Role", "RoleList", "RoleBinding",
              "RoleBindingList", "Service", "DaemonSet", "Pod", "ReplicationController", "ReplicaSet", "Deployment",
              "HorizontalPodAutoscaler", "StatefulSet", "Job", "CronJob", "IngressClass", "Ingress", "APIService"]
_KIND_RANK = {kind: i - len(KIND_ORDER) for i, kind in enumerate(KIND_ORDER)}  # unknown kinds: 0, last
WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet")

#: The API server's answer for one changed object: the fields it refuses to change in place
#: (``[]`` when the change is allowed). Called with the environment's key and the raw (unmasked) base
#: and head objects, for every changed resource; a verdict with ``wants_apply_mode = True`` is also given
#: the Application's apply mode as keywords (``server_side``, ``validate``: its syncOptions
#: ``ServerSideApply=true`` and ``Validate=false``), as the server's answer depends on it
#: (doxops.validate.server.ImmutableCheck).
ImmutableVerdict = Callable[[Key, dict, dict], Sequence[str]]


@dataclass(frozen=True)
class SyncPolicy:
    """How the Argo CD Application that syncs a resource treats it."""

    application: str
    path: str
    prune: bool
    prune_last: bool = False
    default_prune: str | None = None  # Prune=... in the Application's syncOptions
    server_side: bool = False  # ServerSideApply=true in its syncOptions
    validate: bool = True  # not Validate=false

    @property
    def label(self) -> str:
        flags = [f"prune: {'true' if self.prune else 'false'}"] + (["PruneLast"] if self.prune_last else [])
        return f"Application {self.application} ({self.path}; {', '.join(flags)})"


def options(doc: dict | None) -> list[str]:
    """An object's ``argocd.argoproj.io/sync-options``, comma-separated, trimmed."""
    return [o.strip() for o in str(annotations(doc).get(SYNC_OPTIONS, "")).split(",") if o.strip()]


def _option(values: Sequence[str], name: str) -> str | None:
    return next((o.split("=", 1)[1] for o in values if o.startswith(name + "=")), None)


def wave(doc: dict | None) -> int:
    for name in (SYNC_WAVE, HOOK_WEIGHT):
        try:
            return int(str(annotations(doc)[name]).strip())
        except (KeyError, ValueError):
            continue
    return 0


def policies(docs: dict[Key, dict]) -> dict[str, list[SyncPolicy]]:
    """Every Argo CD Application in the trees, per environment, by the path it syncs."""
    out: dict[str, list[SyncPolicy]] = {}
    for key, doc in docs.items():
        if key[2] != "Application" or not key[1].startswith("argoproj.io"):
            continue
        spec = doc.get("spec") or {}
        path = str((spec.get("source") or {}).get("path") or "").strip("/")
        sync = spec.get("syncPolicy") or {}
        sync_options = [str(o) for o in sync.get("syncOptions") or []]
        out.setdefault(key[0], []).append(SyncPolicy(
            application=key[4], path=path, prune=bool((sync.get("automated") or {}).get("prune")),
            prune_last="PruneLast=true" in sync_options, default_prune=_option(sync_options, "Prune"),
            server_side=_option(sync_options, "ServerSideApply") == "true",
            validate=_option(sync_options, "Validate") != "false"))
    return out


def settings_policy(env: str, text: str | None) -> SyncPolicy:
    """Where no rendered Application syncs a file: ``environments/<env>/argocd/settings.yaml``'s prune."""
    try:
        spec = (yaml.safe_load(text or "") or {}).get("spec") or {}
    except yaml.YAMLError:
        spec = {}
    return SyncPolicy(application=f"(none rendered; environments/{env}/argocd/settings.yaml)",
                      path=f"rendered/{env}", prune=bool(spec.get("prune")))


def policy_for(file: str, candidates: Sequence[SyncPolicy]) -> SyncPolicy | None:
    """The Application whose path holds ``file`` (the deepest one)."""
    holding = [p for p in candidates if p.path and (file + "/").startswith(p.path + "/")]
    return max(holding, key=lambda p: len(p.path)) if holding else None


def uncovered(before: dict[Key, dict], after: dict[Key, dict], files: dict[Key, str]) -> set[str]:
    """Environments with a file that no rendered Application syncs (they need :func:`settings_policy`)."""
    apps_after, apps_before = policies(after), policies(before)
    return {key[0] for key in (*before, *after) if not (policy_for(files[key], apps_after.get(key[0], []))
                                                        or policy_for(files[key], apps_before.get(key[0], [])))}


def prune_outcome(live: dict | None, policy: SyncPolicy) -> str:
    """What Argo CD does with ``live`` once it is gone from git."""
    choice = _option(options(live), "Prune") or policy.default_prune
    if choice == "false":
        return KEPT
    if not policy.prune:
        return LEFT
    return PRUNED_ON_CONFIRM if choice == "confirm" else PRUNED


def rollout(change: Change, head: dict | None) -> str:
    """Whether a changed workload starts new pods, and whether it is down meanwhile."""
    if change.key[2] not in WORKLOADS or change.action != CHANGE:
        return ""
    template = [p for p in change.paths if p.startswith("spec.template.")]
    if not template:
        return "no new pods (the pod template is unchanged)"
    spec = (head or {}).get("spec") or {}
    if all(".annotations.checksum/" in p for p in template):
        names = ", ".join(sorted({p.rsplit(".annotations.", 1)[1] for p in template}))
        why = f"configuration changed ({names} annotation)"
    else:
        why = f"pod template changed ({template[0]}{' and more' if len(template) > 1 else ''})"
    strategy = (spec.get("strategy") or spec.get("updateStrategy") or {}).get("type", "")
    if strategy == "OnDelete":
        return f"no new pods until each pod is deleted (updateStrategy OnDelete); {why}"
    text = f"new pods: {why}"
    if change.key[2] == "Deployment" and strategy == "Recreate":
        text += "; Recreate: down during the rollout (old pods stop before new ones start)"
    elif change.key[2] == "StatefulSet" and spec.get("replicas", 1) == 1:
        text += "; one replica: down while its pod is replaced"
    return text


def arrange(changes: list[Change], before: dict[Key, dict], after: dict[Key, dict], files: dict[Key, str],
            fallback: dict[str, SyncPolicy], immutable: ImmutableVerdict | None = None) -> list[Change]:
    """Fill in each change's Application, wave, prune outcome, rollout and immutable fields; return the
    changes in Argo CD's order (environment, Application, wave, prunes first, kind, name).

    ``immutable`` is the API server's verdict (base applied, head dry-run against it); without it no
    change is marked immutable. ``files`` maps each key to its file under rendered/ (either side)."""
    apps_after, apps_before = policies(after), policies(before)

    def policy_of(key: Key) -> SyncPolicy:
        return (policy_for(files[key], apps_after.get(key[0], []))
                or policy_for(files[key], apps_before.get(key[0], [])) or fallback[key[0]])

    chosen: dict[Key, SyncPolicy] = {}
    for change in changes:
        policy = chosen[change.key] = policy_of(change.key)
        change.application = policy.label
        if change.action == REMOVE:
            change.outcome = prune_outcome(before[change.key], policy)
            change.wave = wave(before[change.key])
        else:
            change.wave = wave(after[change.key])
            change.rollout = rollout(change, after[change.key])
        if change.action == CHANGE and immutable is not None:
            change.immutable = sorted(ask(immutable, change.key, before[change.key], after[change.key], policy))
    by_app: dict[SyncPolicy, list[Change]] = {}
    for change in changes:
        by_app.setdefault(chosen[change.key], []).append(change)
    for policy, mine in by_app.items():
        prunes = [c for c in mine if c.action == REMOVE]
        if prunes:
            synced = [wave(doc) for key, doc in after.items() if key[0] == mine[0].key[0] and policy_of(key) == policy]
            _prune_waves(prunes, policy, synced, before)

    def order(c: Change) -> tuple:
        return (c.key[0], c.application, c.action == SAME, c.wave, c.action != REMOVE,
                _KIND_RANK.get(c.key[2], 0), c.key[4], c.key[3])

    return sorted(changes, key=order)


def ask(immutable: ImmutableVerdict, key: Key, base: dict, head: dict, policy: SyncPolicy) -> Sequence[str]:
    """The verdict on one change, with the Application's apply mode when the verdict wants it."""
    if getattr(immutable, "wants_apply_mode", False):
        return immutable(key, base, head, server_side=policy.server_side, validate=policy.validate)
    return immutable(key, base, head)


def _prune_waves(prunes: list[Change], policy: SyncPolicy, synced: list[int], before: dict[Key, dict]) -> None:
    """Prune tasks: waves mirrored among the prune waves, then PruneLast one wave after the last."""
    unique = sorted({c.wave for c in prunes})
    mirror = dict(zip(unique, reversed(unique)))
    for c in prunes:
        c.wave = mirror[c.wave]
    last = max([0, *synced, *(c.wave for c in prunes)]) + 1
    for c in prunes:
        if policy.prune_last or "PruneLast=true" in options(before[c.key]):
            c.wave = last
            if c.outcome in (PRUNED, PRUNED_ON_CONFIRM):
                c.notes.append("pruned after every other wave (PruneLast=true)")
