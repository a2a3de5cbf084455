"""``./dox render``: every environment into committed plain YAML under ``rendered/``.

For each environment the pipeline runs exactly what anyone can run by hand::

    kustomize build --enable-helm --helm-command ~/.cache/dox-asdlc/tools/helm-v4.3.1/helm \\
        --load-restrictor LoadRestrictionsNone environments/<env>

(and the same for ``environments/<env>/argocd`` when it exists), then:

* splits the stream into one file per resource, ``<kind>-<name>.yaml``
  (``<kind>-<namespace>-<name>.yaml`` when two share a kind and name), under
  ``rendered/<env>/workloads/`` and ``rendered/<env>/argocd/``;
* moves kustomize's build metadata (``config.kubernetes.io/origin`` and
  ``alpha.config.kubernetes.io/transformations``, requested by the
  kustomizations' ``buildMetadata``) out of the object into a header comment,
  so each file says which chart template or overlay file it came from while
  the object is exactly what the cluster gets;
* writes the tree next to the old one and swaps the two directories with one
  atomic ``renameat2(RENAME_EXCHANGE)``: after a crash at any point an
  environment's directory is entirely the old output or entirely the new.

The load restrictor is relaxed because the chart and the shared values live
outside each environment's directory; the pipeline itself refuses any path
(and any remote URL) that leaves the repository before kustomize runs.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

from . import toolchain, yamlio
from .environments import KUSTOMIZATION, Environment
from .errors import Findings, ToolError, UsageError
from .paths import REPO_ROOT, relative

RENDERED = "rendered"
STATE_DIR = ".dox"  # per-clone state (render cache, lock); git-ignored
ORIGIN_ANNOTATIONS = ("config.kubernetes.io/origin", "alpha.config.kubernetes.io/transformations")
TEMPLATE_ANNOTATION = "dox-asdlc.io/template"
HEADER = "# Rendered by `./dox render` from {source}. Do not edit: change the source and re-render.\n"

Progress = Callable[[str], None]


def _checkpoint(name: str) -> None:
    """Fault injection for the crash tests: signal this process at the named point.

    Set ``DOX_FAULT_POINT`` to one of: ``after-build``, ``mid-write``, ``before-swap``,
    ``after-swap`` (render), ``diff-worktree`` (diff --rerender), and ``DOX_FAULT_SIGNAL`` to
    ``KILL`` (default), ``TERM`` or ``INT``. Unset (always, outside tests) it costs one lookup.
    """
    if os.environ.get("DOX_FAULT_POINT") == name:
        signum = getattr(signal, "SIG" + os.environ.get("DOX_FAULT_SIGNAL", "KILL"))
        os.kill(os.getpid(), signum)
        if signum != signal.SIGKILL:
            time.sleep(2)  # let the handler run in the main thread, as a real signal would


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- containment


_URL = re.compile(r"^[a-z][a-z0-9+.-]*://|^git@|^github\.com/|^(?:[\w.-]+\.)+[a-z]{2,}/", re.IGNORECASE)


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except ValueError:
        return False


def _typed(kfile: Path, data: dict, key: str, kind: type):
    value = data.get(key)
    if value is None:
        return kind()
    if not isinstance(value, kind):
        shape = "a list" if kind is list else "a mapping"
        raise UsageError(f"{relative(kfile)}: {key} must be {shape}, not {type(value).__name__}; see the kustomize "
                         "documentation of this field")
    return value


def kustomization_paths(directory: Path) -> Iterator[tuple[Path, str, str]]:
    """Every local path a kustomization refers to: ``(kustomization file, field, value)``."""
    kfile = directory / KUSTOMIZATION
    data = yamlio.load_one(kfile) or {}
    if not isinstance(data, dict):
        raise UsageError(f"{relative(kfile)}:1: a kustomization must be a mapping")
    for key in ("resources", "components", "bases", "crds", "patchesStrategicMerge", "generators", "transformers",
                "validators", "configurations"):
        for value in _typed(kfile, data, key, list):
            if isinstance(value, str) and not value.lstrip().startswith(("apiVersion:", "kind:")):
                yield kfile, key, value
    for key in ("patches", "patchesJson6902", "replacements"):
        for item in _typed(kfile, data, key, list):
            if isinstance(item, dict) and isinstance(item.get("path"), str):
                yield kfile, f"{key}.path", item["path"]
    openapi = _typed(kfile, data, "openapi", dict)
    if isinstance(openapi.get("path"), str):
        yield kfile, "openapi.path", openapi["path"]
    for key in ("configMapGenerator", "secretGenerator"):
        for gen in _typed(kfile, data, key, list):
            if not isinstance(gen, dict):
                continue
            for item in (gen.get("files") or []) + (gen.get("envs") or []) + ([gen["env"]] if gen.get("env") else []):
                yield kfile, key, str(item).split("=", 1)[-1]
    globals_ = _typed(kfile, data, "helmGlobals", dict)
    if globals_.get("chartHome"):
        yield kfile, "helmGlobals.chartHome", str(globals_["chartHome"])
    for chart in _typed(kfile, data, "helmCharts", list):
        if not isinstance(chart, dict):
            raise UsageError(f"{relative(kfile)}: every helmCharts entry must be a mapping (name, valuesFile, ...)")
        if chart.get("repo"):
            yield kfile, "helmCharts.repo", str(chart["repo"])
        if chart.get("valuesFile"):
            yield kfile, "helmCharts.valuesFile", str(chart["valuesFile"])
        for value in chart.get("additionalValuesFiles") or []:
            yield kfile, "helmCharts.additionalValuesFiles", str(value)


def _files_under(path: Path, root: Path, kfile: Path, key: str, value: str) -> Iterator[Path]:
    """``path`` or every file below it; any file that resolves outside ``root`` (a symlink) is refused."""
    candidates = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file() or p.is_symlink()]
    for candidate in candidates:
        if not _inside(candidate, root):
            raise UsageError(
                f"{relative(kfile, root)}: {key} {value!r} reaches {relative(candidate, root)}, which resolves to "
                f"{candidate.resolve()}, outside the repository; only files inside the repository may be loaded"
            )
        yield candidate


def check_containment(directory: Path, root: Path = REPO_ROOT, _seen: set[Path] | None = None) -> set[Path]:
    """Refuse remote sources and paths that leave ``root``; return every input file reached, recursively.

    Every referenced file, and every file below a referenced directory (the chart home included), must
    resolve inside the repository: a symlink pointing out is refused like a ``../..`` path.
    """
    seen = _seen if _seen is not None else set()
    directory = directory.resolve()
    files: set[Path] = set()
    if directory in seen:
        return files
    seen.add(directory)
    files.add(directory / KUSTOMIZATION)
    for kfile, key, value in kustomization_paths(directory):
        if _URL.match(value):
            raise UsageError(
                f"{relative(kfile, root)}: {key} {value!r} is a remote source; nothing outside the repository may "
                "be loaded (vendor it into the repository instead)"
            )
        target = directory / value
        if not _inside(target, root):
            raise UsageError(
                f"{relative(kfile, root)}: {key} {value!r} resolves to {target.resolve()}, outside the repository; "
                "only paths inside the repository may be loaded"
            )
        if key in ("resources", "components", "bases") and target.is_dir():
            if not (target / KUSTOMIZATION).exists():
                raise UsageError(f"{relative(kfile, root)}: {key} {value!r} is a directory without a {KUSTOMIZATION}")
            files |= check_containment(target, root, seen)
        elif target.exists():
            files.update(_files_under(target, root, kfile, key, value))
    return files


def input_files(env: Environment, root: Path = REPO_ROOT) -> set[Path]:
    """Every file an environment's render reads (its kustomizations, values, chart, patches...)."""
    files: set[Path] = set()
    for _, directory in targets(env):
        files |= check_containment(directory, root)
    return files


