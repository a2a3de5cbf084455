"""argocd-source: an Application's source path exists and holds rendered output, for its namespace.

For each Argo CD Application (all of them sync this repository: the
project rule checks ``repoURL`` against the project): ``spec.source.path`` exists in the
repository, lies under ``rendered/``, and holds Kubernetes manifests; and the
destination namespace is the namespace of every namespaced object there (an
object in another namespace would be created where the project may not allow
it, or fail).

Passing: ``path: rendered/prod/workloads``, a directory of manifests, all in
``dox-asdlc``, with ``destination.namespace: dox-asdlc``.

Failing: ``path: rendered/staging/workloads`` when staging was never
rendered, a path into another environment's output (when validating an
environment), or ``destination.namespace: default``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..engine import CLUSTER_SCOPED, Context, Finding
from ..options import defaults
from ._argocd import applications, source_path, synced_objects

ID = "argocd-source"
LEVEL = "error"


@dataclass(frozen=True)
class Options:
    renderedRoot: str = "rendered/"  #: Applications sync paths under this directory


CONF = defaults(Options)


def check(ctx: Context, conf: dict):
    for app in applications(ctx):
        path = source_path(app)
        source = (app.data.get("spec") or {}).get("source")
        if path is None and isinstance(source, dict) and source.get("path") is not None:
            continue  # an ill-typed path: the schema stage reports it
        if not path:
            yield Finding(app, "/spec/source", f"{app.ref}: no spec.source.path; point it at rendered/<env>/...")
            continue
        if not path.startswith(conf["renderedRoot"]):
            yield Finding(app, "/spec/source/path", f"{app.ref}: path {path} is not under {conf['renderedRoot']}; "
                                                    "Argo CD syncs the rendered output only")
        if ctx.env and not path.startswith(f"{conf['renderedRoot']}{ctx.env}/"):
            yield Finding(app, "/spec/source/path",
                          f"{app.ref}: environment {ctx.env} points at {path}, another environment's output; set "
                          f"spec.environment: {ctx.env} in environments/{ctx.env}/argocd/settings.yaml")
        objects = synced_objects(ctx, app)
        if not objects:
            yield Finding(app, "/spec/source/path", f"{app.ref}: path {path} does not exist in the repository or "
                                                    "holds no manifests; run ./dox render or fix the path")
            continue
        namespace = ((app.data.get("spec") or {}).get("destination") or {}).get("namespace")
        wrong = sorted({o.namespace for o in objects if o.kind not in CLUSTER_SCOPED and o.namespace
                        and o.namespace != namespace})
        if wrong:
            yield Finding(app, "/spec/destination/namespace",
                          f"{app.ref}: destination namespace {namespace} differs from the rendered namespace "
                          f"{', '.join(wrong)} at {path}")
