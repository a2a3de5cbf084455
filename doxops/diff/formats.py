"""The plan as text, markdown (pull-request comment parts), JSON and unified YAML diffs."""

from __future__ import annotations

import difflib
import json
from itertools import groupby
from typing import Any

from .. import yamlio
from .compare import ADD, CHANGE, REMOVE, SAME, Change
from .plan import KEPT, LEFT, PRUNED, PRUNED_ON_CONFIRM

FORMATS = ("text", "markdown", "json")
MARKDOWN_LIMIT = 65536
#: A value longer than this is cut in the text and markdown outputs (JSON keeps it whole).
VALUE_LIMIT = 2000
#: Lines of a unified YAML diff kept per resource in text and markdown.
UNIFIED_LIMIT = 400
PART_BREAK = "\n<!-- dox-diff-part-break -->\n"


def _value(v: Any) -> str:
    if v is None:
        return "(none)"
    text = json.dumps(v, sort_keys=True) if isinstance(v, (dict, list, str)) else str(v)
    if len(text) > VALUE_LIMIT:
        text = f"{text[:VALUE_LIMIT]}... ({len(text) - VALUE_LIMIT} more characters; see --format json)"
    return text


def unified(change: Change) -> list[str]:
    """A unified diff of the resource's (masked) YAML, old against new."""
    title = f"{change.key[0]}/{change.title}"
    old = yamlio.dump(change.old).splitlines() if change.old is not None else []
    new = yamlio.dump(change.new).splitlines() if change.new is not None else []
    lines = list(difflib.unified_diff(old, new, f"a/{title}", f"b/{title}", n=3, lineterm=""))
    if not lines and change.action == CHANGE:  # every changed value is masked: say where, not what
        lines = [f"--- a/{title}", f"+++ b/{title}",
                 f"# changed, values masked: {', '.join(p for p, _, _ in change.fields)}"]
    if len(lines) > UNIFIED_LIMIT:
        lines = lines[:UNIFIED_LIMIT] + [f"... ({len(lines) - UNIFIED_LIMIT} more lines)"]
    return lines


def verb(change: Change) -> str:
    if change.action == REMOVE:
        return change.outcome or PRUNED
    return {ADD: "will be created", CHANGE: "will be changed", SAME: "no change to the cluster"}[change.action]


def _short(path: str) -> str:
    """``spec.template.spec.containers.name=app.resources.limits.cpu`` -> ``containers.app.resources.limits.cpu``."""
    return path.removeprefix("spec.template.spec.").replace(".name=", ".")


def _stored_identically(change: Change) -> str:
    return ", ".join(f"{_short(p)}: {_value(o)} = {_value(n)}" for p, o, n in change.same)


def resource_lines(change: Change, with_unified: bool = False, indent: str = "  ") -> list[str]:
    lines = [f"{indent}{change.action} {change.title} {verb(change)}"]
    pad = indent + "    "
    for path in change.immutable:
        lines.append(f"{pad}! cannot be changed in place: the sync fails unless the object is replaced ({path})")
    for path, old, new in change.fields:
        lines.append(f"{pad}{path}: {_value(old)} -> {_value(new)}")
    if change.same and change.action != SAME:
        lines.append(f"{pad}no change to the cluster (stored identically): {_stored_identically(change)}")
    for note in change.notes:
        if change.rollout.startswith("new pods") and "(noise: pods roll" in note:
            continue  # the rollout line says it
        lines.append(f"{pad}note: {note}")
    if change.rollout:
        lines.append(f"{pad}rollout: {change.rollout}")
    if with_unified and change.action != SAME:
        lines.extend(f"{pad}{line}" for line in unified(change))
    return lines


def counts(changes: list[Change]) -> dict[str, int]:
    outcome = [c.outcome for c in changes if c.action == REMOVE]
    return {"add": sum(c.action == ADD for c in changes), "change": sum(c.action == CHANGE for c in changes),
            "prune": sum(o in (PRUNED, PRUNED_ON_CONFIRM) for o in outcome), "left": outcome.count(LEFT),
            "kept": outcome.count(KEPT)}


