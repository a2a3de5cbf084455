"""The one way a pinned Go tool is built, checked and cached: for the pipeline tools and the cluster alike.

A table of ``tools.toml`` (``[tools.NAME]`` or ``[cluster.NAME]``) becomes a :class:`GoTool`, built one of two
ways:

* ``module = "..."``: ``go install module@version`` (helm, kustomize, kubeconform, kwok, ...);
* ``gobuild = "gobuild/DIR"``: a wrapper module committed in this repository, built there with ``go build``
  (Kubernetes, etcd and Argo CD replace their sibling modules in their own go.mod, which ``go install``
  refuses; the wrapper's go.mod requires the pinned version instead).

Both build with CGO off (unless the table says ``cgo = true``), ``-trimpath``, two jobs, the table's ldflags and
build ``tags`` (the release build's, e.g. gitleaks' ``gore2regex``) into a fresh staging directory under
``<cache>/tools/``; every binary is then checked, stamped and moved into ``NAME-VERSION/`` with one rename,
under a lock per table, so two clones or CI runs on one machine build once.

The version check is one function, :func:`check`, and it reads the Go build info the linker writes into every
binary (``go version -m BINARY``), not the version string the ldflags put there (which proves only the
ldflags): a ``module`` binary must be that module's main package at exactly the pinned version; a ``gobuild``
binary must be a package the table names (or the wrapper's own), built with every module the wrapper's go.mod
requires at the pinned version at exactly that version. A fresh build is also run once with its
``version_args``, which proves that it starts and that the ldflags stamped the version it reports to users.
"""

from __future__ import annotations

import contextlib
import fcntl
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
from typing import Iterator, Mapping

from .errors import ToolError, UsageError
from .paths import REPO_ROOT, cache_dir
from .progress import Progress, stderr  # noqa: F401 - stderr: the default progress, re-exported


#: Parallel compile jobs: the machines this runs on have two cores shared with others.
BUILD_JOBS = "2"
#: The stamp file of a checked cache entry; bump CHECK when :func:`check` changes meaning.
STAMP = ".checked.json"
CHECK = "buildinfo-1"


#: Go's garbage-collector target for the pinned tools the pipeline runs (helm and kustomize for a render,
#: gitleaks for a scan, kubeconform for validation; not the tool builds): a short-lived process that collects at
#: 5x its live heap instead of 2x spends less CPU. Measured on 2 cores, medians of 7: `kustomize build` of prod
#: (helm included) 0.28 s of CPU with Go's default (100) against 0.19-0.22 s; gitleaks over the sources 0.31 s
#: against 0.26 s; kubeconform over both environments' 72 files 0.136 s against 0.121 s (11 runs); peak
#: memory stays below 100 MB for each. A GOGC already in the environment is kept. No output changes: the
#: collector decides when memory is reclaimed, never what a program computes.
RUN_GOGC = "400"


def run_env(env: dict[str, str]) -> dict[str, str]:
    """``env`` with :data:`RUN_GOGC` as GOGC unless the user's environment sets one."""
    return {**env, "GOGC": os.environ.get("GOGC") or RUN_GOGC}


@dataclass(frozen=True)
class GoTool:
    """One pinned table of tools.toml: how to build a group of binaries of one version, and how to ask them."""

    section: str  # "tools" or "cluster"
    name: str
    version: str
    binaries: tuple[str, ...]
    ldflags: tuple[str, ...]
    version_args: tuple[str, ...]
    version_regex: str
    module: str | None = None
    gobuild: str | None = None
    packages: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()  # Go build tags, as the tool's release build sets them
    cgo: bool = False  # built with CGO_ENABLED=1 (links C libraries of the system; see ``optional``)
    #: An optional build (``optional = true``): built only by :func:`doxops.toolchain.resolve_all` (``./dox tools``,
    #: ``./dox test``, ``./dox bench``) where ``needs_headers`` compile, and used where it was built; nothing
    #: depends on it. ``needs_headers``: C/C++ headers its cgo code includes (checked with the C++ compiler).
    optional: bool = False
    needs_headers: tuple[str, ...] = ()
    version_args_of: Mapping[str, list] = field(default_factory=dict, compare=False, hash=False)

    @property
    def where(self) -> str:
        return f"tools.toml [{self.section}.{self.name}]"

    @property
    def rendered_ldflags(self) -> str:
        return " ".join(flag.replace("{version}", self.version) for flag in self.ldflags)

    @property
    def lock_name(self) -> str:
        return self.name if self.section == "tools" else f"{self.section}-{self.name}"

    def args_of(self, binary: str) -> tuple[str, ...]:
        return tuple(self.version_args_of.get(binary, self.version_args))


