"""The rehearsal report as text, markdown (a pull-request comment) and JSON.

Each item is the plan's own lines (``./dox diff``'s format), marked ``predicted``, then an
``observed`` line and whether the two agree; the summary says the sync's final phase and the time
from push to Synced/Healthy, which workloads started new pods (in which wave) and every disagreement.
"""

from __future__ import annotations

import json

from ...diff import summary_lines
from .replay import Rehearsal
from .verdict import Verdict


def _head_line(env: str, verdict: Verdict) -> str:
    step = verdict.step
    phase = step.outcome.phase if step.outcome else "not run"
    timing = f"{step.seconds:.1f} s from push to {'Synced/Healthy' if not verdict.failure else 'the failure'}" \
        if step.seconds is not None else "no timing"
    state = "FAILED: " + verdict.failure if verdict.failure else \
        (f"{len(verdict.disagreements)} disagreement(s) between plan and rehearsal" if verdict.disagreements
         else "plan and rehearsal agree")
    return f"rehearse {env}: {step.base[:7]} -> {step.head[:7]}: sync {phase or 'none'}, {timing}; {state}"


def _pods(verdict: Verdict) -> str:
    waves = {i.title.split("/")[-1]: i.wave for i in verdict.items if i.title.split(" ")[0] in
             ("Deployment", "StatefulSet")}
    parts = []
    for name, how in sorted(verdict.step.new_pods.items()):
        wave = waves.get(name)
        gap = verdict.step.gaps.get(name)
        parts.append(f"{name}{f' (wave {wave})' if wave is not None else ''}: {how}"
                     + (f"; Recreate: {gap:.2f} s with no pod" if gap is not None else ""))
    return "; ".join(parts) or "none"


def to_text(rehearsals: list[Rehearsal], verdicts: list[Verdict]) -> str:
    lines: list[str] = []
    for verdict in verdicts:
        lines.append(_head_line(verdict.env, verdict))
        lines += [f"  predicted: {s}" for s in summary_lines(verdict.step.plan) if verdict.step.plan]
        lines.append(f"  observed: new pods: {_pods(verdict)}")
        if verdict.step.immutability:
            lines.append(f"  plan: immutable fields {verdict.step.immutability}")
        last = None
        for item in verdict.items:
            if (item.application, item.wave) != last and item.application:
                lines.append(f"  {item.application}, wave {item.wave}:")
                last = (item.application, item.wave)
            mark = "agrees" if item.agrees else "DISAGREES"
            lines.append(f"    predicted: {item.predicted[0]}")
            lines += [f"        {line}" for line in item.predicted[1:]]
            lines.append(f"    observed:  {item.observed} [{mark}]" + (f" ({item.why})" if item.why else ""))
        if verdict.disagreements:
            lines.append("  disagreements:")
            lines += [f"    - {i.title}: {i.why}; observed {i.observed}" for i in verdict.disagreements]
    for rehearsal in rehearsals:
        failed = rehearsal.report.failures
        lines.append(f"rehearse {rehearsal.env}: control plane {rehearsal.report.seconds:.0f} s in all; "
                     + (f"{len(failed)} failed check(s): " + "; ".join(f"{c.name}: {c.detail}" for c in failed)
                        if failed else f"{len(rehearsal.report.checks)} checks passed (set-up, loopback, teardown)"))
        if rehearsal.report.workdir:
            lines.append(f"  work directory (logs) kept: {rehearsal.report.workdir}")
    return "\n".join(lines)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(rehearsals: list[Rehearsal], verdicts: list[Verdict]) -> str:
    lines = ["### Rehearsal on a local control plane with Argo CD", ""]
    for verdict in verdicts:
        lines.append(f"- {'✅' if verdict.ok else '❌'} {_head_line(verdict.env, verdict)}")
        lines.append(f"- {verdict.env}: new pods (observed): {_pods(verdict)}")
        if verdict.step.immutability:
            lines.append(f"- {verdict.env}: immutable fields in the plan: {verdict.step.immutability}")
    for verdict in verdicts:
        if not verdict.items:
            continue
        lines += ["", f"#### {verdict.env}", "", "| wave | resource | predicted | observed | |", "|---|---|---|---|---|"]
        for item in verdict.items:
            lines.append(f"| {'' if item.wave is None else item.wave} | `{_cell(item.title)}` | "
                         f"{_cell('<br>'.join(item.predicted[:6]))} | {_cell(item.observed)} | "
                         f"{'agrees' if item.agrees else '**disagrees**: ' + _cell(item.why)} |")
    bad = [r for r in rehearsals if r.report.failures]
    if bad:
        lines += ["", "Failed checks of the rehearsal itself:"]
        lines += [f"- {r.env}: {c.name}: {_cell(c.detail[:300])}" for r in bad for c in r.report.failures]
    return "\n".join(lines)


def to_json(rehearsals: list[Rehearsal], verdicts: list[Verdict]) -> str:
    out = {"environments": []}
    for rehearsal in rehearsals:
        mine = [v for v in verdicts if v.env == rehearsal.env]
        out["environments"].append({
            "env": rehearsal.env, "seconds": round(rehearsal.report.seconds, 1),
            "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in rehearsal.report.checks],
            "steps": [{"base": v.step.base, "head": v.step.head, "phase": v.step.outcome.phase if v.step.outcome
                       else None, "seconds_to_synced": None if v.step.seconds is None else round(v.step.seconds, 2),
                       "failure": v.failure, "ok": v.ok, "new_pods": v.step.new_pods, "recreate_gaps": v.step.gaps,
                       "immutability": v.step.immutability,
                       "items": [{"resource": i.title, "wave": i.wave, "application": i.application,
                                  "predicted": i.predicted, "observed": i.observed, "agrees": i.agrees,
                                  "why": i.why} for i in v.items]} for v in mine]})
    return json.dumps(out, indent=2)


FORMATTERS = {"text": to_text, "markdown": to_markdown, "json": to_json}