def summary_lines(changes: list[Change]) -> list[str]:
    out = []
    for env, mine in groupby(sorted(changes, key=lambda c: c.key[0]), key=lambda c: c.key[0]):
        mine = list(mine)
        n = counts(mine)
        out.append(f"{env}: {n['add']} to add, {n['change']} to change, {n['prune']} to prune, "
                   f"{n['left']} left in the cluster (requires pruning), {n['kept']} kept")
        same = [c for c in mine if c.action == SAME]
        if same:
            out.append(f"{env}: no change to the cluster (written differently, stored identically): "
                       + "; ".join(f"{c.title} ({_stored_identically(c)})" for c in same))
        rolling = [c for c in mine if c.rollout]
        if rolling:
            new = [f"{c.title}{' (down during the rollout)' if 'down' in c.rollout else ''}"
                   for c in rolling if c.rollout.startswith("new pods")]
            quiet = [c.title for c in rolling if not c.rollout.startswith("new pods")]
            out.append(f"{env}: new pods: {', '.join(new) or 'none'}; no new pods: {', '.join(quiet) or 'none'}")
    return out or ["no changes"]


def _groups(changes: list[Change]):
    """(environment, Application, wave, changes) in plan order; resources stored identically left out."""
    shown = [c for c in changes if c.action != SAME]
    for (env, app), mine in groupby(shown, key=lambda c: (c.key[0], c.application)):
        for wave, in_wave in groupby(mine, key=lambda c: c.wave):
            yield env, app, wave, list(in_wave)


def to_text(changes: list[Change], with_unified: bool = False) -> str:
    lines = summary_lines(changes)
    last = None
    for env, app, wave, mine in _groups(changes):
        if (env, app) != last:
            lines += ["", f"{env}, {app}:"]
            last = (env, app)
        lines.append(f"  wave {wave}:")
        for change in mine:
            lines.extend(resource_lines(change, with_unified, indent="    "))
    return "\n".join(lines) + "\n"


def to_markdown(changes: list[Change], limit: int = MARKDOWN_LIMIT, with_unified: bool = False) -> list[str]:
    """Pull-request comments: numbered parts under ``limit`` characters, whole resources per part."""
    head = "### Rendered diff\n\n" + "\n".join(f"- {line}" for line in summary_lines(changes)) + "\n"
    blocks, last = [], None
    for env, app, wave, mine in _groups(changes):
        for change in mine:
            header = f"\n#### {env}: {app}\n" if (env, app) != last else ""  # kept with its first resource
            last = (env, app)
            body = "\n".join(resource_lines(change, with_unified))
            if len(body) > limit - 2000:  # one resource alone must still fit a comment
                body = body[:limit - 2000] + "\n... (cut to fit a comment; see --format json)"
            blocks.append(f"{header}\n<details><summary><code>{env}</code> wave {wave}: {change.action} "
                          f"{change.title} {verb(change)}</summary>\n\n```diff\n{body}\n```\n</details>\n")
    parts, current = [], head
    for block in blocks:
        if len(current) + len(block) + 40 > limit and current:
            parts.append(current)
            current = ""
        current += block
    parts.append(current)
    if len(parts) > 1:
        parts = [f"**Part {i} of {len(parts)}**\n\n{p}" for i, p in enumerate(parts, 1)]
    return parts


def to_json(changes: list[Change]) -> str:
    return json.dumps([{
        "environment": c.key[0], "group": c.key[1], "kind": c.key[2], "namespace": c.key[3], "name": c.key[4],
        "action": {ADD: "add", REMOVE: "remove", CHANGE: "change", SAME: "none"}[c.action],
        "outcome": verb(c), "application": c.application, "wave": c.wave,
        "fields": [{"path": p, "old": o, "new": n} for p, o, n in c.fields],
        "storedIdentically": [{"path": p, "old": o, "new": n} for p, o, n in c.same],
        "rollout": c.rollout, "immutable": c.immutable, "notes": c.notes,
    } for c in changes], indent=2, default=str)


def to_unified(changes: list[Change]) -> str:
    """Only the masked unified YAML diffs, one per resource that changes in the cluster."""
    return "\n".join(line for c in changes if c.action != SAME for line in unified(c)) + "\n"