def from_table(section: str, name: str, table: dict, source: Path) -> GoTool:
    """A :class:`GoTool` from one table; a missing key is a usage error naming the file and table.

    A ``[tools.NAME]`` table builds one binary, ``NAME``; any other table lists its ``binaries``.
    """
    required = ("version", "version_args", "version_regex") + (() if section == "tools" else ("binaries",))
    missing = [k for k in required if k not in table]
    if bool(table.get("gobuild")) == bool(table.get("module")):
        missing.append("exactly one of gobuild and module")
    if table.get("gobuild") and not table.get("packages"):
        missing.append("packages")
    if missing:
        raise UsageError(f"{source}: [{section}.{name}] lacks {', '.join(missing)}")
    for key in ("cgo", "optional"):
        if not isinstance(table.get(key, False), bool):
            raise UsageError(f"{source}: [{section}.{name}] {key} = {table[key]!r}: write true or false")
    return GoTool(
        section=section, name=name, version=table["version"],
        binaries=tuple(table.get("binaries", (name,))), ldflags=tuple(table.get("ldflags", ())),
        version_args=tuple(table["version_args"]), version_regex=table["version_regex"],
        module=table.get("module"), gobuild=table.get("gobuild"), packages=tuple(table.get("packages", ())),
        tags=tuple(table.get("tags", ())), cgo=table.get("cgo", False),
        optional=table.get("optional", False), needs_headers=tuple(table.get("needs_headers", ())),
        version_args_of=dict(table.get("version_args_of", {})),
    )


def tool_dir(spec: GoTool) -> Path:
    return cache_dir() / "tools" / f"{spec.name}-{spec.version}"


def go_binary() -> str:
    """The Go toolchain, or a clear error that says what to install."""
    go = shutil.which("go")
    if not go:
        raise ToolError(
            "go: not found on PATH. The pinned tools are built from Go modules; install Go 1.26 or newer "
            "(Debian: `apt-get install golang`, or your platform's Go package) and run again."
        )
    return go


