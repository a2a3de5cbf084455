"""namespace: every namespaced object is in the expected namespace; cluster-scoped ones set none.

Subjects: every object, when the run has an expected namespace (``--namespace``
or ``namespace`` in policy.yaml); without one the rule checks nothing. A
namespaced object must set ``metadata.namespace`` to it (an unset namespace
lands wherever Argo CD or kubectl happens to point). A cluster-scoped object
(the engine's list, plus the kinds in conf ``clusterScoped``) must not set
``metadata.namespace``.

Passing (expected namespace ``demo``)::

    kind: ConfigMap
    metadata: {name: settings, namespace: demo}
    ---
    kind: ClusterRole
    metadata: {name: reader}

Failing (no namespace; a namespace on a cluster-scoped object)::

    kind: ConfigMap
    metadata: {name: settings}
    ---
    kind: ClusterRole
    metadata: {name: reader, namespace: demo}
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..engine import CLUSTER_SCOPED, Context, Finding
from ..options import defaults

ID = "namespace"
LEVEL = "error"


@dataclass(frozen=True)
class Options:
    clusterScoped: list[str] = field(default_factory=list)  #: more cluster-scoped kinds than the engine knows


CONF = defaults(Options)


def check(ctx: Context, conf: dict):
    expected = ctx.namespace
    if not expected:
        return
    cluster_scoped = CLUSTER_SCOPED | set(conf.get("clusterScoped") or [])
    for m in ctx.manifests:
        if m.kind in cluster_scoped:
            if m.namespace:
                yield Finding(m, "/metadata/namespace", f"{m.ref}: {m.kind} is cluster-scoped; remove "
                                                        "metadata.namespace")
        elif not m.namespace:
            yield Finding(m, "/metadata" if "metadata" in m.data else "",
                          f"{m.ref}: sets no metadata.namespace; set it to {expected}")
        elif m.namespace != expected:
            yield Finding(m, "/metadata/namespace", f"{m.ref}: is in namespace {m.namespace}; move it to {expected}")
