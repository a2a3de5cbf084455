"""Pinned binaries of the e2e control plane, built from Go modules into the shared tool cache.

``[cluster.NAME]`` tables of tools.toml declare them. Each table is built once per
machine into ``<cache>/tools/NAME-VERSION/`` (the cache of :mod:`doxops.toolchain`,
shared by every clone and CI run), in the same style as the other tools: a lock per
name, a fresh staging directory, a version check of every produced binary, a stamp,
then one atomic rename.

Two ways to build, chosen by the table:

* ``gobuild = "gobuild/DIR"``: a wrapper module committed in this repository (its
  ``go.mod`` and ``go.sum`` pin the version), built there with ``go build -o DIR/
  PACKAGES`` (``-o DIR/BINARY`` for one package and one binary). Kubernetes needs this: ``k8s.io/kubernetes`` replaces its staging
  modules, so ``go install k8s.io/kubernetes/cmd/...@v1.36.1`` is refused; the
  wrapper replaces each of them by its published tag instead. etcd needs it too
  (its main lives in a module that replaces its siblings).
* ``module = "..."``: ``go install module@version``, as for helm and kustomize.

A wrapper's content (go.mod, go.sum, *.go) is part of the stamp, so editing it
rebuilds. ``$DOX_<BINARY>`` (``DOX_KUBE_APISERVER=/path``) forces one binary,
which must report the pinned version.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ToolError, UsageError
from ..paths import REPO_ROOT, cache_dir
from ..toolchain import (TOOLS_FILE, Progress, ToolSpec, _lock, _stderr, go_binary, load_config, publish,
                         reported_version)

#: Parallel compile jobs: the machines this runs on have two cores shared with others.
BUILD_JOBS = "2"


@dataclass(frozen=True)
class BinarySpec:
    """One ``[cluster.NAME]`` table: how to build a group of binaries of one version."""

    name: str
    version: str
    binaries: tuple[str, ...]
    ldflags: tuple[str, ...]
    version_args: tuple[str, ...]
    version_regex: str
    gobuild: str | None = None
    module: str | None = None
    packages: tuple[str, ...] = ()
    version_args_of: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def rendered_ldflags(self) -> str:
        return " ".join(flag.replace("{version}", self.version) for flag in self.ldflags)

    def tool_spec(self, binary: str) -> ToolSpec:
        """A :class:`ToolSpec` for one binary, so :func:`reported_version` can ask it."""
        return ToolSpec(
            name=binary, module=self.module or self.gobuild or "", version=self.version, ldflags=self.ldflags,
            version_args=tuple(self.version_args_of.get(binary, self.version_args)),
            version_regex=self.version_regex,
        )


def load_specs(path: Path = TOOLS_FILE) -> dict[str, BinarySpec]:
    """Every ``[cluster.NAME]`` table of tools.toml, checked."""
    specs: dict[str, BinarySpec] = {}
    for name, table in load_config(path).get("cluster", {}).items():
        missing = [k for k in ("version", "binaries", "version_args", "version_regex") if k not in table]
        if bool(table.get("gobuild")) == bool(table.get("module")):
            missing.append("exactly one of gobuild and module")
        if table.get("gobuild") and not table.get("packages"):
            missing.append("packages")
        if missing:
            raise UsageError(f"{path}: [cluster.{name}] lacks {', '.join(missing)}")
        specs[name] = BinarySpec(
            name=name,
            version=table["version"],
            binaries=tuple(table["binaries"]),
            ldflags=tuple(table.get("ldflags", ())),
            version_args=tuple(table["version_args"]),
            version_regex=table["version_regex"],
            gobuild=table.get("gobuild"),
            module=table.get("module"),
            packages=tuple(table.get("packages", ())),
            version_args_of=dict(table.get("version_args_of", {})),
        )
    return specs


def group_dir(spec: BinarySpec) -> Path:
    return cache_dir() / "tools" / f"{spec.name}-{spec.version}"


def _same_version(got: str | None, want: str) -> bool:
    return got is not None and got.lstrip("v") == want.lstrip("v")


def _wrapper_dir(spec: BinarySpec, root: Path) -> Path:
    directory = (root / spec.gobuild).resolve()
    if not (directory / "go.mod").exists():
        raise UsageError(f"{TOOLS_FILE.name} [cluster.{spec.name}]: {spec.gobuild}/go.mod does not exist")
    return directory


def wrapper_digest(spec: BinarySpec, root: Path = REPO_ROOT) -> str:
    """Hash of a wrapper module's files (empty for ``go install`` tables)."""
    if not spec.gobuild:
        return ""
    directory = _wrapper_dir(spec, root)
    digest = hashlib.sha256()
    for path in sorted(directory.iterdir()):
        if path.is_file() and (path.name in ("go.mod", "go.sum") or path.suffix == ".go"):
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _check_wrapper_pin(spec: BinarySpec, root: Path) -> None:
    """The wrapper's go.mod must require the version tools.toml pins (one source of truth, checked)."""
    text = (_wrapper_dir(spec, root) / "go.mod").read_text()
    if not re.search(rf"^\s*(?:require\s+)?\S+\s+{re.escape(spec.version)}\s*(?://.*)?$", text, re.MULTILINE):
        raise UsageError(
            f"{spec.gobuild}/go.mod requires no module at {spec.version}, but tools.toml [cluster.{spec.name}] "
            "pins that version; change both together"
        )