@contextlib.contextmanager
def lock(name: str) -> Iterator[None]:
    """Serialise builds of one thing across processes and clones."""
    lock_dir = cache_dir() / "locks"
    lock_dir.mkdir(parents=True, exist_ok=True)
    with open(lock_dir / f"{name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# ------------------------------------------------------------------ the version check


@dataclass(frozen=True)
class BuildInfo:
    """What ``go version -m`` reads from a binary: main package and module, dependencies, build settings."""

    path: str
    main: tuple[str, str]
    deps: Mapping[str, str]
    settings: Mapping[str, str]


def build_info(binary: Path) -> BuildInfo | None:
    """The Go build info of ``binary``, or None when it has none (not a Go module build, or not there)."""
    proc = subprocess.run([go_binary(), "version", "-m", str(binary)], capture_output=True, text=True, cwd="/",
                          env={**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": ""})
    if proc.returncode != 0:
        return None
    path, main, deps, settings, last = "", ("", ""), {}, {}, None
    for line in proc.stdout.splitlines()[1:]:
        parts = line.strip().split("\t")
        kind, rest = parts[0], parts[1:]
        if kind == "path" and rest:
            path = rest[0]
        elif kind == "mod" and len(rest) >= 2:
            main = (rest[0], rest[1])
        elif kind == "dep" and len(rest) >= 2:
            deps[rest[0]] = rest[1]
            last = rest[0]
        elif kind == "=>" and last and len(rest) >= 2:
            deps[last] = rest[1]  # a replaced dependency: the replacement's version is what was built
        elif kind == "build" and rest:
            key, _, value = rest[0].partition("=")
            settings[key] = value
    return BuildInfo(path, main, deps, settings) if path else None


def go_mod(spec: GoTool, root: Path = REPO_ROOT) -> Path:
    path = (root / spec.gobuild / "go.mod").resolve()
    if not path.exists():
        raise UsageError(f"{spec.where}: {spec.gobuild}/go.mod does not exist")
    return path


def pinned_modules(spec: GoTool, root: Path = REPO_ROOT) -> tuple[str, list[str]]:
    """A wrapper's module path and the modules its go.mod requires at the pinned version (at least one)."""
    text = go_mod(spec, root).read_text()
    module = re.search(r"^module\s+(\S+)", text, re.MULTILINE)
    pinned = re.findall(rf"^\s*(?:require\s+)?(\S+)\s+{re.escape(spec.version)}\s*(?://.*)?$", text, re.MULTILINE)
    if not module or not pinned:
        raise UsageError(f"{spec.gobuild}/go.mod requires no module at {spec.version}, but {spec.where} pins that "
                         "version; change both together")
    return module.group(1), pinned


def check(spec: GoTool, binary: Path, root: Path = REPO_ROOT) -> str | None:
    """None when ``binary`` is the pinned build of ``spec``, else what it is instead (for a message)."""
    info = build_info(binary)
    if info is None:
        return "has no Go build info (it is not a Go module build, or it is not there)"
    if info.settings.get("-tags", "") != ",".join(spec.tags):  # other tags, or tags where none are pinned
        return (f"was built with tags {info.settings.get('-tags') or '(none)'!r}, "
                f"not {','.join(spec.tags) or '(none)'!r}")
    if spec.cgo and info.settings.get("CGO_ENABLED") != "1":
        return "was built without cgo (CGO_ENABLED=1 is pinned)"
    if spec.module:
        module, version = info.main
        if not (spec.module == module or spec.module.startswith(module + "/")) or info.path != spec.module:
            return f"is {info.path} of {module} {version}, not {spec.module}"
        if version != spec.version:
            return f"is {spec.module} at {version}, not {spec.version}"
        return None
    wrapper, pinned = pinned_modules(spec, root)
    # The main package is one the table names (then "mod" is the module holding it, e.g. k8s.io/kubernetes
    # v1.36.1), or the wrapper's own (packages = ["."]: "mod" is the wrapper, at "(devel)").
    if info.path not in spec.packages and not ("." in spec.packages and info.main[0] == wrapper == info.path):
        return f"is {info.path} of {info.main[0]}, not a package {spec.gobuild} builds ({', '.join(spec.packages)})"
    modules = {**info.deps, info.main[0]: info.main[1]}
    built = {m: modules[m] for m in pinned if m in modules}
    if not built:
        return f"was built without {', '.join(pinned)}, which {spec.gobuild}/go.mod pins at {spec.version}"
    wrong = {m: v for m, v in built.items() if v != spec.version}
    if wrong:
        return f"was built with {', '.join(f'{m} {v}' for m, v in wrong.items())}, not {spec.version}"
    return None


def same_version(got: str | None, want: str) -> bool:
    """Versions as the binaries print them: ``3.6.16`` and ``v3.6.16`` are one version."""
    return got is not None and got.lstrip("v") == want.lstrip("v")


def reported_version(spec: GoTool, binary: Path, name: str | None = None) -> str | None:
    """What ``binary`` prints as its version through its ``version_args`` (None: it does not run or answer)."""
    try:
        proc = subprocess.run([str(binary), *spec.args_of(name or binary.name)], capture_output=True, text=True,
                              timeout=30, env={**os.environ, "HOME": os.environ.get("HOME", "/tmp")})
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0:
        return None
    match = re.search(spec.version_regex, proc.stdout.strip(), re.MULTILINE)
    return match.group(1) if match else None


# ------------------------------------------------------------------ the cache


def wrapper_digest(spec: GoTool, root: Path = REPO_ROOT) -> str:
    """Hash of a wrapper module's files (empty for ``go install`` tables): editing the wrapper rebuilds."""
    if not spec.gobuild:
        return ""
    digest = hashlib.sha256()
    for path in sorted(go_mod(spec, root).parent.iterdir()):
        if path.is_file() and (path.name in ("go.mod", "go.sum") or path.suffix == ".go"):
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _stamp(spec: GoTool, directory: Path, root: Path) -> dict:
    files = {}
    for binary in spec.binaries:
        st = (directory / binary).stat()
        files[binary] = [st.st_size, st.st_mtime_ns]
    # the tags (and cgo, for a table that asks for it): a build made otherwise is checked again, and rebuilt
    stamp = {"check": CHECK, "version": spec.version, "wrapper": wrapper_digest(spec, root), "files": files,
             "tags": list(spec.tags)}
    if spec.cgo:
        stamp["cgo"] = True
    return stamp


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_stamp(directory: Path, stamp: dict) -> None:
    """Atomically; a cache that cannot be written (read-only) is only checked again next time."""
    try:
        tmp = directory / f"{STAMP}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(stamp))
        tmp.replace(directory / STAMP)
    except OSError:
        pass


def cached(spec: GoTool, root: Path = REPO_ROOT, progress: Progress = stderr) -> dict[str, Path] | None:
    """The cached binaries if present and the pinned build, else None.

    An entry that fails the check is left in place: the next build replaces it in one rename, so a wrong
    verdict or a failed rebuild never leaves the shared cache without it.
    """
    directory = tool_dir(spec)
    paths = {b: directory / b for b in spec.binaries}
    if not all(p.exists() for p in paths.values()):
        return None
    stamp = _stamp(spec, directory, root)
    if _read_json(directory / STAMP) == stamp:
        return paths  # checked before and unchanged since: no process start
    earlier = _read_json(directory / STAMP) or _read_json(directory / ".verified.json")
    if earlier.get("wrapper", stamp["wrapper"]) != stamp["wrapper"]:
        progress(f"{spec.name}: {spec.gobuild} changed since the cached build; rebuilding")
    else:
        if not shutil.which("go"):
            raise ToolError(f"{spec.name}: cached binary in {directory} is broken or changed since it was checked, "
                            "and Go is needed to check or rebuild it: go: not found on PATH; install Go 1.26 or "
                            "newer (Debian: `apt-get install golang`) and run again.")
        problems = {b: p for b in spec.binaries if (p := check(spec, paths[b], root))}
        if not problems:
            _write_stamp(directory, stamp)
            return paths
        binary, problem = next(iter(problems.items()))
        progress(f"{spec.name}: cached binary {paths[binary]} is broken or not {spec.version} ({problem}); "
                 "it is rebuilt and replaced")
    return None


def missing_headers(spec: GoTool) -> list[str]:
    """The ``needs_headers`` of ``spec`` that this machine's C++ compiler (``go env CXX``, as cgo uses it) cannot
    include, all of them when there is no compiler: asked of the compiler itself (``CXX -E``), so its own
    include path decides. Empty when the table needs none."""
    if not spec.needs_headers:
        return []
    try:
        cxx = subprocess.run([go_binary(), "env", "CXX"], capture_output=True, text=True, timeout=60,
                             stdin=subprocess.DEVNULL).stdout.split()
    except (OSError, subprocess.TimeoutExpired, ToolError):
        cxx = []
    if not cxx or not shutil.which(cxx[0]):
        return list(spec.needs_headers)
    missing = []
    for header in spec.needs_headers:
        try:
            ok = subprocess.run([*cxx, "-E", "-x", "c++", "-", "-o", os.devnull], input=f"#include <{header}>\n",
                                capture_output=True, text=True, timeout=60).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            ok = False
        if not ok:
            missing.append(header)
    return missing


def build_command(spec: GoTool, out_dir: Path, root: Path = REPO_ROOT) -> tuple[list[str], dict[str, str], Path]:
    """``(argv, environment, working directory)`` of the build: shown in errors, used by tests."""
    go = go_binary()
    env = {**os.environ, "CGO_ENABLED": "1" if spec.cgo else "0", "GO111MODULE": "on"}
    common = ["-p", BUILD_JOBS, "-trimpath", "-ldflags", spec.rendered_ldflags]
    if spec.tags:
        common += ["-tags", ",".join(spec.tags)]
    if spec.gobuild:
        env["GOFLAGS"] = "-mod=mod"
        # One package, one binary: name it (`go build -o DIR/` would name it after the package's
        # directory, `cmd` for Argo CD); several: each is named after its package's directory.
        single = len(spec.packages) == 1 and len(spec.binaries) == 1
        output = str(out_dir / spec.binaries[0]) if single else str(out_dir) + os.sep
        return [go, "build", *common, "-o", output, *spec.packages], env, go_mod(spec, root).parent
    env["GOFLAGS"] = ""
    env["GOBIN"] = str(out_dir)
    return [go, "install", *common, f"{spec.module}@{spec.version}"], env, out_dir


def publish(staging: Path, final: Path, stamp: dict) -> None:
    """Stamp a checked build and move it into its cache place in one rename (called under the lock)."""
    (staging / STAMP).write_text(json.dumps(stamp))
    if final.exists():
        shutil.rmtree(final)
    os.rename(staging, final)


def build(spec: GoTool, root: Path = REPO_ROOT, progress: Progress = stderr) -> tuple[dict[str, Path], float]:
    """Build one table's binaries into the cache, check them, publish atomically; returns (paths, seconds)."""
    final = tool_dir(spec)
    final.parent.mkdir(parents=True, exist_ok=True)
    if spec.gobuild:
        pinned_modules(spec, root)  # the wrapper pins what tools.toml says, before minutes of compiling
    staging = Path(tempfile.mkdtemp(prefix=f".{spec.name}-{spec.version}.", dir=final.parent))
    what = f"{spec.gobuild} ({', '.join(spec.binaries)})" if spec.gobuild else f"{spec.module}@{spec.version}"
    progress(f"{spec.name}: building {what} at {spec.version} with go {'build' if spec.gobuild else 'install'} "
             "(first run only)...")
    started = time.monotonic()
    try:
        argv, env, cwd = build_command(spec, staging, root)
        proc = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            tail = "\n".join(proc.stderr.strip().splitlines()[-20:])
            raise ToolError(
                f"{spec.name}: `go {argv[1]} ... {' '.join(argv[-len(spec.packages or [1]):])}` failed "
                f"(exit {proc.returncode}) in {cwd}:\n{tail}\n"
                f"Check that the Go module proxy is reachable (GOPROXY) and that {spec.where} " + (
                    f"and {spec.gobuild}/go.mod agree." if spec.gobuild else "names a module and version that exist.")
            )
        for binary in spec.binaries:
            path = staging / binary
            if not path.exists():
                built = sorted(p.name for p in staging.iterdir())
                raise ToolError(f"{spec.name}: the build produced {built}, not {binary}; check {spec.where}")
            problem = check(spec, path, root)
            if problem:
                raise ToolError(f"{spec.name}: the fresh {binary} {problem}; check {spec.where}")
            got = reported_version(spec, path, binary)
            if not same_version(got, spec.version):
                raise ToolError(f"{spec.name}: the fresh {binary} reports version {got!r}, not {spec.version}; "
                                f"check the version ldflags of {spec.where}")
        publish(staging, final, _stamp(spec, staging, root))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    seconds = time.monotonic() - started
    progress(f"{spec.name}: built {spec.version} in {seconds:.0f} s -> {final}")
    return {b: final / b for b in spec.binaries}, seconds


def ensure(spec: GoTool, *, build_missing: bool = True, root: Path = REPO_ROOT, progress: Progress = stderr,
           hint: str = "run `./dox tools` to build it") -> tuple[dict[str, Path], float | None]:
    """The cached binaries of ``spec``, built first if missing; (paths, build seconds or None)."""
    with lock(spec.lock_name):
        found = cached(spec, root, progress)
        if found is not None:
            return found, None
        if not build_missing:
            state = "not the pinned build" if tool_dir(spec).exists() else "not built yet"
            raise ToolError(f"{spec.name} {spec.version}: {state}; {hint}")
        return build(spec, root, progress)


def explicit(spec: GoTool, binary: str, root: Path = REPO_ROOT) -> Path | None:
    """``$DOX_<BINARY>`` (``DOX_HELM``, ``DOX_KUBE_APISERVER``): a forced binary, which must pass :func:`check`."""
    variable = "DOX_" + re.sub(r"[^A-Z0-9]", "_", binary.upper())
    value = os.environ.get(variable)
    if not value:
        return None
    problem = check(spec, Path(value), root)
    if problem:
        raise ToolError(f"{variable}={value}: {problem}; {spec.where} pins {spec.module or spec.gobuild} "
                        f"{spec.version}. Unset the variable or point it at a build of {spec.version}.")
    return Path(value)
