"""What a render reads: containment of every source, and the one definition of what shapes output.

Every path a kustomization names (recursively, the chart home and values files included) must
resolve inside the repository, and no source may be remote: checked before kustomize runs.
:func:`shaping_inputs` is the one list of files that shape rendered output; every cache key (the
render cache, ``diff --rerender``'s base cache, the validation cache) is built from it.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import re
from pathlib import Path
from typing import Iterable, Iterator

from .. import yamlio
from ..environments import KUSTOMIZATION, Environment
from ..errors import UsageError
from ..paths import REPO_ROOT, relative

#: The pipeline code whose behaviour shapes the rendered bytes, relative to the doxops package:
#: every module of this package, and the YAML, scalar, environment and path helpers it uses.
_PACKAGE = Path(__file__).resolve().parent.parent
SHAPING_MODULES = ("yamlio.py", "yamlscalars.py", "environments.py", "paths.py")


_URL = re.compile(r"^[a-z][a-z0-9+.-]*://|^git@|^github\.com/|^(?:[\w.-]+\.)+[a-z]{2,}/", re.IGNORECASE)


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(_resolved(root))
        return True
    except ValueError:
        return False


@functools.lru_cache(maxsize=16)
def _resolved(root: Path) -> Path:
    return root.resolve()


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
    if path.is_file():
        candidates, below = [path], False
    else:  # rglob does not descend into symlinked directories: only a symlink itself can point out
        candidates, below = [p for p in path.rglob("*") if p.is_file() or p.is_symlink()], True
    for candidate in candidates:
        if (not below or candidate.is_symlink()) and not _inside(candidate, root):
            raise UsageError(
                f"{relative(kfile, root)}: {key} {value!r} reaches {relative(candidate, root)}, which resolves to "
                f"{candidate.resolve()}, outside the repository; only files inside the repository may be loaded"
            )
        yield candidate


#: While a command runs (:func:`walks_remembered`): (kustomization directory, root) -> the files its walk found.
_WALKS: dict[tuple[Path, Path], frozenset[Path]] | None = None
#: While a command runs: (root, environment) -> its :func:`shaping_digest`.
_DIGESTS: dict[tuple[Path, Environment], str] | None = None


@contextlib.contextmanager
def walks_remembered() -> Iterator[None]:
    """Within: each kustomization's containment walk (:func:`check_containment`) is done once and its answer
    reused, and so is each environment's :func:`shaping_digest`. One command walks and hashes every
    environment's inputs several times (the render cache, the validation cache's key, the credential scan):
    which files are inputs, and one digest of their contents taken when the command first needs it, are
    remembered, so the render cache and the validation cache key the same reading of the sources. The scan
    and the render read the files themselves afresh; a refused input (an error) is never remembered. Nested
    uses share the outermost one's answers."""
    global _WALKS, _DIGESTS
    outer = _WALKS is not None
    if not outer:
        _WALKS, _DIGESTS = {}, {}
    try:
        yield
    finally:
        if not outer:
            _WALKS, _DIGESTS = None, None


def forget_digests() -> None:
    """Within :func:`walks_remembered`: drop the digests taken so far (the render waited for another render's
    lock, so the sources may have changed since); the next :func:`shaping_digest` reads them again."""
    if _DIGESTS is not None:
        _DIGESTS.clear()


def remember_digest(root: Path, env: Environment, digest: str) -> None:
    """Within :func:`walks_remembered`: ``digest`` is ``env``'s :func:`shaping_digest` in ``root``, taken moments
    ago by the caller (the cached path's check, :mod:`doxops.noop`). Outside, nothing is kept."""
    if _DIGESTS is not None:
        _DIGESTS[(_resolved(root), env)] = digest