def _stamp(spec: BinarySpec, directory: Path, root: Path) -> dict:
    files = {}
    for binary in spec.binaries:
        st = (directory / binary).stat()
        files[binary] = [st.st_size, st.st_mtime_ns]
    return {"version": spec.version, "wrapper": wrapper_digest(spec, root), "files": files}


def _cached(spec: BinarySpec, root: Path, progress: Progress) -> dict[str, Path] | None:
    directory = group_dir(spec)
    paths = {b: directory / b for b in spec.binaries}
    if not all(p.exists() for p in paths.values()):
        return None
    stamp_file = directory / ".verified.json"
    try:
        if json.loads(stamp_file.read_text()) == _stamp(spec, directory, root):
            return paths
    except (OSError, ValueError):
        pass
    if all(_same_version(reported_version(spec.tool_spec(b), p), spec.version) for b, p in paths.items()):
        try:
            old = json.loads(stamp_file.read_text())
        except (OSError, ValueError):
            old = {}
        if old.get("wrapper", wrapper_digest(spec, root)) == wrapper_digest(spec, root):
            stamp_file.write_text(json.dumps(_stamp(spec, directory, root)))
            return paths
        progress(f"{spec.name}: {spec.gobuild} changed since the cached build; rebuilding")
    else:
        progress(f"{spec.name}: cached binaries in {directory} are broken or not {spec.version}; rebuilding")
    shutil.rmtree(directory, ignore_errors=True)
    return None


def build_command(spec: BinarySpec, out_dir: Path) -> tuple[list[str], dict[str, str], Path]:
    """``(argv, environment, working directory)`` of the build: shown in errors, used by tests."""
    go = go_binary()
    env = {**os.environ, "CGO_ENABLED": "0", "GO111MODULE": "on"}
    common = ["-p", BUILD_JOBS, "-trimpath", "-ldflags", spec.rendered_ldflags]
    if spec.gobuild:
        env["GOFLAGS"] = "-mod=mod"
        # One package, one binary: name it (`go build -o DIR/` would name it after the package's
        # directory, `cmd` for Argo CD); several: each is named after its package's directory.
        single = len(spec.packages) == 1 and len(spec.binaries) == 1
        output = str(out_dir / spec.binaries[0]) if single else str(out_dir) + os.sep
        argv = [go, "build", *common, "-o", output, *spec.packages]
        return argv, env, _wrapper_dir(spec, REPO_ROOT)
    env["GOFLAGS"] = ""
    env["GOBIN"] = str(out_dir)
    return [go, "install", *common, f"{spec.module}@{spec.version}"], env, out_dir