# --------------------------------------------------------------------------- running kustomize


def tool_env(home: Path) -> dict[str, str]:
    """A fixed environment for the tools: no user Helm config, UTC, C.UTF-8."""
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "SYSTEMROOT", "TMPDIR")}
    return {
        **keep,
        "HOME": str(home),
        "TZ": "UTC",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "HELM_CACHE_HOME": str(home / "helm-cache"),
        "HELM_CONFIG_HOME": str(home / "helm-config"),
        "HELM_DATA_HOME": str(home / "helm-data"),
        "KUBECONFIG": str(home / "no-kubeconfig"),
    }


def kustomize_command(kustomize: Path, helm: Path, directory: Path) -> list[str]:
    """The exact command, shown in the README and used by the benchmark's bare run."""
    return [
        str(kustomize), "build", "--enable-helm", "--helm-command", str(helm),
        "--load-restrictor", "LoadRestrictionsNone", str(directory),
    ]


_SCHEMA_HEAD = "values don't meet the specifications of the schema"
_SCHEMA_AT = re.compile(r"^- at '(?P<pointer>[^']*)': (?P<message>.*)$")
_EXTRA_KEYS = re.compile(r"additional propert(?:y|ies) ((?:'[^']+'(?:, )?)+) not allowed")


def values_files(directory: Path) -> list[Path]:
    """The values files a kustomization hands to Helm, in the order Helm merges them."""
    data = yamlio.load_one(directory / KUSTOMIZATION) or {}
    out: list[Path] = []
    for chart in data.get("helmCharts") or []:
        if chart.get("valuesFile"):
            out.append((directory / chart["valuesFile"]).resolve())
        out.extend((directory / f).resolve() for f in chart.get("additionalValuesFiles") or [])
    return out