def check_containment(directory: Path, root: Path = REPO_ROOT, _seen: set[Path] | None = None) -> set[Path]:
    """Refuse remote sources and paths that leave ``root``; return every input file reached, recursively.

    Every referenced file, and every file below a referenced directory (the chart home included), must
    resolve inside the repository: a symlink pointing out is refused like a ``../..`` path. Raises UsageError
    naming the kustomization file, the field and the value.
    """
    walks = _WALKS
    if _seen is None and walks is not None:
        key = (directory.resolve(), _resolved(root))
        found = walks.get(key)
        if found is None:
            found = walks[key] = frozenset(check_containment(directory, root, set()))
        return set(found)
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


def targets(env: Environment) -> list[tuple[str, Path]]:
    """What one environment renders: its workloads, and its Argo CD objects if it has them."""
    out = [("workloads", env.path)]
    if (env.path / "argocd" / KUSTOMIZATION).exists():
        out.append(("argocd", env.path / "argocd"))
    return out


def input_files(env: Environment, root: Path = REPO_ROOT) -> set[Path]:
    """Every file an environment's render reads (its kustomizations, values, chart, patches...)."""
    files: set[Path] = set()
    for _, directory in targets(env):
        files |= check_containment(directory, root)
    return files


def code_files() -> list[Path]:
    """The pipeline's own files that shape the output (this package and the helpers it uses)."""
    return sorted((_PACKAGE / "render").glob("*.py")) + [_PACKAGE / name for name in SHAPING_MODULES]


def shaping_inputs(root: Path = REPO_ROOT, env: Environment | None = None) -> list[Path]:
    """Every file that shapes rendered output: the one definition every cache key uses.

    Always the pipeline code (:func:`code_files`), the pinned tools (``tools.toml``) and the pinned
    Python libraries (``requirements.lock``: PyYAML's emitter writes the bytes). With ``env``, also
    every source its render reads (kustomizations, chart, values, patches) and every file of its
    directory. A base rendered from a git commit adds the commit id to these (its sources are fixed).
    """
    files = code_files() + [root / "tools.toml", root / "requirements.lock"]
    if env is not None:
        files += sorted(input_files(env, root)) + sorted(p for p in env.path.rglob("*") if p.is_file())
    return files


def _namer(root: Path):
    """A function naming a file for the digest: ``doxops/<path>`` in the package, ``<path>`` in the repository
    (the same in every clone), else the path as given. The file's directory is resolved (symlinks, ``..``), once
    per directory, so a path reached through ``../..`` gets one name; the file's own name is kept."""
    bases = ((str(_resolved(_PACKAGE)), "doxops/"), (str(_resolved(root)), ""))
    real_dirs: dict[str, str] = {}

    def name(path: Path) -> str:
        parent, base_name = os.path.split(str(path))
        real = real_dirs.get(parent)
        if real is None:
            real = real_dirs[parent] = os.path.realpath(parent or ".")
        full = os.path.join(real, base_name)
        for base, prefix in bases:
            if full.startswith(base + os.sep):
                return prefix + full[len(base) + 1:]
        return str(path)

    return name


def shaping_digest(root: Path = REPO_ROOT, env: Environment | None = None, extra: Iterable[Path] = ()) -> str:
    """A hash of :func:`shaping_inputs` (and ``extra`` files): names and contents (hex SHA-256). Within
    :func:`walks_remembered`, an environment's digest without ``extra`` is taken once."""
    extra = tuple(extra)
    if env is None or extra or _DIGESTS is None:
        return _digest_of(root, env, extra)
    key = (_resolved(root), env)
    found = _DIGESTS.get(key)
    if found is None:
        found = _DIGESTS[key] = _digest_of(root, env, ())
    return found


def _digest_of(root: Path, env: Environment | None, extra: tuple[Path, ...]) -> str:
    digest = hashlib.sha256()
    name = _namer(root)
    for name_, path in sorted((name(p), p) for p in set(shaping_inputs(root, env)) | set(extra)):
        try:
            data = path.read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            continue  # not a file (any more): only files shape the output
        digest.update(name_.encode() + b"\0" + data + b"\0")
    return digest.hexdigest()
