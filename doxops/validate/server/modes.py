"""How Argo CD applies an object: the Application that syncs its file, then the object's own sync options."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from ..manifests import Manifest
from .common import SYNC_OPTIONS


@dataclass(frozen=True)
class Mode:
    """How one object is applied: the Application that syncs it and its relevant sync options."""

    server_side: bool = False
    validate: bool = True
    application: str = ""
    destination: str = ""

    @property
    def key(self) -> str:
        return f"{'ssa' if self.server_side else 'csa'}:{'strict' if self.validate else 'ignore'}:{self.application}"

    @property
    def name(self) -> str:
        return "server-side apply" if self.server_side else "client-side apply"


def parse_options(values: Iterable[str]) -> dict[str, str]:
    """``["ServerSideApply=true,Validate=false"]`` -> ``{"ServerSideApply": "true", "Validate": "false"}``."""
    out = {}
    for value in values:
        for part in str(value).split(","):
            key, _, setting = part.strip().partition("=")
            if key:
                out[key] = setting.strip().lower()
    return out


def annotations_of(data: dict) -> dict:
    meta = data.get("metadata") if isinstance(data, dict) else None
    found = meta.get("annotations") if isinstance(meta, dict) else None
    return found if isinstance(found, dict) else {}


def labels_of(data: dict) -> dict:
    meta = data.get("metadata") if isinstance(data, dict) else None
    found = meta.get("labels") if isinstance(meta, dict) else None
    return found if isinstance(found, dict) else {}


def own_mode(data: dict, found: Mode) -> Mode:
    """``found`` (the Application's mode) overridden by the object's own ``argocd.argoproj.io/sync-options``."""
    own = parse_options([annotations_of(data).get(SYNC_OPTIONS, "")])
    if "ServerSideApply" in own:
        found = Mode(own["ServerSideApply"] == "true", found.validate, found.application, found.destination)
    if "Validate" in own:
        found = Mode(found.server_side, own["Validate"] != "false", found.application, found.destination)
    return found


def apply_modes(manifests: list[Manifest], directory: Path | None) -> Callable[[Manifest], Mode]:
    """``mode(manifest)``: the Application among ``manifests`` whose ``source.path`` holds the
    manifest's file decides (its ``syncOptions``, then the object's own sync-options annotation).
    A file no Application syncs is applied as ``kubectl apply`` does: client-side."""
    apps: list[tuple[Path, Mode]] = []
    if directory is not None:
        base = Path(directory).resolve()
        for m in manifests:
            if m.kind != "Application" or m.group != "argoproj.io":
                continue
            spec = m.data.get("spec") if isinstance(m.data.get("spec"), dict) else {}
            source = spec.get("source") if isinstance(spec.get("source"), dict) else {}
            path = str(source.get("path") or "")
            policy = spec.get("syncPolicy") if isinstance(spec.get("syncPolicy"), dict) else {}
            listed = policy.get("syncOptions")
            options = parse_options(listed if isinstance(listed, list) else [])  # ill-typed: the schema stage says so
            destination = spec.get("destination") if isinstance(spec.get("destination"), dict) else {}
            mode = Mode(options.get("ServerSideApply") == "true", options.get("Validate") != "false",
                        m.name, str(destination.get("namespace") or ""))
            # source.path is relative to the repository root: look for it above the validated directory
            for root in (base, *base.parents):
                candidate = (root / path).resolve() if path else None
                if candidate is not None and candidate.is_dir() and \
                        (candidate == base or base in candidate.parents or candidate in base.parents):
                    apps.append((candidate, mode))
                    break

    def mode_of(manifest: Manifest) -> Mode:
        found = Mode()
        best = -1
        file = manifest.path.resolve()
        for root, mode in apps:
            if (root == file.parent or root in file.parents) and len(root.parts) > best:
                found, best = mode, len(root.parts)
        return own_mode(manifest.data, found)

    return mode_of