def _chart_aliases(root: Path) -> dict[str, str]:
    """Subchart name or alias as Helm prints it -> the umbrella's value key."""
    chart = root / "helm" / "dox-asdlc" / "Chart.yaml"
    try:
        deps = (yamlio.load_one(chart) or {}).get("dependencies") or []
    except UsageError:
        return {}
    return {d.get("alias") or d.get("name"): d.get("alias") or d.get("name") for d in deps if isinstance(d, dict)}


def _locate_value(files: list[Path], keys: list[str]) -> tuple[Path, int, int] | None:
    """The last values file (Helm's winner) that sets ``keys``, with line and column."""
    from ruamel.yaml import YAML  # noqa: PLC0415 - only on this error path

    for path in reversed(files):
        try:
            node = YAML(typ="rt").load(path.read_text(encoding="utf-8"))
        except Exception:  # noqa: BLE001 - a file that does not parse was reported by the preflight
            continue
        line = col = None
        for key in keys:
            if not isinstance(node, dict) or key not in node:
                line = None
                break
            line, col = node.lc.key(key)
            node = node[key]
        if line is not None:
            return path, line + 1, col + 1
    return None


def schema_failure(stderr: str, directory: Path, root: Path) -> str | None:
    """Helm's values-schema errors as ``file:line:col: key: problem`` lines, or None if not one."""
    if _SCHEMA_HEAD not in stderr:
        return None
    aliases = _chart_aliases(root)
    files = values_files(directory)
    lines, chart = [], None
    for raw in stderr.split(_SCHEMA_HEAD, 1)[1].splitlines()[1:]:
        text = raw.strip()
        if text.startswith(": unable to run") or text.startswith("unable to run"):
            break
        if text.endswith(":") and not text.startswith("-"):
            chart = text[:-1]
            continue
        match = _SCHEMA_AT.match(text)
        if not match:
            continue
        prefix = [aliases[chart]] if chart in aliases else []
        pointer = [p for p in match["pointer"].split("/") if p]
        extra = _EXTRA_KEYS.search(match["message"])
        names = re.findall(r"'([^']+)'", extra.group(1)) if extra else [None]
        for name in names:
            keys = prefix + pointer + ([name] if name else [])
            where = _locate_value(files, keys)
            shown = ".".join(keys) or "(values)"
            at = f"{relative(where[0], root)}:{where[1]}:{where[2]}" if where else relative(directory / KUSTOMIZATION, root)
            lines.append(f"{at}: {shown}: {match['message']}")
    if not lines:
        return None
    return (f"{relative(directory, root)}: the chart's values schema rejects these values:\n  " + "\n  ".join(lines)
            + "\nfix the key or its type; the chart's values.yaml files document every key")


