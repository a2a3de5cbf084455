"""Shared helpers of the Argo CD rules: the objects an Application would sync."""

from __future__ import annotations

import fnmatch
from pathlib import Path

from ...errors import UsageError
from ..engine import Context
from ..manifests import Manifest, load_directory


def applications(ctx: Context) -> list[Manifest]:
    return [m for m in ctx.of_kind("Application") if m.group == "argoproj.io"]


def source_path(app: Manifest) -> str | None:
    spec = app.data.get("spec")
    source = spec.get("source") if isinstance(spec, dict) else None
    path = source.get("path") if isinstance(source, dict) else None
    return path if isinstance(path, str) else None  # ill-typed: the schema stage reports it


def synced_objects(ctx: Context, app: Manifest) -> list[Manifest] | None:
    """What the Application's source path holds, or None if it is missing or not manifests."""
    path = source_path(app)
    if not path:
        return None
    cache = ctx.__dict__.setdefault("_argocd_paths", {})
    if path not in cache:
        directory = (ctx.root / path).resolve()
        try:
            directory.relative_to(Path(ctx.root).resolve())
            cache[path] = load_directory(directory) if directory.is_dir() else None
        except (ValueError, UsageError):
            cache[path] = None
    return cache[path]


def matches(pattern: str, value: str) -> bool:
    return fnmatch.fnmatchcase(value or "", pattern or "")
