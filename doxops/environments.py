"""Environments are directories: ``environments/<name>/kustomization.yaml``.

Nothing in the code names an environment. Each environment's cluster facts are
written once, in its own directory:

* the Kubernetes version and API versions it targets are the ``kubeVersion``
  and ``apiVersions`` of its ``helmCharts`` entry in ``kustomization.yaml``:
  kustomize passes them to Helm, and validation uses the same version;
* Argo CD facts (repository URL, revision, destination) live in its
  ``argocd/settings.yaml`` (see ``argocd/settings``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from .errors import UsageError
from .paths import REPO_ROOT, relative
from . import yamlio

ENV_DIR = "environments"
KUSTOMIZATION = "kustomization.yaml"
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


@dataclass(frozen=True)
class Environment:
    name: str
    path: Path
    kubernetes_version: str
    api_versions: tuple[str, ...] = field(default=())
    namespace: str = "dox-asdlc"



def _load(directory: Path) -> Environment:
    kfile = directory / KUSTOMIZATION
    if not kfile.exists():
        alternatives = [p.name for p in directory.glob("*.y*ml")]
        hint = f" (found {', '.join(sorted(alternatives))})" if alternatives else ""
        raise UsageError(
            f"{relative(directory)}: an environment directory needs a {KUSTOMIZATION}{hint}; "
            "see the README's checklist for adding an environment"
        )
    data = yamlio.load_one(kfile) or {}
    if not isinstance(data, dict):
        raise UsageError(f"{relative(kfile)}:1: a kustomization must be a mapping")
    charts = data.get("helmCharts") or []
    versions = {c.get("kubeVersion") for c in charts if isinstance(c, dict)}
    versions.discard(None)
    if len(versions) != 1:
        raise UsageError(
            f"{relative(kfile)}: every helmCharts entry must state the same kubeVersion "
            f"(the Kubernetes version this environment targets); found {sorted(map(str, versions)) or 'none'}"
        )
    api_versions: set[str] = set()
    namespaces: set[str] = set()
    for chart in charts:
        api_versions.update(chart.get("apiVersions") or [])
        if chart.get("namespace"):
            namespaces.add(chart["namespace"])
    return Environment(
        name=directory.name,
        path=directory,
        kubernetes_version=str(versions.pop()),
        api_versions=tuple(sorted(api_versions)),
        namespace=(sorted(namespaces) or ["dox-asdlc"])[0],
    )


def discover(root: Path = REPO_ROOT) -> list[Environment]:
    """Every environment directory under ``environments/``, sorted by name."""
    base = root / ENV_DIR
    if not base.is_dir():
        return []
    envs = []
    for directory in sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if not _NAME.match(directory.name):
            raise UsageError(
                f"{relative(directory)}: environment names must be lowercase DNS labels "
                "(they become Argo CD Application names)"
            )
        envs.append(_load(directory))
    return envs


def select(name: str | None, root: Path = REPO_ROOT) -> list[Environment]:
    """``name`` (or ``$DOX_ENV``) alone, or every environment when neither is set."""
    name = name or os.environ.get("DOX_ENV") or None
    envs = discover(root)
    if not envs:
        raise UsageError(f"no environments: {relative(root / ENV_DIR)} has no directories with a {KUSTOMIZATION}")
    if name is None:
        return envs
    wanted = [n.strip() for n in name.split(",") if n.strip()]
    known = {e.name: e for e in envs}
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise UsageError(f"unknown environment {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return [known[n] for n in wanted]