def _explain_failure(directory: Path, stderr: str, root: Path = REPO_ROOT) -> str:
    """kustomize's message made relative to the repository, without the command-line noise."""
    schema = schema_failure(stderr, directory, root)
    if schema:
        return schema
    text = stderr.strip().replace(str(root) + "/", "")
    text = re.sub(r": unable to run: '.*?' with env=\[.*?\] \(is '.*?' installed\?\)", "", text, flags=re.S)
    text = re.sub(r"^(Error: )+", "", text)
    lines = [line for line in text.splitlines() if line.strip()]
    message = "\n  ".join(lines[-12:]) or "(no message)"
    return f"{relative(directory, root)}: kustomize build failed:\n  {message}"


def preflight(directory: Path, root: Path = REPO_ROOT) -> None:
    """Parse every YAML input strictly first, so errors name ``file:line:col`` (duplicates included)."""
    kfile = directory / KUSTOMIZATION
    metadata = (yamlio.load_one(kfile) or {}).get("buildMetadata") or []
    missing = [m for m in ("originAnnotations", "transformerAnnotations") if m not in metadata]
    if missing:
        raise UsageError(f"{relative(kfile, root)}: add `buildMetadata: [originAnnotations, transformerAnnotations]`; "
                         "the render needs it to say where each object came from")
    seen: set[Path] = set()
    candidates = [*sorted(directory.glob("*.y*ml")), *values_files(directory)]
    for path in candidates:
        path = path.resolve()
        if path in seen or not path.is_file():
            continue
        seen.add(path)
        yamlio.load_all(path)


def build_stream(directory: Path, tools: dict[str, Path], home: Path, root: Path = REPO_ROOT) -> str:
    command = kustomize_command(tools["kustomize"], tools["helm"], directory)
    proc = subprocess.run(command, capture_output=True, text=True, cwd=root, env=tool_env(home))
    if proc.returncode != 0:
        raise UsageError(_explain_failure(directory, proc.stderr, root))
    return proc.stdout


# --------------------------------------------------------------------------- normalising and splitting


@dataclass
class Resource:
    data: dict
    origin: list[str] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return str(self.data.get("kind", ""))

    @property
    def name(self) -> str:
        return str(self.data.get("metadata", {}).get("name", ""))

    @property
    def namespace(self) -> str:
        return str(self.data.get("metadata", {}).get("namespace", "") or "")


def _repo_path(directory: Path, value: str) -> str:
    """An origin path (relative to the kustomization) as a repository path."""
    return relative((directory / value).resolve()) if not value.startswith("/") else relative(Path(value))


def _origin_of(meta: dict, directory: Path) -> list[str]:
    """Human provenance lines from the chart's template annotation and kustomize's build metadata."""
    annotations = meta.get("annotations") or {}
    lines = []
    template = annotations.get(TEMPLATE_ANNOTATION)
    if template:
        lines.append(f"chart template: helm/{template}")
    origin = annotations.get(ORIGIN_ANNOTATIONS[0])
    if origin:
        parsed = next(yamlio.loads_all(origin, "origin annotation"), {}) or {}
        if parsed.get("path"):
            lines.append(f"overlay file: {_repo_path(directory, parsed['path'])}")
        elif not template and parsed.get("configuredIn"):
            lines.append(f"generated by: {_repo_path(directory, parsed['configuredIn'])}")
    transforms = annotations.get(ORIGIN_ANNOTATIONS[1])
    if transforms:
        for item in next(yamlio.loads_all(transforms, "transformations annotation"), []) or []:
            if not isinstance(item, dict):
                continue
            if item.get("path"):
                lines.append(f"patched by: {_repo_path(directory, item['path'])}")
            elif item.get("configuredIn"):
                kind = (item.get("configuredBy") or {}).get("kind", "transformer")
                lines.append(f"transformed by: {_repo_path(directory, item['configuredIn'])} ({kind})")
    return list(dict.fromkeys(lines))


