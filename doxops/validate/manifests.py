"""Manifests to validate: every Kubernetes object in a directory, with where it is.

Parsing is libyaml (fast). Only when a diagnostic needs a precise line inside an
object is the file parsed again with ruamel.yaml, which keeps line numbers for
every node (a JSON pointer such as ``/spec/template/spec/containers/0/image``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from .. import yamlio
from ..errors import UsageError
from ..paths import relative

TEMPLATE_ANNOTATION = "dox-asdlc.io/template"


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
        return self.meta.get("labels") or {}

    @property
    def annotations(self) -> dict:
        return self.meta.get("annotations") or {}

    @property
    def template(self) -> str:
        value = self.annotations.get(TEMPLATE_ANNOTATION)
        return f"helm/{value}" if value else ""

    @property
    def ref(self) -> str:
        ns = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {ns}{self.name}"


def yaml_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.is_file() and p.suffix in (".yaml", ".yml")
                  and not any(part.startswith(".") for part in p.relative_to(directory).parts))


def load_directory(directory: Path) -> list[Manifest]:
    """Every object under ``directory``; a non-object document is an input error."""
    directory = Path(directory)
    if not directory.is_dir():
        raise UsageError(f"{relative(directory)}: not a directory of manifests")
    manifests: list[Manifest] = []
    for path in yaml_files(directory):
        docs = yamlio.load_all(path)
        if not docs:
            raise UsageError(f"{relative(path)}: empty file; delete it or put a Kubernetes object in it")
        for index, doc in enumerate(docs):
            if not isinstance(doc.data, dict) or "apiVersion" not in doc.data or "kind" not in doc.data:
                raise UsageError(
                    f"{relative(path)}:{doc.line}: not a Kubernetes object (a mapping with apiVersion and kind)"
                )
            manifests.append(Manifest(doc.data, path, index, doc.line))
    return manifests


@functools.lru_cache(maxsize=256)
def _ruamel_docs(path: Path, mtime_ns: int) -> list[Any]:
    yaml = YAML(typ="rt")
    return list(yaml.load_all(path.read_text(encoding="utf-8")))


def locate(manifest: Manifest, pointer: str) -> tuple[int, int]:
    """1-based (line, col) of the deepest node of ``pointer`` that exists in the file."""
    try:
        docs = _ruamel_docs(manifest.path, manifest.path.stat().st_mtime_ns)
        docs = [d for d in docs if d is not None]
        node = docs[manifest.index]
    except Exception:  # noqa: BLE001 - a location is a nicety; never fail validation over it
        return manifest.line, 1
    line, col = manifest.line, 1
    for part in [p for p in pointer.split("/") if p]:
        part = part.replace("~1", "/").replace("~0", "~")
        try:
            if isinstance(node, list):
                index = int(part)
                line, col = node.lc.item(index)
                node = node[index]
            elif isinstance(node, dict) and part in node:
                line, col = node.lc.key(part)
                node = node[part]
            else:
                break
            line, col = line + 1, col + 1
        except (ValueError, IndexError, KeyError, AttributeError, TypeError):
            break
    return line, col
