"""Pinned tools: read ``tools.toml``, find or build each binary, verify its version.

Resolution order for a tool ``NAME`` (helm, kustomize, kubeconform, ...):

1. ``$DOX_<NAME>`` (e.g. ``DOX_HELM=/opt/helm``): an explicit binary; it must
   report exactly the pinned version, otherwise the run stops (exit 3).
2. ``NAME`` on ``PATH``, if it reports exactly the pinned version. A binary of
   any other version is refused (a note on stderr) and not used.
3. The per-user cache ``<cache>/tools/NAME-VERSION/NAME``, built on first use
   with ``go install MODULE@VERSION`` and the release ldflags. A cached binary
   that no longer runs or reports another version is rebuilt.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from .errors import ToolError, UsageError
from .paths import REPO_ROOT, cache_dir

TOOLS_FILE = REPO_ROOT / "tools.toml"

Progress = Callable[[str], None]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class ToolSpec:
    """One pinned tool as written in tools.toml."""

    name: str
    module: str
    version: str
    ldflags: tuple[str, ...]
    version_args: tuple[str, ...]
    version_regex: str

    @property
    def rendered_ldflags(self) -> str:
        return " ".join(flag.replace("{version}", self.version) for flag in self.ldflags)


@dataclass(frozen=True)
class Tool:
    """A resolved binary: where it is and where it came from."""

    spec: ToolSpec
    path: Path
    origin: str  # "env", "PATH", "cache" or "built"
    build_seconds: float | None = field(default=None, compare=False)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def version(self) -> str:
        return self.spec.version


def load_config(path: Path = TOOLS_FILE) -> dict:
    """Parse tools.toml; a syntax error is a usage error naming the file."""
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise UsageError(f"{path}: not found; the pinned tools are declared there") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: {exc}; fix the TOML syntax") from None


def load_specs(path: Path = TOOLS_FILE) -> dict[str, ToolSpec]:
    """Every ``[tools.NAME]`` table of tools.toml, checked for required keys."""
    specs: dict[str, ToolSpec] = {}
    for name, table in load_config(path).get("tools", {}).items():
        missing = [k for k in ("module", "version", "version_args", "version_regex") if k not in table]
        if missing:
            raise UsageError(f"{path}: [tools.{name}] lacks {', '.join(missing)}")
        specs[name] = ToolSpec(
            name=name,
            module=table["module"],
            version=table["version"],
            ldflags=tuple(table.get("ldflags", ())),
            version_args=tuple(table["version_args"]),
            version_regex=table["version_regex"],
        )
    return specs


def tool_dir(spec: ToolSpec) -> Path:
    return cache_dir() / "tools" / f"{spec.name}-{spec.version}"


def reported_version(spec: ToolSpec, binary: Path) -> str | None:
    """What ``binary`` says its version is, or None if it does not run or answer."""
    try:
        proc = subprocess.run(
            [str(binary), *spec.version_args],
            capture_output=True,
            text=True,
            timeout=30,
            env={**os.environ, "HOME": os.environ.get("HOME", "/tmp")},
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0:
        return None
    match = re.search(spec.version_regex, proc.stdout.strip(), re.MULTILINE)
    return match.group(1) if match else None


def _stamp_of(binary: Path) -> dict:
    st = binary.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _cached(spec: ToolSpec, progress: Progress) -> Path | None:
    """The cached binary if present and sound; a broken one is removed."""
    directory = tool_dir(spec)
    binary = directory / spec.name
    stamp_file = directory / ".verified.json"
    if not binary.exists():
        return None
    try:
        stamp = json.loads(stamp_file.read_text())
        if stamp == {**_stamp_of(binary), "version": spec.version}:
            return binary  # verified before and unchanged since: no process start
    except (OSError, ValueError):
        pass
    if reported_version(spec, binary) == spec.version:
        stamp_file.write_text(json.dumps({**_stamp_of(binary), "version": spec.version}))
        return binary
    progress(f"{spec.name}: cached binary {binary} is broken or not {spec.version}; rebuilding it")
    shutil.rmtree(directory, ignore_errors=True)
    return None


@contextlib.contextmanager
def _lock(name: str) -> Iterator[None]:
    """Serialise builds of one tool across processes and clones."""
    lock_dir = cache_dir() / "locks"
    lock_dir.mkdir(parents=True, exist_ok=True)
    with open(lock_dir / f"{name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def go_binary() -> str:
    """The Go toolchain, or a clear error that says what to install."""
    go = shutil.which("go")
    if not go:
        raise ToolError(
            "go: not found on PATH. The pinned tools are built from Go modules; install Go 1.26 or newer "
            "(Debian: `apt-get install golang`, or your platform's Go package) and run again."
        )
    return go


def publish(staging: Path, final: Path, stamp: dict) -> None:
    """Stamp a verified build and move it into its cache place in one rename (called under the tool's lock)."""
    (staging / ".verified.json").write_text(json.dumps(stamp))
    if final.exists():
        shutil.rmtree(final)
    os.rename(staging, final)


def build(spec: ToolSpec, progress: Progress = _stderr) -> tuple[Path, float]:
    """``go install MODULE@VERSION`` into the cache, atomically; returns (path, seconds)."""
    go = go_binary()
    final = tool_dir(spec)
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{spec.name}-{spec.version}.", dir=final.parent))
    env = {
        **os.environ,
        "GOBIN": str(staging),
        "CGO_ENABLED": "0",
        "GOFLAGS": "",
        "GO111MODULE": "on",
    }
    command = [go, "install", "-trimpath", "-ldflags", spec.rendered_ldflags, f"{spec.module}@{spec.version}"]
    progress(f"{spec.name}: building {spec.module}@{spec.version} with go install (first run only)...")
    started = time.monotonic()
    try:
        proc = subprocess.run(command, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
            raise ToolError(
                f"{spec.name}: `go install {spec.module}@{spec.version}` failed (exit {proc.returncode}):\n{tail}\n"
                "Check that the Go module proxy is reachable (GOPROXY) and that the version in tools.toml exists."
            )
        binary = staging / spec.name
        if not binary.exists():
            built = [p.name for p in staging.iterdir()]
            raise ToolError(f"{spec.name}: go install produced {built}, not {spec.name}; check the module path in tools.toml")
        got = reported_version(spec, binary)
        if got != spec.version:
            raise ToolError(
                f"{spec.name}: the fresh build reports version {got!r}, not {spec.version}; "
                "check the version ldflags in tools.toml"
            )
        publish(staging, final, {**_stamp_of(binary), "version": spec.version})
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    seconds = time.monotonic() - started
    progress(f"{spec.name}: built {spec.version} in {seconds:.0f} s -> {final / spec.name}")
    return final / spec.name, seconds


def resolve(name: str, *, build_missing: bool = True, progress: Progress = _stderr,
            specs: dict[str, ToolSpec] | None = None) -> Tool:
    """Find (or build) the pinned ``name``; see the module docstring for the order."""
    specs = specs if specs is not None else load_specs()
    if name not in specs:
        raise UsageError(f"{TOOLS_FILE.name}: no tool named {name!r} (known: {', '.join(sorted(specs))})")
    spec = specs[name]

    explicit = os.environ.get(f"DOX_{name.upper()}")
    if explicit:
        path = Path(explicit)
        got = reported_version(spec, path)
        if got != spec.version:
            raise ToolError(
                f"DOX_{name.upper()}={explicit}: reports version {got or 'nothing (does it run?)'}, "
                f"but tools.toml pins {spec.version}; unset the variable or point it at {spec.version}"
            )
        return Tool(spec, path, "env")

    on_path = shutil.which(name)
    if on_path and not Path(on_path).resolve().is_relative_to(cache_dir()):
        got = reported_version(spec, Path(on_path))
        if got == spec.version:
            return Tool(spec, Path(on_path), "PATH")
        progress(f"{name}: refusing {on_path} (reports {got or 'no version'}; pinned {spec.version}); using the cache")

    with _lock(name):
        cached = _cached(spec, progress)
        if cached:
            return Tool(spec, cached, "cache")
        if not build_missing:
            raise ToolError(f"{name} {spec.version}: not built yet; run `./dox tools` to build it")
        path, seconds = build(spec, progress)
        return Tool(spec, path, "built", seconds)


def ensure_tool(name: str) -> Path:
    """Path of the pinned ``name``, building it if needed (for tests and scripts)."""
    return resolve(name).path


def resolve_all(*, build_missing: bool = True, progress: Progress = _stderr) -> list[Tool]:
    specs = load_specs()
    return [resolve(n, build_missing=build_missing, progress=progress, specs=specs) for n in specs]