def normalise(stream: str, origin: str, directory: Path) -> list[Resource]:
    """Parse kustomize output, lift build metadata into provenance, keep the object otherwise."""
    resources = []
    for doc in yamlio.loads_all(stream, origin):
        if not isinstance(doc, dict) or "kind" not in doc or "apiVersion" not in doc:
            shape = f"a mapping with keys {', '.join(sorted(map(str, doc))[:6])}" if isinstance(doc, dict) else \
                f"a {type(doc).__name__}"
            raise UsageError(f"{origin}: produced a document that is not a Kubernetes object ({shape}; apiVersion "
                             "and kind are required)")
        meta = doc.setdefault("metadata", {})
        lines = _origin_of(meta, directory)
        annotations = meta.get("annotations")
        if annotations:
            for key in ORIGIN_ANNOTATIONS:
                annotations.pop(key, None)
            if not annotations:
                del meta["annotations"]
        resources.append(Resource(doc, lines))
    return resources


_SAFE = re.compile(r"[^a-z0-9.-]+")


def file_names(resources: list[Resource], origin: str) -> list[str]:
    """``<kind>-<name>.yaml``; ``<kind>-<namespace>-<name>.yaml`` for the ones that collide."""
    def base(r: Resource) -> str:
        return _SAFE.sub("-", f"{r.kind.lower()}-{r.name.lower()}")

    counts: dict[str, int] = {}
    ids: set[tuple[str, str, str, str]] = set()
    for r in resources:
        key = (r.data.get("apiVersion", "").split("/")[0] if "/" in r.data.get("apiVersion", "") else "", r.kind, r.namespace, r.name)
        if key in ids:
            raise UsageError(f"{origin}: two resources are both {r.kind} {r.namespace + '/' if r.namespace else ''}{r.name}")
        ids.add(key)
        counts[base(r)] = counts.get(base(r), 0) + 1
    names = []
    for r in resources:
        if counts[base(r)] > 1:
            names.append(_SAFE.sub("-", f"{r.kind.lower()}-{r.namespace or '_cluster'}-{r.name.lower()}") + ".yaml")
        else:
            names.append(base(r) + ".yaml")
    if len(set(names)) != len(names):
        raise UsageError(f"{origin}: resources whose kind and name differ only in case or punctuation collide on file names")
    return names


def check_patches_applied(directory: Path, stream: str, tools: dict[str, Path], home: Path,
                          root: Path = REPO_ROOT, inputs: set[Path] | None = None) -> None:
    """Every targeted patch must change something: one that matches nothing is an error.

    Kustomize applies a patch to whatever its target selects and is silent when nothing does. For a
    kustomization with patches, each patch is dropped in turn from a scratch copy of the sources and the
    build repeated: a patch whose removal leaves the output unchanged matched nothing (or did nothing).
    """
    kfile = directory / KUSTOMIZATION
    data = yamlio.load_one(kfile) or {}
    patches = data.get("patches") or []
    if not patches:
        return
    with tempfile.TemporaryDirectory(prefix="dox-patch-check-") as scratch:
        copy = Path(scratch) / "repo"
        for source in sorted(inputs if inputs is not None else check_containment(directory, root)):
            target = copy / source.resolve().relative_to(root.resolve())
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
        twin = copy / directory.resolve().relative_to(root.resolve())
        want = [r.data for r in normalise(stream, "patch check", directory)]
        for index, patch in enumerate(patches):
            reduced = dict(data, patches=[p for i, p in enumerate(patches) if i != index])
            (twin / KUSTOMIZATION).write_text(yamlio.dump(reduced))
            without = [r.data for r in normalise(build_stream(twin, tools, home, copy), "patch check", twin)]
            if without == want:
                target = patch.get("target") or patch.get("path") if isinstance(patch, dict) else patch
                raise UsageError(
                    f"{relative(kfile, root)}: patches[{index}] (target {target}) matches no resource or changes "
                    "nothing; check its kind, name and namespace against the objects before replacements"
                )