def build(spec: BinarySpec, root: Path = REPO_ROOT, progress: Progress = _stderr) -> tuple[dict[str, Path], float]:
    """Build one table's binaries into the cache, atomically; returns (paths, wall seconds)."""
    final = group_dir(spec)
    final.parent.mkdir(parents=True, exist_ok=True)
    if spec.gobuild:
        _check_wrapper_pin(spec, root)
    staging = Path(tempfile.mkdtemp(prefix=f".{spec.name}-{spec.version}.", dir=final.parent))
    argv, env, cwd = build_command(spec, staging)
    what = f"{spec.gobuild} ({', '.join(spec.binaries)})" if spec.gobuild else f"{spec.module}@{spec.version}"
    progress(f"{spec.name}: building {what} at {spec.version} (first run only; this takes a while)...")
    started = time.monotonic()
    try:
        proc = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True)
        if proc.returncode != 0:
            tail = "\n".join(proc.stderr.strip().splitlines()[-20:])
            raise ToolError(
                f"{spec.name}: `{' '.join(argv[1:3])} ... {' '.join(argv[-len(spec.packages or [1]):])}` failed "
                f"(exit {proc.returncode}) in {cwd}:\n{tail}\n"
                "Check that the Go module proxy is reachable (GOPROXY) and the versions in tools.toml and "
                f"{spec.gobuild or 'the module'} agree."
            )
        for binary in spec.binaries:
            path = staging / binary
            if not path.exists():
                built = sorted(p.name for p in staging.iterdir())
                raise ToolError(f"{spec.name}: the build produced {built}, not {binary}; check [cluster.{spec.name}]")
            got = reported_version(spec.tool_spec(binary), path)
            if not _same_version(got, spec.version):
                raise ToolError(
                    f"{spec.name}: the fresh {binary} reports version {got!r}, not {spec.version}; "
                    f"check the version ldflags of [cluster.{spec.name}] in tools.toml"
                )
        publish(staging, final, _stamp(spec, staging, root))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    seconds = time.monotonic() - started
    progress(f"{spec.name}: built {spec.version} in {seconds:.0f} s -> {final}")
    return {b: final / b for b in spec.binaries}, seconds


@dataclass
class Resolved:
    """Every binary of the harness by name, and what had to be built (name -> wall seconds)."""

    paths: dict[str, Path]
    built: dict[str, float]


def _explicit(spec: BinarySpec, binary: str) -> Path | None:
    variable = "DOX_" + re.sub(r"[^A-Z0-9]", "_", binary.upper())
    value = os.environ.get(variable)
    if not value:
        return None
    got = reported_version(spec.tool_spec(binary), Path(value))
    if not _same_version(got, spec.version):
        raise ToolError(
            f"{variable}={value}: reports version {got or 'nothing (does it run?)'}, but tools.toml pins "
            f"{spec.version}; unset the variable or point it at {spec.version}"
        )
    return Path(value)


def ensure(names: list[str] | None = None, *, build_missing: bool = True, root: Path = REPO_ROOT,
           progress: Progress = _stderr) -> Resolved:
    """The harness binaries (all tables, or ``names``), building what is missing."""
    specs = load_specs()
    unknown = [n for n in names or [] if n not in specs]
    if unknown:
        raise UsageError(f"tools.toml: no [cluster.*] table named {', '.join(unknown)} (known: {', '.join(specs)})")
    paths: dict[str, Path] = {}
    built: dict[str, float] = {}
    for name in names or list(specs):
        spec = specs[name]
        forced = {b: p for b in spec.binaries if (p := _explicit(spec, b))}
        if len(forced) == len(spec.binaries):
            paths.update(forced)
            continue
        with _lock(f"cluster-{name}"):
            found = _cached(spec, root, progress)
            if found is None:
                if not build_missing:
                    raise ToolError(f"{name} {spec.version}: not built yet; run the e2e suite once to build it")
                found, seconds = build(spec, root, progress)
                built[name] = seconds
        paths.update(found)
        paths.update(forced)
    return Resolved(paths, built)
