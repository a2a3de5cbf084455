"""service-selector: every Service selects pods, and every port reaches a container port.

Subjects: every Service with a selector. Services of type ``ExternalName`` and
Services without a selector (whose Endpoints are managed by hand) are skipped.
Each must

* select at least one pod template (of a Deployment, StatefulSet, DaemonSet,
  ReplicaSet, Job, CronJob or Pod) in its namespace;
* have, for every port, a ``targetPort`` (default: the ``port``) that one of
  the selected pods declares: a number must equal a ``containerPort``, a name
  must equal a container port's ``name``. Containers and sidecar init
  containers (``restartPolicy: Always``) count.

Passing::

    kind: Service                           kind: Deployment
    spec:                                   spec: {template:
      selector: {app: cache}                  metadata: {labels: {app: cache}}
      ports: [{port: 6379, targetPort: db}]   spec: {containers: [{ports: [{name: db, containerPort: 6379}]}]}}

Failing (the label and the port name are misspelt)::

    kind: Service
    spec:
      selector: {app: cahce}
      ports: [{port: 6379, targetPort: redis}]
"""

from __future__ import annotations

from dataclasses import dataclass

from ..engine import Context, Finding
from ..options import defaults
from ._common import Workloads, is_init, ns_of

ID = "service-selector"
LEVEL = "error"


@dataclass(frozen=True)
class Options:
    """No options."""


CONF = defaults(Options)


def _declared_ports(workloads) -> tuple[set[int], set[str]]:
    numbers: set[int] = set()
    names: set[str] = set()
    for workload in workloads:
        for container, pointer in workload.containers(init=True):
            if is_init(pointer) and container.get("restartPolicy") != "Always":
                continue
            for port in container.get("ports") or []:
                if not isinstance(port, dict):
                    continue
                try:
                    numbers.add(int(port.get("containerPort")))
                except (TypeError, ValueError):
                    pass
                if port.get("name"):
                    names.add(str(port["name"]))
    return numbers, names


def check(ctx: Context, conf: dict):
    services = ctx.of_kind("Service")
    if not services:
        return
    workloads = Workloads.of(ctx)
    for svc in services:
        spec = svc.data.get("spec") or {}
        selector = spec.get("selector")
        if spec.get("type") == "ExternalName" or not selector or not isinstance(selector, dict):
            continue
        ns = ns_of(ctx, svc)
        selected = workloads.selected(selector, ns)
        if not selected:
            wanted = ", ".join(f"{k}={v}" for k, v in selector.items())
            yield Finding(svc, "/spec/selector", f"{svc.ref}: selector {wanted} matches no pod template in namespace "
                                                 f"{ns or '(none)'}; fix the selector or the pod template's labels")
            continue
        numbers, names = _declared_ports(selected)
        for i, port in enumerate(spec.get("ports") or []):
            if not isinstance(port, dict):
                continue
            target = port.get("targetPort", port.get("port"))
            if isinstance(target, int) and not isinstance(target, bool):
                found = target in numbers
            elif isinstance(target, str) and target.isdigit():
                found = int(target) in numbers
            else:
                found = str(target) in names
            if found:
                continue
            label = port.get("name") or port.get("port")
            targets = ", ".join(w.manifest.ref for w in selected)
            declared = ", ".join([str(n) for n in sorted(numbers)] + sorted(names)) or "none"
            yield Finding(svc, f"/spec/ports/{i}/targetPort" if "targetPort" in port else f"/spec/ports/{i}",
                          f"{svc.ref}: port {label} targets {target}, which no container of {targets} declares "
                          f"(declared: {declared}); fix targetPort or add the containerPort")