def file_text(resource: Resource, source: str) -> str:
    header = HEADER.format(source=source)
    for line in resource.origin:
        header += f"# Source: {line}\n"
    return header + "---\n" + yamlio.dump(resource.data)


# --------------------------------------------------------------------------- writing atomically


_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def exchange(a: Path, b: Path) -> None:
    """Atomically swap two existing directories (Linux renameat2 RENAME_EXCHANGE)."""
    fn = getattr(_libc, "renameat2", None)
    if fn is None:
        raise OSError(errno.ENOSYS, "renameat2 unavailable")
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), str(a))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_tree(target: Path, files: dict[str, str]) -> None:
    """Write ``{relative path: text}`` into ``target`` (new), each file fsynced, mode 0644."""
    for index, (rel, text) in enumerate(sorted(files.items())):
        path = target / rel
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        if index == 1:
            _checkpoint("mid-write")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            data = text.encode("utf-8")
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(path, 0o644)
    for directory in sorted({(target / rel).parent for rel in files} | {target}, reverse=True):
        os.chmod(directory, 0o755)
        _fsync_dir(directory)


def replace_dir(new: Path, final: Path) -> None:
    """Put ``new`` at ``final``: one atomic exchange when ``final`` exists, else a rename."""
    _checkpoint("before-swap")
    if final.exists():
        try:
            exchange(new, final)
        except OSError as exc:
            if exc.errno not in (errno.ENOSYS, errno.EINVAL):
                raise
            # No RENAME_EXCHANGE on this filesystem: two renames; cleanup_stale() repairs a crash between them.
            old = final.with_name(f".{final.name}.old-{os.getpid()}")
            os.rename(final, old)
            os.rename(new, final)
            new = old
        _checkpoint("after-swap")
        shutil.rmtree(new, ignore_errors=True)  # ``new`` now holds the old output
    else:
        os.rename(new, final)
    _fsync_dir(final.parent)


def cleanup_stale(rendered: Path) -> None:
    """Remove temporary trees a killed render left behind; restore a half-done fallback swap."""
    if not rendered.is_dir():
        return
    for leftover in rendered.glob(".*"):
        match = re.match(r"^\.(?P<env>[^.]+)\.old-\d+$", leftover.name)
        if match and not (rendered / match["env"]).exists():
            os.rename(leftover, rendered / match["env"])  # the crash hit between the two renames: roll back
            continue
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)


@contextlib.contextmanager
def render_lock(root: Path, progress: Progress) -> Iterator[None]:
    """One render per clone at a time; a second one waits and says so."""
    state = root / STATE_DIR
    state.mkdir(exist_ok=True)
    with open(state / "render.lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            progress("render: another render is running in this clone; waiting for it to finish...")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# --------------------------------------------------------------------------- caching


def _hash_files(paths: Iterable[Path], digest) -> None:
    for path in sorted(paths):
        if path.is_file():
            digest.update(relative(path).encode() + b"\0")
            digest.update(path.read_bytes())
            digest.update(b"\0")


def input_hash(env: Environment, tools: dict[str, toolchain.Tool], root: Path = REPO_ROOT) -> str:
    """Everything the output bytes depend on: sources, pinned versions, lock, pipeline code."""
    digest = hashlib.sha256()
    for name in sorted(tools):
        digest.update(f"{name}={tools[name].version}\0".encode())
    files = sorted(input_files(env, root)) + sorted(p for p in env.path.rglob("*") if p.is_file())
    here = Path(__file__).parent  # the pipeline code that shapes the output bytes
    files += [here / name for name in ("render.py", "yamlio.py", "environments.py", "paths.py")]
    files += [root / "tools.toml", root / "requirements.lock"]
    _hash_files(files, digest)
    return digest.hexdigest()


def tree_hash(directory: Path) -> str | None:
    if not directory.is_dir():
        return None
    digest = hashlib.sha256()
    for path in sorted(directory.rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(directory)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _cache_file(root: Path, env: Environment) -> Path:
    return root / STATE_DIR / "render-cache" / f"{env.name}.json"


def _cache_read(root: Path, env: Environment, progress: Progress) -> dict:
    path = _cache_file(root, env)
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict):
            raise ValueError("not an object")
        return data
    except ValueError:
        progress(f"render {env.name}: render cache {relative(path)} is corrupt; ignoring it and rendering afresh")
        path.unlink(missing_ok=True)
        return {}


def _cache_write(root: Path, env: Environment, inputs: str, outputs: str | None) -> None:
    path = _cache_file(root, env)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"inputs": inputs, "outputs": outputs}))
    os.replace(tmp, path)


