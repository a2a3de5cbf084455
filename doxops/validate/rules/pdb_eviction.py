"""pdb-eviction: a PodDisruptionBudget never blocks eviction at the workload's minimum.

Subjects: every PodDisruptionBudget. Its selector is matched against the pod
template labels of the workloads in its namespace (an empty ``selector: {}``
selects them all). The minimum number of pods of a workload is the
``minReplicas`` of the HorizontalPodAutoscaler that targets it (1 when unset),
else its ``spec.replicas`` (1 when unset); a bare Pod counts 1. When the budget
selects several workloads their minimums add up, as the disruption controller
counts all selected pods together. A budget fails when

* it selects no workload (it protects nothing, often a selector typo);
* ``minAvailable`` (an integer, or a percentage rounded up) is at least the
  minimum: at that size no pod may be evicted and a node drain hangs;
* ``maxUnavailable`` is ``0`` or ``"0%"``: no pod may ever be evicted;
* ``unhealthyPodEvictionPolicy`` is not conf ``unhealthyPodEvictionPolicy``
  (``AlwaysAllow`` by default; ``null`` turns the check off). Unset, the API
  server applies ``IfHealthyBudget``: pods that are running but not ready
  may be evicted only while the budget is met, so when the selected pods are
  unready at once (a bad rollout, a dependency down) a node drain blocks on
  exactly the pods that serve nothing. ``AlwaysAllow`` lets the drain evict
  them.

Budgets over DaemonSets, Jobs or CronJobs are only checked for selecting
something: their pod count is not known from the manifests.

Passing (an HPA keeps at least 2 pods; one of them may be evicted)::

    kind: PodDisruptionBudget               kind: HorizontalPodAutoscaler
    spec:                                   spec:
      minAvailable: 1                         scaleTargetRef: {kind: Deployment, name: pool}
      selector: {matchLabels: {app: pool}}    minReplicas: 2
      unhealthyPodEvictionPolicy: AlwaysAllow

Failing (a single replica and ``minAvailable: 1``: the pod can never be evicted; and no
``unhealthyPodEvictionPolicy``)::

    kind: Deployment                        kind: PodDisruptionBudget
    metadata: {name: leader}                spec:
    spec: {replicas: 1, template:             minAvailable: 1
      {metadata: {labels: {app: leader}}}}    selector: {matchLabels: {app: leader}}
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from ..engine import Context, Finding, as_dict
from ..options import defaults
from ._common import Workloads, hpas_by_target, ns_of

ID = "pdb-eviction"
LEVEL = "error"


@dataclass(frozen=True)
class Options:
    #: the unhealthyPodEvictionPolicy every budget must set; null: not checked
    unhealthyPodEvictionPolicy: Literal["AlwaysAllow", "IfHealthyBudget"] | None = "AlwaysAllow"


CONF = defaults(Options)

COUNTED = ("Deployment", "StatefulSet", "ReplicaSet")


def _minimum(ctx: Context, workload, hpas) -> tuple[int | None, str]:
    """The fewest pods a workload runs, and why; None when the manifests do not say."""
    m = workload.manifest
    if m.kind == "Pod":
        return 1, f"{m.ref}: a single Pod"
    if m.kind not in COUNTED:
        return None, ""
    targeting = hpas.get(f"{m.kind}/{m.name}", ns_of(ctx, m))
    if targeting:
        hpa = targeting[0]
        low = (hpa.data.get("spec") or {}).get("minReplicas", 1)
        return (low if isinstance(low, int) else None), f"{m.ref}: minReplicas {low} of {hpa.ref}"
    replicas = (m.data.get("spec") or {}).get("replicas", 1)
    return (replicas if isinstance(replicas, int) else None), f"{m.ref}: replicas {replicas}"


def _parse(value) -> tuple[int, bool] | None:
    """An IntOrString budget value as (number, is_percentage); None when it is neither."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value, False
    text = str(value).strip()
    if text.endswith("%"):
        try:
            return int(text[:-1]), True
        except ValueError:
            return None
    return None


def check(ctx: Context, conf: dict):
    pdbs = ctx.of_kind("PodDisruptionBudget")
    if not pdbs:
        return
    workloads = Workloads.of(ctx)
    hpas = hpas_by_target(ctx)
    demanded = conf.get("unhealthyPodEvictionPolicy")
    for pdb in pdbs:
        spec = as_dict(pdb.data.get("spec"))
        ns = ns_of(ctx, pdb)
        policy = spec.get("unhealthyPodEvictionPolicy")
        if demanded and policy != demanded and (policy is None or isinstance(policy, str)):
            shown = f"is {policy}" if policy else "is unset (the API server applies IfHealthyBudget)"
            yield Finding(pdb, "/spec/unhealthyPodEvictionPolicy" if policy else "/spec",
                          f"{pdb.ref}: unhealthyPodEvictionPolicy {shown}, so a node drain blocks while the selected "
                          f"pods are running but unready; set spec.unhealthyPodEvictionPolicy: {demanded} (conf "
                          "unhealthyPodEvictionPolicy of this rule)")
        selector = spec.get("selector")
        if isinstance(selector, dict) and not selector:
            selected = list(workloads.in_ns(ns))
        else:
            selected = workloads.selected(selector, ns)
        if not selected:
            yield Finding(pdb, "/spec/selector" if "selector" in spec else "/spec",
                          f"{pdb.ref}: selects no workload in namespace {ns or '(none)'}; fix the selector to match "
                          "a pod template's labels, or delete the budget")
            continue
        minimums = [_minimum(ctx, w, hpas) for w in selected]
        if any(low is None for low, _ in minimums):
            total = None
        else:
            total = sum(low for low, _ in minimums)
        why = "; ".join(reason for _, reason in minimums if reason)
        for field in ("minAvailable", "maxUnavailable"):
            if field not in spec:
                continue
            parsed = _parse(spec[field])
            pointer = f"/spec/{field}"
            if parsed is None:
                yield Finding(pdb, pointer, f"{pdb.ref}: {field} {spec[field]!r} is neither an integer nor a "
                                            "percentage such as \"50%\"; fix it")
                continue
            number, percent = parsed
            if field == "maxUnavailable":
                if number <= 0:
                    yield Finding(pdb, pointer, f"{pdb.ref}: maxUnavailable {spec[field]} forbids every eviction, "
                                                "so node drains hang; allow at least 1")
                continue
            if not total:  # unknown, or scaled to zero: nothing to evict
                continue
            needed = math.ceil(number * total / 100) if percent else number
            if needed >= total:
                yield Finding(pdb, pointer, f"{pdb.ref}: minAvailable {spec[field]} needs all {total} pod(s) of the "
                                            f"minimum ({why}) up, so no pod can be evicted and node drains hang; "
                                            f"set minAvailable below {total} or use maxUnavailable: 1")
