"""Manifests to validate: every Kubernetes object in a directory, with where it is.

Parsing is libyaml (fast; spread over every core for large inputs). Only when a
diagnostic needs a precise line inside an object is that one document composed
again, keeping the line and column of every node, to resolve a JSON pointer such
as ``/spec/template/spec/containers/0/image``.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .. import yamlio
from ..errors import UsageError
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
        return str(self.data.get("kind", ""))

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

    @property
    def name(self) -> str:
        return str(self.meta.get("name", ""))

    @property
    def namespace(self) -> str:
        return str(self.meta.get("namespace", "") or "")

    @property
    def labels(self) -> dict:
        labels = self.meta.get("labels")
        return labels if isinstance(labels, dict) else {}  # ill-typed: the schema stage reports it

    @property
    def annotations(self) -> dict:
        annotations = self.meta.get("annotations")
        return annotations if isinstance(annotations, dict) else {}

    @property
    def template(self) -> str:
        """The chart template that made this object, as a repository path (subchart aliases mapped)."""
        from ..render.serialise import template_path  # noqa: PLC0415 - only when a diagnostic names it

        value = self.annotations.get(TEMPLATE_ANNOTATION)
        return template_path(value) if isinstance(value, str) and value else ""

    @property
    def ref(self) -> str:
        ns = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {ns}{self.name}"


def yaml_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.is_file() and p.suffix in (".yaml", ".yml")
                  and not any(part.startswith(".") for part in p.relative_to(directory).parts))


#: Above this many bytes of YAML, files are parsed on every core (libyaml is the floor per core).
PARALLEL_BYTES = 4 * 1024 * 1024


def _parse(path: Path) -> list[yamlio.Document]:
    return yamlio.load_all(path)


def _parse_all(files: list[Path]) -> list[list[yamlio.Document]]:
    total = sum(p.stat().st_size for p in files)
    workers = min(os.cpu_count() or 1, len(files))
    if total < PARALLEL_BYTES or workers < 2:
        return [_parse(p) for p in files]
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        return list(pool.map(_parse, files, chunksize=max(1, len(files) // (workers * 4))))


def load_directory(directory: Path) -> list[Manifest]:
    """Every object under ``directory``; a non-object document is an input error."""
    directory = Path(directory)
    if not directory.is_dir():
        raise UsageError(f"{relative(directory)}: not a directory of manifests")
    manifests: list[Manifest] = []
    files = yaml_files(directory)
    for path, docs in zip(files, _parse_all(files)):
        if not docs:
            raise UsageError(f"{relative(path)}: empty file; delete it or put a Kubernetes object in it")
        for index, doc in enumerate(docs):
            if not isinstance(doc.data, dict) or "apiVersion" not in doc.data or "kind" not in doc.data:
                raise UsageError(
                    f"{relative(path)}:{doc.line}: not a Kubernetes object (a mapping with apiVersion and kind)"
                )
            manifests.append(Manifest(doc.data, path, index, doc.line))
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