# --------------------------------------------------------------------------- the render


@dataclass
class EnvResult:
    env: Environment
    files: dict[str, str]
    seconds: float
    cached: bool = False


def targets(env: Environment) -> list[tuple[str, Path]]:
    """What one environment renders: its workloads, and its Argo CD objects if it has them."""
    out = [("workloads", env.path)]
    if (env.path / "argocd" / KUSTOMIZATION).exists():
        out.append(("argocd", env.path / "argocd"))
    return out


def render_target(subdir: str, directory: Path, tools: dict[str, Path], home: Path, root: Path) -> dict[str, str]:
    """One kustomization (an environment's workloads, or its Argo CD objects) as ``{path: text}``."""
    inputs = check_containment(directory, root)
    preflight(directory, root)
    origin = relative(directory, root)
    target_home = home / subdir
    target_home.mkdir(parents=True, exist_ok=True)
    stream = build_stream(directory, tools, target_home, root)
    check_patches_applied(directory, stream, tools, target_home, root, inputs)
    resources = normalise(stream, origin, directory)
    if not resources:
        raise UsageError(f"{origin}: kustomize produced no resources; check its resources and helmCharts")
    return {f"{subdir}/{name}": file_text(resource, origin)
            for resource, name in zip(resources, file_names(resources, origin))}


def render_env(env: Environment, tools: dict[str, Path], home: Path, root: Path = REPO_ROOT) -> dict[str, str]:
    """``{relative path under rendered/<env>: text}`` for one environment; its targets in parallel."""
    files: dict[str, str] = {}
    parts = targets(env)
    if len(parts) == 1:
        return render_target(*parts[0], tools, home, root)
    with ThreadPoolExecutor(max_workers=len(parts)) as pool:
        for part in pool.map(lambda t: render_target(t[0], t[1], tools, home, root), parts):
            files.update(part)
    return files


def _tools(progress: Progress) -> dict[str, toolchain.Tool]:
    specs = toolchain.load_specs()
    return {n: toolchain.resolve(n, progress=progress, specs=specs) for n in ("helm", "kustomize")}


