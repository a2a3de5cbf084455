"""argocd-sync: Applications sync automatically, heal, retry, and children cascade on delete.

Every Argo CD Application has ``syncPolicy.automated`` with ``selfHeal: true``
(a hand edit in the cluster is reverted), a declared ``prune`` (true or false,
the environment's choice), and ``syncPolicy.retry``. Applications that deploy
workloads (their project is not a bootstrap project: conf
``bootstrapSuffix``) carry the ``resources-finalizer.argocd.argoproj.io/foreground``
finalizer, so deleting one removes what it deployed, except what opts out.

Passing::

    metadata: {finalizers: [resources-finalizer.argocd.argoproj.io/foreground]}
    spec: {syncPolicy: {automated: {prune: true, selfHeal: true}, retry: {limit: 5}}}

Failing: ``syncPolicy: {}`` (manual sync only), or no finalizer on a child.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..engine import Context, Finding
from ..options import defaults
from ._argocd import applications

ID = "argocd-sync"
LEVEL = "error"


@dataclass(frozen=True)
class Options:
    bootstrapSuffix: str = "-bootstrap"  #: projects of bootstrap Applications end with this (no finalizer needed)
    finalizer: str = "resources-finalizer.argocd.argoproj.io/foreground"  #: the cascade finalizer children carry


CONF = defaults(Options)


def check(ctx: Context, conf: dict):
    for app in applications(ctx):
        spec = app.data.get("spec") or {}
        policy = spec.get("syncPolicy") or {}
        automated = policy.get("automated")
        if not isinstance(automated, dict):
            yield Finding(app, "/spec/syncPolicy" if "syncPolicy" in spec else "/spec",
                          f"{app.ref}: no automated sync; a merge must be all it takes to change the cluster")
        else:
            if automated.get("selfHeal") is not True:
                yield Finding(app, "/spec/syncPolicy/automated", f"{app.ref}: selfHeal is off; drift would stay")
            if not isinstance(automated.get("prune"), bool):
                yield Finding(app, "/spec/syncPolicy/automated",
                              f"{app.ref}: declare prune: true or false (the environment's prune policy)")
        if not policy.get("retry"):
            yield Finding(app, "/spec/syncPolicy" if "syncPolicy" in spec else "/spec",
                          f"{app.ref}: no retry; a transient failure would leave the sync failed")
        if str(spec.get("project", "")).endswith(conf["bootstrapSuffix"]):
            continue
        if conf["finalizer"] not in (app.meta.get("finalizers") or []):
            yield Finding(app, "/metadata", f"{app.ref}: child Application without the {conf['finalizer']} "
                                            "finalizer; deleting it would orphan its resources")
