"""Pinned binaries of the e2e control plane, built from Go modules into the shared tool cache.

``[cluster.NAME]`` tables of tools.toml declare them: ``version``, ``binaries`` (the executables
produced), ``ldflags``, ``version_args``/``version_regex`` (per binary in ``version_args_of``) and one of

* ``gobuild = "gobuild/DIR"`` with ``packages``: a wrapper module committed in this repository, built
  there with ``go build`` (Kubernetes, etcd, Argo CD: their own go.mod replaces sibling modules, which
  ``go install`` refuses; the wrapper requires the pinned version and replaces nothing of theirs);
* ``module = "..."``: ``go install module@version`` (kwok, metrics-server).

Building, the version check (the Go build info) and the cache (``<cache>/tools/NAME-VERSION/``, a lock,
a stamp, one atomic rename) are :mod:`doxops.gotools`, the same mechanism as the pipeline tools. A
wrapper's content is part of the stamp, so editing it rebuilds. ``$DOX_<BINARY>``
(``DOX_KUBE_APISERVER=/path``) forces one binary, which must pass the same check.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .. import gotools
from ..errors import UsageError
from ..gotools import (BUILD_JOBS, GoTool, Progress, build_command, check, pinned_modules,  # noqa: F401  (public API)
                       reported_version, same_version, wrapper_digest)
from ..paths import REPO_ROOT
from ..toolchain import TOOLS_FILE, load_section

__all__ = ["BUILD_JOBS", "BinarySpec", "Resolved", "build", "build_command", "check", "ensure", "group_dir",
           "load_specs", "pinned_modules", "reported_version", "same_version", "wrapper_digest"]

#: A ``[cluster.NAME]`` table: a group of binaries of one version.
BinarySpec = GoTool


def load_specs(path: Path = TOOLS_FILE) -> dict[str, GoTool]:
    """Every ``[cluster.NAME]`` table of tools.toml, checked."""
    return load_section("cluster", path)


def group_dir(spec: GoTool) -> Path:
    return gotools.tool_dir(spec)


def build(spec: GoTool, root: Path = REPO_ROOT, progress: Progress = gotools.stderr) -> tuple[dict[str, Path], float]:
    """Build one table's binaries into the cache, atomically; returns (paths, wall seconds)."""
    return gotools.build(spec, root, progress)


@dataclass
class Resolved:
    """Every binary of the harness by name, and what had to be built (name -> wall seconds)."""

    paths: dict[str, Path]
    built: dict[str, float]


def ensure(names: list[str] | None = None, *, build_missing: bool = True, root: Path = REPO_ROOT,
           progress: Progress = gotools.stderr) -> Resolved:
    """The harness binaries (all tables, or ``names``), building what is missing."""
    specs = load_specs()
    unknown = [n for n in names or [] if n not in specs]
    if unknown:
        raise UsageError(f"tools.toml: no [cluster.*] table named {', '.join(unknown)} (known: {', '.join(specs)})")
    paths: dict[str, Path] = {}
    built: dict[str, float] = {}
    for name in names or list(specs):
        spec = specs[name]
        forced = {b: p for b in spec.binaries if (p := gotools.explicit(spec, b, root))}
        if len(forced) < len(spec.binaries):
            found, seconds = gotools.ensure(spec, build_missing=build_missing, root=root, progress=progress,
                                            hint="run `./dox test` or `./dox e2e` once to build it")
            paths.update(found)
            if seconds is not None:
                built[name] = seconds
        paths.update(forced)
    return Resolved(paths, built)