def render_all(envs: list[Environment], *, root: Path = REPO_ROOT, write: bool = True, use_cache: bool = True,
               jobs: int | None = None, progress: Progress = _stderr) -> list[EnvResult]:
    """Render ``envs`` in parallel (bounded pool); with ``write`` swap them into ``rendered/``."""
    tools = _tools(progress)
    paths = {n: t.path for n, t in tools.items()}
    rendered = root / RENDERED
    jobs = max(1, min(jobs or os.cpu_count() or 2, len(envs)))

    def one(env: Environment, home: Path) -> EnvResult:
        started = time.monotonic()
        inputs = input_hash(env, tools, root) if write and use_cache else None
        if inputs:
            cached = _cache_read(root, env, progress)
            if cached.get("inputs") == inputs and cached.get("outputs") == tree_hash(rendered / env.name):
                return EnvResult(env, {}, time.monotonic() - started, cached=True)
        env_home = home / env.name
        env_home.mkdir()
        files = render_env(env, paths, env_home, root)
        _checkpoint("after-build")
        if write:
            new = Path(tempfile.mkdtemp(prefix=f".{env.name}.new-", dir=rendered))
            try:
                write_tree(new, files)
                replace_dir(new, rendered / env.name)
            except OSError as exc:
                raise ToolError(f"{relative(rendered / env.name, root)}: could not write the new output "
                                f"({exc.strerror or exc}); the previous output is intact. Free space or fix "
                                "permissions and render again") from None
            finally:
                if new.exists():
                    shutil.rmtree(new, ignore_errors=True)
            if inputs:
                _cache_write(root, env, inputs, tree_hash(rendered / env.name))
        return EnvResult(env, files, time.monotonic() - started)

    with contextlib.ExitStack() as stack:
        if write:
            stack.enter_context(render_lock(root, progress))
            rendered.mkdir(exist_ok=True)
            cleanup_stale(rendered)
        home = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="dox-render-")))
        results: list[EnvResult] = []
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            futures = [pool.submit(one, env, home) for env in envs]
            errors_seen = []
            for env, future in zip(envs, futures):
                try:
                    result = future.result()
                except (UsageError, ToolError) as exc:
                    errors_seen.append(exc)
                    progress(f"render {env.name}: FAILED")
                    continue
                results.append(result)
                state = "unchanged (cached)" if result.cached else f"{len(result.files)} files"
                progress(f"render {env.name}: {state} -> {relative(rendered / env.name)} ({result.seconds:.1f} s)")
        if errors_seen:
            if len(errors_seen) == 1:
                raise errors_seen[0]
            code = max(e.code for e in errors_seen)
            kind = ToolError if code == ToolError.code else UsageError
            raise kind("\n".join(e.message for e in errors_seen), code=code)
    return results


def stale_files(env: Environment, files: dict[str, str], root: Path = REPO_ROOT) -> list[str]:
    """Paths under rendered/<env> that differ from a fresh render (added, removed, changed)."""
    directory = root / RENDERED / env.name
    have = {str(p.relative_to(directory)): p for p in directory.rglob("*") if p.is_file()} if directory.is_dir() else {}
    problems = []
    for rel in sorted(set(have) | set(files)):
        shown = f"{RENDERED}/{env.name}/{rel}"
        if rel not in have:
            problems.append(f"{shown}: missing (a fresh render creates it)")
        elif rel not in files:
            problems.append(f"{shown}: extra (a fresh render no longer produces it)")
        elif have[rel].read_bytes() != files[rel].encode("utf-8"):
            problems.append(f"{shown}: differs from a fresh render")
    return problems


def orphans(envs: list[Environment], root: Path = REPO_ROOT) -> list[Path]:
    """Directories of rendered/ that belong to no environment (one was removed or renamed)."""
    names = {e.name for e in envs}
    directory = root / RENDERED
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.is_dir() and not p.name.startswith(".") and p.name not in names)


def remove_orphans(envs: list[Environment], root: Path = REPO_ROOT, progress: Progress = _stderr) -> None:
    """After rendering every environment: drop output whose environment no longer exists."""
    for directory in orphans(envs, root):
        shutil.rmtree(directory)
        progress(f"render: removed {relative(directory, root)}: no environments/{directory.name} any more")


def check(envs: list[Environment], root: Path = REPO_ROOT, progress: Progress = _stderr,
          every: bool = False) -> None:
    """Render afresh (never from cache) and raise Findings naming every stale file.

    With ``every`` (all environments were selected), output of removed environments is stale too.
    """
    results = render_all(envs, root=root, write=False, use_cache=False, progress=progress)
    problems = [p for r in results for p in stale_files(r.env, r.files, root)]
    if every:
        problems += [f"{relative(d, root)}/: extra (no environments/{d.name} renders it)" for d in orphans(envs, root)]
    if problems:
        raise Findings(
            "rendered/ is stale:\n  " + "\n  ".join(problems) + "\nrun `./dox render` and commit the result"
        )
    progress(f"render --check: rendered/ matches a fresh render for {', '.join(e.name for e in envs)}")
