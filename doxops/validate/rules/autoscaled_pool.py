"""autoscaled-pool: a pool scaled by an HPA is left to the HPA, within bounds.

Subjects: workloads whose role label is ``autoscaled-pool`` (conf ``role``).
Each must be the target of exactly one autoscaling/v2 HorizontalPodAutoscaler
with ``minReplicas >= conf.minReplicas`` (2), ``maxReplicas <=
conf.maxReplicas`` (10) and a CPU resource metric; every container must
request CPU (utilisation is measured against requests); and the workload must
not set ``spec.replicas``: Argo CD would reset it on every sync and fight the
HPA. Any HPA whose ``scaleTargetRef`` names no rendered workload is reported
as well, and so is any HPA target that sets ``spec.replicas``, whatever its
role label (or none): Argo CD would reset the count on every sync.

Passing::

    kind: Deployment                       kind: HorizontalPodAutoscaler
    metadata: {name: pool, labels:         spec:
      {dox-asdlc.io/role: autoscaled-pool}}  scaleTargetRef: {kind: Deployment, name: pool}
    spec: {template: ... resources:          minReplicas: 2
      {requests: {cpu: 100m}}}               maxReplicas: 10
                                             metrics: [{type: Resource, resource: {name: cpu, ...}}]

Failing: the same Deployment with ``spec.replicas: 3``, or with no HPA.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..engine import Context, Finding, as_dict, as_int, as_list
from ..options import defaults

ID = "autoscaled-pool"
LEVEL = "error"


@dataclass(frozen=True)
class Options:
    role: str = "autoscaled-pool"  #: the role label value of the subjects
    minReplicas: int = 2  #: the HPA's minReplicas must be at least this
    maxReplicas: int = 10  #: the HPA's maxReplicas must be at most this


CONF = defaults(Options)


def check(ctx: Context, conf: dict):
    hpas = ctx.of_kind("HorizontalPodAutoscaler")
    for hpa in hpas:
        ref = as_dict(as_dict(hpa.data.get("spec")).get("scaleTargetRef"))
        target = ctx.workload(str(ref.get("kind")), str(ref.get("name")), hpa.namespace or None)
        if not target:
            yield Finding(hpa, "/spec/scaleTargetRef",
                          f"{hpa.ref} targets {ref.get('kind')} {ref.get('name')}, which is not rendered")
        elif "replicas" in as_dict(target.manifest.data.get("spec")) and ctx.role(target.manifest) != conf["role"]:
            t = target.manifest  # a pool's own spec.replicas is reported below, once
            yield Finding(t, "/spec/replicas", f"{t.ref}: sets spec.replicas although {hpa.ref} scales it; remove it "
                                               "(Argo CD would reset the HPA's count on every sync, whatever the "
                                               "workload's role)")
    for workload in ctx.workloads():
        m = workload.manifest
        if ctx.role(m) != conf["role"]:
            continue
        if "replicas" in (m.data.get("spec") or {}):
            yield Finding(m, "/spec/replicas", f"{m.ref}: sets spec.replicas although an HPA owns the count; "
                                               "remove it (Argo CD would reset the HPA's choice on every sync)")
        for container, pointer in workload.containers(init=False):
            if not ((container.get("resources") or {}).get("requests") or {}).get("cpu"):
                yield Finding(m, pointer, f"{m.ref}: container {container.get('name')} requests no CPU; "
                                          "an HPA on CPU utilisation needs requests")
        mine = ctx.hpas_for(m)
        if not mine:
            yield Finding(m, "", f"{m.ref}: autoscaled pool with no HorizontalPodAutoscaler targeting it")
            continue
        if len(mine) > 1:
            yield Finding(mine[1], "/spec/scaleTargetRef", f"{m.ref} has {len(mine)} HPAs; keep one")
        hpa = mine[0]
        spec = hpa.data.get("spec") or {}
        if not hpa.api_version.startswith("autoscaling/v2"):
            yield Finding(hpa, "/apiVersion", f"{hpa.ref}: use autoscaling/v2, not {hpa.api_version}")
        low, high = spec.get("minReplicas", 1), spec.get("maxReplicas")  # ill-typed: the schema stage's to report
        if as_int(low) is not None and low < conf["minReplicas"]:
            yield Finding(hpa, "/spec/minReplicas" if "minReplicas" in spec else "/spec",
                          f"{hpa.ref}: minReplicas {low} is below {conf['minReplicas']}")
        if high is None or (as_int(high) is not None and high > conf["maxReplicas"]):
            yield Finding(hpa, "/spec/maxReplicas" if "maxReplicas" in spec else "/spec",
                          f"{hpa.ref}: maxReplicas {high} is above {conf['maxReplicas']}")
        cpu = [x for x in as_list(spec.get("metrics")) if isinstance(x, dict) and x.get("type") == "Resource"
               and as_dict(x.get("resource")).get("name") == "cpu"]
        if not cpu:
            yield Finding(hpa, "/spec/metrics" if "metrics" in spec else "/spec",
                          f"{hpa.ref}: no CPU resource metric; the pool scales on CPU utilisation")
