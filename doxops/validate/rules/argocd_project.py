"""argocd-project: every Application uses a non-default project that allows exactly what it deploys.

For each Argo CD Application: its ``spec.project`` is not ``default`` and is an
AppProject validated in the same run; the project's ``sourceRepos`` allow the
Application's ``repoURL``; its ``destinations`` allow the Application's
destination (server or name, and namespace); and every kind found at the
Application's source path is whitelisted, cluster-scoped kinds in
``clusterResourceWhitelist`` and namespaced kinds in
``namespaceResourceWhitelist``. With ``conf.exact`` (default true) a
whitelisted kind that none of the project's Applications deploys is reported
too: least privilege means the list is exactly what is rendered.

Passing: project ``web`` allows ``{group: apps, kind: Deployment}`` and the
Application's path holds one Deployment.

Failing: the path also holds a ``ClusterRole`` the project does not allow, or
``spec.project: default``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..engine import CLUSTER_SCOPED, Context, Finding
from ..options import defaults
from ._argocd import applications, matches, synced_objects

ID = "argocd-project"
LEVEL = "error"


@dataclass(frozen=True)
class Options:
    exact: bool = True  #: a whitelisted kind nothing deploys is reported too


CONF = defaults(Options)


def _allowed(whitelist: list, group: str, kind: str) -> bool:
    return any(matches(str(w.get("group", "")), group) and matches(str(w.get("kind", "")), kind)
               for w in whitelist or [])


def check(ctx: Context, conf: dict):
    projects = {p.name: p for p in ctx.of_kind("AppProject")}
    used: dict[str, set[tuple[str, str, bool]]] = {}
    for app in applications(ctx):
        spec = app.data.get("spec") or {}
        name = spec.get("project", "default")
        if not isinstance(name, str):
            continue  # ill-typed: the schema stage reports it
        if name == "default":
            yield Finding(app, "/spec/project", f"{app.ref}: uses the default project; give it a project "
                                                "with least privilege")
            continue
        project = projects.get(name)
        if project is None:
            yield Finding(app, "/spec/project", f"{app.ref}: project {name} is not rendered beside it")
            continue
        pspec = project.data.get("spec") or {}
        source = spec.get("source") or {}
        if not any(matches(str(r), str(source.get("repoURL", ""))) for r in pspec.get("sourceRepos") or []):
            yield Finding(app, "/spec/source/repoURL",
                          f"{app.ref}: repoURL {source.get('repoURL')} is not in {project.ref} sourceRepos")
        dest = spec.get("destination") or {}
        if not any((matches(str(d.get("server", "")), str(dest.get("server", ""))) if dest.get("server")
                    else matches(str(d.get("name", "")), str(dest.get("name", ""))))
                   and matches(str(d.get("namespace", "")), str(dest.get("namespace", "")))
                   for d in pspec.get("destinations") or []):
            yield Finding(app, "/spec/destination",
                          f"{app.ref}: destination {dest.get('server') or dest.get('name')}/{dest.get('namespace')} "
                          f"is not allowed by {project.ref}")
        objects = synced_objects(ctx, app) or []
        for obj in objects:
            cluster = obj.kind in CLUSTER_SCOPED
            used.setdefault(name, set()).add((obj.group, obj.kind, cluster))
            whitelist = pspec.get("clusterResourceWhitelist" if cluster else "namespaceResourceWhitelist")
            if not _allowed(whitelist, obj.group, obj.kind):
                scope = "cluster-scoped" if cluster else "namespaced"
                yield Finding(project, "/spec/clusterResourceWhitelist" if cluster else "/spec/namespaceResourceWhitelist",
                              f"{project.ref} does not allow {scope} kind {obj.group or 'core'}/{obj.kind}, which "
                              f"{app.ref} deploys from {obj.path.name}; add it to the whitelist or stop rendering it")
    if not conf.get("exact"):
        return
    for name, project in projects.items():
        if name not in used:
            continue
        pspec = project.data.get("spec") or {}
        for key, cluster in (("clusterResourceWhitelist", True), ("namespaceResourceWhitelist", False)):
            for i, entry in enumerate(pspec.get(key) or []):
                group, kind = str(entry.get("group", "")), str(entry.get("kind", ""))
                if not any(matches(group, g) and matches(kind, k) and c == cluster for g, k, c in used[name]):
                    yield Finding(project, f"/spec/{key}/{i}",
                                  f"{project.ref} allows {group or 'core'}/{kind}, which none of its Applications "
                                  "deploys; remove it (least privilege)")
