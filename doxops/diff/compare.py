"""Resource-by-resource comparison of two sides, masked, with Kubernetes value semantics."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .mask import Masker, scanner_flags
from .resources import Key, canonical, dotted, lookup, title
from .semantics import stored_identically
from .settings import Settings

#: Actions: add, remove, change, and "=": written differently, stored identically (no change to the cluster).
ADD, REMOVE, CHANGE, SAME = "+", "-", "~", "="


@dataclass
class Change:
    action: str
    key: Key
    fields: list[tuple[str, Any, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    old: dict | None = None  # masked
    new: dict | None = None  # masked
    #: Fields written differently that the API server stores identically (masked values).
    same: list[tuple[str, Any, Any]] = field(default_factory=list)
    #: Every path that really changes, noise included (what the rollout impact is read from).
    paths: list[str] = field(default_factory=list)
    # Filled in by the plan (doxops.diff.plan): what Argo CD will do with it.
    application: str = ""
    wave: int = 0
    outcome: str = ""
    rollout: str = ""
    immutable: list[str] = field(default_factory=list)

    @property
    def title(self) -> str:
        return title(self.key)


def compare(before: dict[Key, dict], after: dict[Key, dict], settings: Settings, scan: bool = True,
            scan_cache: Path | None = None) -> list[Change]:
    """Every resource that differs, sorted by key; values masked (``scan``: with the credential scanner,
    its answers kept by content in ``scan_cache``)."""
    noise = [re.compile(f"^{p}$") for p in settings.noise]
    pending: list[tuple[Key, dict | None, dict | None, Any]] = []
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key), after.get(key)
        if old is not None and new is not None:
            if old == new:
                continue
            from deepdiff import DeepDiff  # noqa: PLC0415 - loaded when a resource changed, not to import this module

            diff = DeepDiff(canonical(old), canonical(new), verbose_level=2)
            if not diff:
                continue
            pending.append((key, old, new, diff))
        else:
            pending.append((key, old, new, None))
    flagged = (scanner_flags((d for _, old, new, _ in pending for d in (old, new) if d is not None), scan_cache)
               if scan else set())
    masker = Masker(settings, flagged)
    changes: list[Change] = []
    for key, old, new, diff in pending:
        masked_old = masker.mask(old) if old is not None else None
        masked_new = masker.mask(new) if new is not None else None
        if diff is None:
            changes.append(Change(ADD if old is None else REMOVE, key, old=masked_old, new=masked_new))
            continue
        change = Change(CHANGE, key, old=masked_old, new=masked_new)
        raw_a, raw_b = canonical(old), canonical(new)
        shown_a, shown_b = canonical(masked_old), canonical(masked_new)
        for kind_of_change, entries in diff.items():
            for deep_path in (entries if isinstance(entries, dict) else []):
                path = dotted(deep_path)
                if "added" in kind_of_change:
                    pair = (None, lookup(shown_b, deep_path))
                elif "removed" in kind_of_change:
                    pair = (lookup(shown_a, deep_path), None)
                else:
                    pair = (lookup(shown_a, deep_path), lookup(shown_b, deep_path))
                if stored_identically(path, lookup(raw_a, deep_path), lookup(raw_b, deep_path)):
                    change.same.append((path, *pair))
                    continue
                change.paths.append(path)
                if any(n.match(path) for n in noise):
                    change.notes.append(f"{path} changed (noise: pods roll because their configuration changed)")
                    continue
                change.fields.append((path, *pair))
        change.fields.sort(key=lambda r: r[0])
        change.same.sort(key=lambda r: r[0])
        change.paths.sort()
        if not change.fields and not change.notes:
            change.action = SAME
        changes.append(change)
    return changes
