"""The plan against what Argo CD did: each item predicted and observed, every disagreement named.

:func:`judge` walks the plan of one rehearsed step (``./dox diff``'s :class:`~doxops.diff.Change` list)
and the step's observations (:mod:`.observe`), item by item: created, changed (the fields, matched
by ``./dox diff``'s own path names), pruned, left requiring a prune, kept, refused by the API server,
and new pods. Whatever the cluster did that the plan does not mention is a disagreement too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ...diff import ADD, CHANGE, REMOVE, SAME, Change
from ...diff.formats import resource_lines
from ...diff.plan import KEPT, LEFT, PRUNED, PRUNED_ON_CONFIRM
from . import observe
from .replay import Step

#: Argo CD's own objects: pointed at the local remote in a rehearsal, so not compared with the plan.
ARGO_KINDS = ("Application", "AppProject")


@dataclass
class Item:
    """One resource: what the plan said (``predicted``: the diff's own lines) and what was seen."""

    title: str
    wave: int | None
    application: str
    predicted: list[str]
    observed: str
    agrees: bool
    why: str = ""


@dataclass
class Verdict:
    env: str
    step: Step
    items: list[Item] = field(default_factory=list)

    @property
    def disagreements(self) -> list[Item]:
        return [i for i in self.items if not i.agrees]

    @property
    def failure(self) -> str:
        if self.step.error:
            return f"the rehearsal could not finish: {self.step.error}"
        if self.step.outcome is None:
            return "the head was never pushed"
        return f"the sync failed: {self.step.outcome.reason}" if self.step.outcome.failed else ""

    @property
    def ok(self) -> bool:
        return not self.failure and not self.disagreements


def _under(leaf: str, path: str) -> bool:
    return leaf == path or leaf.startswith(path + ".") or leaf.startswith(path + "[")


def _fields(changed: dict) -> str:
    return ", ".join(f"{p}: {_short(a)} -> {_short(b)}" for p, (a, b) in changed.items())


def _short(value) -> str:
    text = "(none)" if value is None else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _observe_one(step: Step, key: tuple[str, str, str]) -> dict:
    before = step.before.objects.get(key) if step.before else None
    after = step.after.objects.get(key) if step.after else None
    outcome = step.outcome or observe.SyncOutcome()
    result = observe.result_for(outcome.results, key) or {}
    return {"before": before, "after": after, "refused": result.get("message") if result.get("status") ==
            "SyncFailed" else None, "requires": key in outcome.requires_pruning,
            "fields": observe.changed_paths(step.docs.get(key, []), before, after),
            "pods": step.new_pods.get(key[2]) if key[0] in observe.WORKLOAD_KINDS else None}


def _describe(seen: dict) -> str:
    parts = []
    if seen["before"] is None and seen["after"] is not None:
        parts.append("created")
    elif seen["before"] is not None and seen["after"] is None:
        parts.append("pruned (gone from the cluster)")
    elif seen["before"] is None and seen["after"] is None:
        parts.append("not in the cluster")
    if seen["refused"]:
        parts.append(f"refused by the API server: {seen['refused']}")
    if seen["fields"]:
        parts.append(f"changed {_fields(seen['fields'])}")
    if seen["requires"]:
        parts.append("left in the cluster, Application reports requiresPruning")
    if seen["pods"]:
        parts.append(f"new pods ({seen['pods']})")
    return "; ".join(parts) or "unchanged in the cluster"


def _judge_change(change: Change, seen: dict) -> tuple[bool, str]:
    before, after = seen["before"], seen["after"]
    if change.action == ADD:
        return (before is None and after is not None and not seen["refused"]), "planned to be created"
    if change.action == REMOVE:
        if change.outcome == PRUNED:
            return (before is not None and after is None), "planned to be pruned"
        if change.outcome == LEFT:
            return (after is not None and seen["requires"]), "planned to be left in the cluster, requiring a prune"
        if change.outcome in (KEPT, PRUNED_ON_CONFIRM):
            return after is not None, f"planned: {change.outcome}"
        return False, f"unknown planned outcome {change.outcome!r}"
    if change.action == SAME:
        return not seen["fields"] and not seen["refused"] and not seen["pods"], \
            "planned: no change to the cluster (stored identically)"
    # CHANGE
    if change.immutable:
        return bool(seen["refused"]), f"planned to be refused in place ({', '.join(change.immutable)})"
    if seen["refused"]:
        return False, "planned as an in-place change, but the API server refused it"
    planned = change.paths or [p for p, _, _ in change.fields]
    missing = [p for p in planned if not any(_under(leaf, p) for leaf in seen["fields"])]
    extra = [leaf for leaf in seen["fields"] if not any(_under(leaf, p) for p in planned)]
    why = []
    if missing:
        why.append(f"planned but not seen changed: {', '.join(missing)}")
    if extra:
        why.append(f"changed but not planned: {', '.join(extra)}")
    if change.key[2] in observe.WORKLOAD_KINDS:
        predicted, seen_pods = change.rollout.startswith("new pods"), bool(seen["pods"])
        if predicted != seen_pods:
            why.append(f"planned {'new pods' if predicted else 'no new pods'}, "
                       f"observed {'new pods' if seen_pods else 'no new pods'}")
    return not why, "; ".join(why) or "planned change seen"


def judge(env: str, step: Step) -> Verdict:
    verdict = Verdict(env, step)
    planned: set[tuple[str, str, str]] = set()
    for change in step.plan:
        _, _, kind, ns, name = change.key
        key = (kind, ns, name)
        planned.add(key)
        lines = [line.strip() for line in resource_lines(change, indent="")]
        if kind in ARGO_KINDS:
            verdict.items.append(Item(change.title, change.wave, change.application, lines,
                                      "not compared (Argo CD's own objects are pointed at the local remote)", True))
            continue
        seen = _observe_one(step, key)
        agrees, why = _judge_change(change, seen)
        verdict.items.append(Item(change.title, change.wave, change.application, lines, _describe(seen), agrees,
                                  "" if agrees else why))
    for key in sorted(step.docs):
        if key in planned or key[0] in ARGO_KINDS:
            continue
        seen = _observe_one(step, key)
        moved = (seen["before"] is None) != (seen["after"] is None)
        if moved or seen["fields"] or seen["refused"] or seen["pods"]:
            title = f"{key[0]} {key[1] + '/' if key[1] else ''}{key[2]}"
            verdict.items.append(Item(title, None, "", ["(not in the plan)"], _describe(seen), False,
                                      "the cluster changed where the plan says nothing"))
    return verdict


__all__ = ["ADD", "CHANGE", "REMOVE", "SAME", "Item", "Verdict", "judge"]
