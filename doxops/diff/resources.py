"""Resources of a rendered tree, keyed by identity, and their comparable form."""

from __future__ import annotations

import re
from typing import Any

import yaml

from .. import yamlio
from ..errors import UsageError

RENDERED = "rendered"
Key = tuple[str, str, str, str, str]  # env, group, kind, namespace, name


def parse_files(files: dict[str, str]) -> tuple[dict[Key, dict], dict[Key, str]]:
    """``{"<env>/<sub>/<file>": text}`` -> (resources keyed by environment and identity, their files)."""
    out: dict[Key, dict] = {}
    where: dict[Key, str] = {}
    for rel, text in files.items():
        env = rel.split("/", 1)[0]
        try:
            docs = list(yaml.load_all(text, Loader=yamlio.StrictLoader))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            place = f"{RENDERED}/{rel}:{mark.line + 1}" if mark else f"{RENDERED}/{rel}"
            raise UsageError(f"{place}: invalid YAML in the compared tree: {getattr(exc, 'problem', exc)}; "
                             "fix or re-render it") from None
        for doc in docs:
            if not isinstance(doc, dict):
                continue
            api = str(doc.get("apiVersion", ""))
            meta = doc.get("metadata") or {}
            key = (env, api.split("/")[0] if "/" in api else "", str(doc.get("kind")),
                   str(meta.get("namespace") or ""), str(meta.get("name")))
            out[key] = doc
            where[key] = f"{RENDERED}/{rel}"
    return out, where


def title(key: Key) -> str:
    _, _, kind, namespace, name = key
    return f"{kind} {namespace + '/' if namespace else ''}{name}"


def annotations(doc: dict | None) -> dict:
    return ((doc or {}).get("metadata") or {}).get("annotations") or {}


def _ordered_env(items: list) -> bool:
    return any("$(" in str(i.get("value", "")) for i in items if isinstance(i, dict))


def canonical(node: Any, parent: str = "") -> Any:
    """Named lists become maps keyed ``name=<name>`` (order-free), except ordered env lists."""
    if isinstance(node, dict):
        return {k: canonical(v, k) for k, v in node.items()}
    if isinstance(node, list):
        items = [canonical(v) for v in node]
        if items and all(isinstance(i, dict) for i in items):
            for field_name in ("name", "containerPort", "port", "mountPath", "secretKey"):
                values = [i.get(field_name) for i in items]
                if all(v is not None for v in values) and len(set(map(str, values))) == len(values):
                    if parent == "env" and _ordered_env(items):
                        return items
                    return {f"{field_name}={v}": i for v, i in zip(values, items)}
        return items
    return node


_PART = re.compile(r"\['([^']*)'\]|\[(\d+)\]")


def dotted(deepdiff_path: str) -> str:
    """``root['spec']['replicas']`` -> ``spec.replicas``."""
    return ".".join(a if a else f"[{b}]" for a, b in _PART.findall(deepdiff_path)).replace(".[", "[")


def lookup(root: Any, deepdiff_path: str) -> Any:
    node = root
    for a, b in _PART.findall(deepdiff_path):
        try:
            node = node[a] if a else node[int(b)]
        except (KeyError, IndexError, TypeError):
            return None
    return node
