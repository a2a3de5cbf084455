"""Manifests to validate: every Kubernetes object in a directory, with where it is.

Parsing is libyaml through ``yamlio`` (the strict loader: duplicate keys are errors at
``path:line:col``), with the garbage collector paused, and for large inputs split over
every core: the main process parses one contiguous run of files while forked workers
parse the others and send back one marshal string each. Only when a diagnostic needs a
precise line inside an object is that one document composed again, keeping the line
and column of every node, to resolve a JSON pointer such as
``/spec/template/spec/containers/0/image``.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import marshal
import os
import pickle
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .. import yamlio
from ..errors import DoxError, UsageError
from ..paths import relative

TEMPLATE_ANNOTATION = "dox-asdlc.io/template"
_COMPOSER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class Manifest:
    """One Kubernetes object: its data, file, document index and starting line."""

    data: dict
    path: Path
    index: int
    line: int

    @property
    def kind(self) -> str:
        value = self.data.get("kind", "")
        return value if type(value) is str else str(value)

    @property
    def api_version(self) -> str:
        return str(self.data.get("apiVersion", ""))

    @property
    def group(self) -> str:
        return self.api_version.split("/", 1)[0] if "/" in self.api_version else ""

    @property
    def meta(self) -> dict:
        meta = self.data.get("metadata")
        return meta if isinstance(meta, dict) else {}

    # The metadata properties below are what every rule asks of every object, many times a run; each reads
    # metadata itself (as ``meta`` does) rather than through ``meta``, one Python call fewer per use.

    @property
    def name(self) -> str:
        meta = self.data.get("metadata")
        value = meta.get("name", "") if isinstance(meta, dict) else ""
        return value if type(value) is str else str(value)

    @property
    def namespace(self) -> str:
        meta = self.data.get("metadata")
        value = meta.get("namespace") if isinstance(meta, dict) else None
        return value if type(value) is str else str(value or "")

    @property
    def labels(self) -> dict:
        meta = self.data.get("metadata")
        labels = meta.get("labels") if isinstance(meta, dict) else None
        return labels if isinstance(labels, dict) else {}  # ill-typed: the schema stage reports it

    @property
    def annotations(self) -> dict:
        meta = self.data.get("metadata")
        annotations = meta.get("annotations") if isinstance(meta, dict) else None
        return annotations if isinstance(annotations, dict) else {}

    @property
    def template(self) -> str:
        """The chart template that made this object, as a repository path (subchart aliases mapped)."""
        from ..render.serialise import template_path  # noqa: PLC0415 - only when a diagnostic names it

        value = self.annotations.get(TEMPLATE_ANNOTATION)
        return template_path(value) if isinstance(value, str) and value else ""

    @property
    def ref(self) -> str:
        ns = self.namespace
        return f"{self.kind} {ns}/{self.name}" if ns else f"{self.kind} {self.name}"


def yaml_files(directory: Path) -> list[Path]:
    """The ``.yaml``/``.yml`` files below ``directory``, in path order; hidden files and directories (and
    anything below them) are left out, symlinked directories are not entered, symlinked files are read."""
    found: list[tuple[str, ...]] = []

    def walk(folder: str, parts: tuple[str, ...]) -> None:
        try:
            listing = os.scandir(folder)
        except PermissionError:  # as Path.rglob: an unreadable directory below is skipped
            if not parts:
                raise
            return
        with listing as entries:
            for entry in entries:
                name = entry.name
                if name.startswith("."):
                    continue
                if entry.is_dir(follow_symlinks=False):
                    walk(entry.path, (*parts, name))
                elif name.endswith((".yaml", ".yml")) and entry.is_file():
                    found.append((*parts, name))

    walk(str(directory), ())
    found.sort()  # as sorted(Path) orders them on POSIX: part by part
    return [directory.joinpath(*parts) for parts in found]


#: Above this many bytes of YAML, files are parsed on every core (libyaml is the floor per core).
PARALLEL_BYTES = 4 * 1024 * 1024

Parsed = list[tuple[Any, int]]  # one file's documents: (data, first line)


def _parse(path: Path) -> Parsed:
    return [(doc.data, doc.line) for doc in yamlio.load_all(path)]


def _parse_chunk(paths: list[Path]) -> bytes:
    """A worker's share of the files, in order, as one marshal string (cheap to send and to read back;
    pickle only when a value is not marshallable, a timestamp say). The first error stops it and is raised."""
    with _collector_paused():
        parsed = [_parse(p) for p in paths]
    try:
        return b"m" + marshal.dumps(parsed)
    except ValueError:
        return b"p" + pickle.dumps(parsed, protocol=pickle.HIGHEST_PROTOCOL)


def _unpack(blob: bytes) -> list[Parsed]:
    if blob[:1] == b"m":
        return marshal.loads(blob[1:])
    if blob[:1] == b"p":
        return pickle.loads(blob[1:])
    if blob[:1] == b"e":
        raise pickle.loads(blob[1:])
    raise DoxError("a YAML parsing worker process ended without a result (killed, or out of memory?); run again")


def _fork_worker(paths: list[Path]) -> tuple[int, int]:
    """A forked process parsing ``paths``: (its pid, the pipe its result comes through). It inherits the
    parsed code and the file list, writes one string and leaves at once (``os._exit``: no clean-up of the
    parent's state, no flush of its buffers, no freeing of what it parsed)."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child process
        status = 1
        try:
            os.close(read_fd)
            try:
                blob = _parse_chunk(paths)
            except BaseException as exc:  # noqa: BLE001 - sent to the parent, which raises it
                try:
                    blob = b"e" + pickle.dumps(exc)
                except Exception:  # noqa: BLE001 - an exception that does not pickle
                    blob = b"e" + pickle.dumps(RuntimeError(f"{type(exc).__name__}: {exc}"))
            with os.fdopen(write_fd, "wb") as out:
                out.write(blob)
            status = 0
        finally:
            os._exit(status)
    os.close(write_fd)
    return pid, read_fd


def _collect(pid: int, read_fd: int) -> list[Parsed]:
    with os.fdopen(read_fd, "rb") as pipe:
        blob = pipe.read()
    os.waitpid(pid, 0)
    return _unpack(blob)


def _split(files: list[Path], sizes: list[int], shares: list[float]) -> list[list[Path]]:
    """Contiguous runs of ``files`` whose byte totals follow ``shares`` (fractions that sum to 1)."""
    total = sum(sizes)
    chunks: list[list[Path]] = [[] for _ in shares]
    bound, which, done = shares[0] * total, 0, 0
    for path, size in zip(files, sizes):
        while done >= bound and which < len(shares) - 1:
            which += 1
            bound += shares[which] * total
        chunks[which].append(path)
        done += size
    return chunks


#: The main process's share of a parallel parse relative to a worker's: it also lists the files and reads the
#: workers' results back; a worker also forks and writes (measured: about even).
MAIN_SHARE = 0.95


@contextlib.contextmanager
def _collector_paused(large: bool = False):
    """Parsing builds acyclic trees only: a garbage collection would walk everything parsed so far, again
    and again (a third of the time of 10,000 files). The collector is back on (if it was) afterwards.

    After a ``large`` parse the objects are frozen (``gc.freeze``) before the collector is back: the
    first collections would otherwise walk the million new objects twice more (about 0.1 s each) only
    to age them. Frozen objects are still freed by reference counting when dropped (parsed trees hold
    no cycles); so that no cyclic garbage of the process is frozen with them, a full collection runs
    first, while the heap is still small.
    """
    collecting = gc.isenabled()
    if large and collecting:
        gc.collect()
    gc.disable()
    try:
        yield
        if large and collecting:
            gc.freeze()
    finally:
        if collecting:
            gc.enable()


def _workers(files: list[Path], sizes: list[int]) -> int:
    """How many processes parse ``files``: one per core for a large input, else one (no fork)."""
    if sum(sizes) < PARALLEL_BYTES or not hasattr(os, "fork"):
        return 1
    return max(1, min(os.cpu_count() or 1, len(files)))


def _parse_all(files: list[Path], sizes: list[int]) -> list[Parsed]:
    """Every file's documents, in order. Large inputs are split into one contiguous run per core: the
    main process parses the first run while forked workers parse the others; the first error in file
    order is the one raised, as in a serial parse."""
    workers = _workers(files, sizes)
    if workers < 2:
        return [_parse(p) for p in files]
    main = MAIN_SHARE / workers
    shares = [main] + [(1 - main) / (workers - 1)] * (workers - 1)
    first, *rest = _split(files, sizes, shares)
    forked = [_fork_worker(chunk) for chunk in rest]
    try:
        parsed = [_parse(p) for p in first]
        while forked:
            parsed.extend(_collect(*forked[0]))
            forked.pop(0)
    finally:
        for pid, read_fd in forked:  # only after an error or an interruption: stop the rest
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except OSError:
                pass
            try:
                os.close(read_fd)
            except OSError:
                pass
    return parsed


def load_directory(directory: Path) -> list[Manifest]:
    """Every object under ``directory``; a non-object document is an input error."""
    directory = Path(directory)
    if not directory.is_dir():
        raise UsageError(f"{relative(directory)}: not a directory of manifests")
    manifests: list[Manifest] = []
    files = yaml_files(directory)
    sizes = [p.stat().st_size for p in files]
    with _collector_paused(large=_workers(files, sizes) > 1):
        for path, docs in zip(files, _parse_all(files, sizes)):
            if not docs:
                raise UsageError(f"{relative(path)}: empty file; delete it or put a Kubernetes object in it")
            for index, (data, line) in enumerate(docs):
                if not isinstance(data, dict) or "apiVersion" not in data or "kind" not in data:
                    raise UsageError(
                        f"{relative(path)}:{line}: not a Kubernetes object (a mapping with apiVersion and kind)"
                    )
                manifests.append(Manifest(data, path, index, line))
    return manifests


@functools.lru_cache(maxsize=64)
def _lines(path: Path, mtime_ns: int) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines(keepends=True)


@functools.lru_cache(maxsize=1024)
def _node(path: Path, mtime_ns: int, first_line: int) -> Any:
    """The node tree (with marks) of only the document that starts at ``first_line`` (1-based).

    The rest of a multi-document file is never parsed: the document's text runs from its first line
    to the next ``---`` line. libyaml composes it; marks give each key's line and column.
    """
    lines = _lines(path, mtime_ns)
    end = first_line - 1
    while end < len(lines) and not (end > first_line - 1 and lines[end].startswith("---")):
        end += 1
    return yaml.compose("".join(lines[first_line - 1:end]), Loader=_COMPOSER)


def locate(manifest: Manifest, pointer: str) -> tuple[int, int]:
    """1-based (line, col) of the deepest node of ``pointer`` that exists in the file."""
    try:
        node = _node(manifest.path, manifest.path.stat().st_mtime_ns, manifest.line)
    except Exception:  # noqa: BLE001 - a location is a nicety; never fail validation over it
        return manifest.line, 1
    offset = manifest.line - 1
    line, col = manifest.line, 1
    for part in [p for p in pointer.split("/") if p]:
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(node, yaml.SequenceNode):
            try:
                child = node.value[int(part)]
            except (ValueError, IndexError):
                break
            line, col = child.start_mark.line + 1 + offset, child.start_mark.column + 1
            node = child
        elif isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if k.value == part), None)
            if match is None:
                break
            line, col = match[0].start_mark.line + 1 + offset, match[0].start_mark.column + 1
            node = match[1]
        else:
            break
    return line, col
