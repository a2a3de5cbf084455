"""resources: every container requests CPU and memory and caps memory.

Subjects: the containers and init containers of every workload. Each must set
``resources.requests.cpu`` and ``resources.requests.memory`` (what the
scheduler reserves, and what CPU utilisation is measured against) and
``resources.limits.memory`` (a leak ends in an OOM kill of this container, not
of its neighbours). A CPU limit is not required.

Passing::

    resources:
      requests: {cpu: 100m, memory: 128Mi}
      limits: {memory: 256Mi}

Failing (no memory request, no memory limit)::

    resources:
      requests: {cpu: 100m}
"""

from __future__ import annotations

from dataclasses import dataclass

from ..engine import Context, Finding
from ..options import defaults
from ._common import container_name

ID = "resources"
LEVEL = "error"


@dataclass(frozen=True)
class Options:
    """No options."""


CONF = defaults(Options)

REQUIRED = (
    ("requests", "cpu", "so the scheduler reserves it (CPU autoscaling is measured against it)"),
    ("requests", "memory", "so the scheduler reserves it"),
    ("limits", "memory", "so a leak ends in this container's OOM kill, not its neighbours'"),
)


def check(ctx: Context, conf: dict):
    for workload in ctx.workloads():
        m = workload.manifest
        for container, pointer in workload.containers(init=True):
            resources = container.get("resources")
            resources = resources if isinstance(resources, dict) else {}
            for section, resource, why in REQUIRED:
                block = resources.get(section)
                block = block if isinstance(block, dict) else {}
                if block.get(resource) not in (None, ""):
                    continue
                if section in resources:
                    where = f"{pointer}/resources/{section}"
                elif "resources" in container:
                    where = f"{pointer}/resources"
                else:
                    where = pointer
                yield Finding(m, where, f"{m.ref}: container {container_name(container)} sets no "
                                        f"resources.{section}.{resource}; set it {why}")
