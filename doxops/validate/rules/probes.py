"""probes: every container says when it is alive and when it is ready.

Subjects: the containers (not the init containers) of every workload. Each
must have a ``livenessProbe`` (a hung process is restarted) and a
``readinessProbe`` (no traffic and no rollout progress before it is ready).
Kinds listed in conf ``skipKinds`` (none by default) are not checked.

Passing::

    containers:
      - name: main
        livenessProbe: {httpGet: {path: /health/live, port: http}}
        readinessProbe: {httpGet: {path: /health/ready, port: http}}

Failing (no readinessProbe)::

    containers:
      - name: main
        livenessProbe: {httpGet: {path: /health/live, port: http}}
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..engine import Context, Finding
from ..options import defaults
from ._common import container_name

ID = "probes"
LEVEL = "error"


@dataclass(frozen=True)
class Options:
    skipKinds: list[str] = field(default_factory=list)  #: kinds whose containers are not checked


CONF = defaults(Options)


def check(ctx: Context, conf: dict):
    skip = set(conf.get("skipKinds") or [])
    for workload in ctx.workloads():
        m = workload.manifest
        if m.kind in skip:
            continue
        for container, pointer in workload.containers(init=False):
            for probe, purpose in (("livenessProbe", "restart it when it hangs"),
                                   ("readinessProbe", "send it traffic only when ready")):
                if not container.get(probe):
                    yield Finding(m, pointer, f"{m.ref}: container {container_name(container)} has no {probe}; "
                                              f"add one so Kubernetes can {purpose}")
