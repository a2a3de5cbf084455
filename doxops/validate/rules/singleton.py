"""singleton: a workload that must never run twice stays at exactly one pod.

Subjects: workloads whose role label (``roleLabel`` in policy.yaml, by default
``dox-asdlc.io/role``) is ``singleton`` (conf ``role``). Each must

* set ``spec.replicas`` to exactly 1 (an unset count is 1 too, but say it);
* use an update strategy that never runs two pods during a rollout:
  ``Recreate`` for a Deployment, ``OnDelete`` or ``RollingUpdate`` for a
  StatefulSet (which replaces pod 0 in place);
* not be the target of a HorizontalPodAutoscaler.

Passing::

    kind: Deployment
    metadata: {labels: {dox-asdlc.io/role: singleton}}
    spec: {replicas: 1, strategy: {type: Recreate}}

Failing (two replicas; a rolling update runs old and new side by side)::

    kind: Deployment
    metadata: {labels: {dox-asdlc.io/role: singleton}}
    spec: {replicas: 2, strategy: {type: RollingUpdate}}
"""

from __future__ import annotations

from dataclasses import dataclass

from ..engine import Context, Finding
from ..options import defaults

ID = "singleton"
LEVEL = "error"


@dataclass(frozen=True)
class Options:
    role: str = "singleton"  #: the role label value of the subjects


CONF = defaults(Options)


def check(ctx: Context, conf: dict):
    for workload in ctx.workloads():
        m = workload.manifest
        if ctx.role(m) != conf["role"] or m.kind not in ("Deployment", "StatefulSet", "ReplicaSet"):
            continue
        replicas = m.data.get("spec", {}).get("replicas")
        if replicas is None:
            yield Finding(m, "/spec", f"{m.ref}: singleton without spec.replicas; set it to 1 explicitly")
        elif replicas != 1:
            yield Finding(m, "/spec/replicas", f"{m.ref}: singleton has replicas {replicas}; it must be exactly 1")
        if m.kind == "Deployment":
            strategy = (m.data.get("spec", {}).get("strategy") or {}).get("type", "RollingUpdate")
            if strategy != "Recreate":
                pointer = "/spec/strategy/type" if m.data["spec"].get("strategy") else "/spec"
                yield Finding(m, pointer, f"{m.ref}: singleton uses strategy {strategy}, which runs two pods during "
                                          "a rollout; use Recreate")
        for hpa in ctx.hpas_for(m):
            yield Finding(hpa, "/spec/scaleTargetRef", f"{hpa.ref} scales the singleton {m.ref}; remove it")
