"""Pinned pipeline tools: read ``tools.toml``, find or build each binary, check it is the pinned build.

Resolution order for a tool ``NAME`` (helm, kustomize, kubeconform, actionlint):

1. ``$DOX_<NAME>`` (e.g. ``DOX_HELM=/opt/helm``): an explicit binary; it must be the pinned build,
   otherwise the run stops (exit 3).
2. ``NAME`` on ``PATH``, if it is the pinned build. Any other binary is refused (a note on stderr).
3. The per-user cache ``<cache>/tools/NAME-VERSION/NAME``, built on first use with
   ``go install MODULE@VERSION`` and the release ldflags. A cached binary that is not the pinned build
   (or no longer a Go binary at all) is rebuilt.

"The pinned build" is decided by one check, :func:`doxops.gotools.check`, which reads the Go build info
of the binary (module and version), never the version string it prints. Building, checking and caching
are :mod:`doxops.gotools`, shared with the cluster binaries (:mod:`doxops.cluster.binaries`).
"""

from __future__ import annotations

import functools
import shutil
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from . import gotools
from .errors import ToolError, UsageError
from .gotools import GoTool, Progress, go_binary, lock, reported_version, tool_dir  # noqa: F401  (public API)
from .paths import REPO_ROOT, cache_dir

TOOLS_FILE = REPO_ROOT / "tools.toml"

__all__ = ["TOOLS_FILE", "Progress", "Tool", "ToolSpec", "ensure_tool", "go_binary", "load_config", "load_section",
           "load_specs", "lock", "reported_version", "resolve", "resolve_all", "tool_dir"]

#: A pipeline tool's table (``[tools.NAME]``): one binary named like the table.
ToolSpec = GoTool


@dataclass(frozen=True)
class Tool:
    """A resolved binary: where it is and where it came from."""

    spec: GoTool
    path: Path
    origin: str  # "env", "PATH", "cache" or "built"
    build_seconds: float | None = field(default=None, compare=False)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def version(self) -> str:
        return self.spec.version


@functools.lru_cache(maxsize=8)
def _parsed(text: str) -> dict:
    """tools.toml's tables (read by every stage of one run: parsed once per content; callers only read them)."""
    return tomllib.loads(text)


def load_config(path: Path = TOOLS_FILE) -> dict:
    """Parse tools.toml (parsed once per content: the tables are shared, read them, never change them); a syntax
    error is a usage error naming the file."""
    try:
        with open(path, "rb") as handle:
            return _parsed(handle.read().decode())
    except FileNotFoundError:
        raise UsageError(f"{path}: not found; the pinned tools are declared there") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: {exc}; fix the TOML syntax") from None


def load_section(section: str, path: Path = TOOLS_FILE) -> dict[str, GoTool]:
    """Every ``[SECTION.NAME]`` table of tools.toml (``tools`` or ``cluster``), checked for required keys."""
    return {name: gotools.from_table(section, name, table, path)
            for name, table in load_config(path).get(section, {}).items()}


def load_specs(path: Path = TOOLS_FILE) -> dict[str, GoTool]:
    """Every ``[tools.NAME]`` table of tools.toml."""
    return load_section("tools", path)


def resolve(name: str, *, build_missing: bool = True, progress: Progress = gotools.stderr,
            specs: dict[str, GoTool] | None = None) -> Tool:
    """Find (or build) the pinned ``name``; see the module docstring for the order."""
    specs = specs if specs is not None else load_specs()
    if name not in specs:
        raise UsageError(f"{TOOLS_FILE.name}: no tool named {name!r} (known: {', '.join(sorted(specs))})")
    spec = specs[name]

    forced = gotools.explicit(spec, name)
    if forced:
        return Tool(spec, forced, "env")

    on_path = shutil.which(name)
    if on_path and not Path(on_path).resolve().is_relative_to(cache_dir()):
        if not shutil.which("go"):
            progress(f"{name}: not using {on_path}: Go reads its build info to check it, and go is not on PATH")
        elif (problem := gotools.check(spec, Path(on_path))) is None:
            return Tool(spec, Path(on_path), "PATH")
        else:
            progress(f"{name}: refusing {on_path} (it {problem}; pinned {spec.module} {spec.version}); "
                     "using the cache")

    paths, seconds = gotools.ensure(spec, build_missing=build_missing, progress=progress)
    binary = paths[name] if name in paths else paths[spec.binaries[0]]  # [tools.x-variant] builds binaries = ["x"]
    return Tool(spec, binary, "cache" if seconds is None else "built", seconds)


def ensure_tool(name: str) -> Path:
    """Path of the pinned ``name``, building it if needed (for tests and scripts)."""
    return resolve(name).path


def resolve_optional(name: str, specs: dict[str, GoTool] | None = None) -> Tool | None:
    """The cached build of the optional tool ``name`` (``optional = true``) if it was built and is the pinned
    build, else None; never builds (:func:`resolve_all` does, where it can). Takes no lock: a build publishes
    its directory in one rename, so a scan never waits for ``./dox tools`` building it elsewhere."""
    specs = specs if specs is not None else load_specs()
    spec = specs[name]
    found = gotools.cached(spec, progress=lambda message: None)
    return Tool(spec, found[spec.binaries[0]], "cache") if found else None


def resolve_all(*, build_missing: bool = True, progress: Progress = gotools.stderr) -> list[Tool]:
    """Every tool of tools.toml, built if missing. An optional tool (``optional = true``) is built only where
    its ``needs_headers`` compile, and one that cannot be built is left out with a note: nothing needs it."""
    specs = load_specs()
    tools = []
    for name, spec in specs.items():
        if not spec.optional:
            tools.append(resolve(name, build_missing=build_missing, progress=progress, specs=specs))
            continue
        found = resolve_optional(name, specs)
        if found is None and build_missing:
            missing = gotools.missing_headers(spec)
            if missing:
                progress(f"{name}: optional, not built: the C++ compiler (go env CXX) cannot include "
                         f"{', '.join(missing)} ({spec.where} says which packages provide them)")
                continue
            try:
                found = resolve(name, progress=progress, specs=specs)
            except ToolError as exc:
                progress(f"{name}: optional, not built: {exc.message.splitlines()[0]}")
                continue
        if found is not None:
            tools.append(found)
    return tools

