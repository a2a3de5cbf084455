"""One diagnostic type for every stage and every output format.

The plain format is ``path:line:col: [level] message (rule-id)``, followed by
``  from <template>`` when the resource says which chart template made it.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field

LEVELS = ("error", "warning", "info")


@dataclass(frozen=True, order=True)
class Diagnostic:
    path: str
    line: int
    col: int
    level: str
    message: str
    rule: str
    source: str = field(default="", compare=False)

    def text(self) -> str:
        out = f"{self.path}:{self.line}:{self.col}: [{self.level}] {self.message} ({self.rule})"
        if self.source:
            out += f"\n    from {self.source}"
        return out


def summary(diagnostics: list[Diagnostic], resources: int) -> str:
    counts = Counter(d.level for d in diagnostics)
    parts = [f"{counts.get(level, 0)} {level}{'s' if counts.get(level, 0) != 1 else ''}" for level in ("error", "warning")]
    return f"{resources} resources checked: {', '.join(parts)}"


def table(diagnostics: list[Diagnostic]) -> str:
    """Counts per rule and level, for the end of a long run."""
    counts = Counter((d.rule, d.level) for d in diagnostics)
    if not counts:
        return ""
    width = max(len(rule) for rule, _ in counts)
    lines = [f"{'rule':<{width}}  level    count"]
    for (rule, level), n in sorted(counts.items()):
        lines.append(f"{rule:<{width}}  {level:<7}  {n:>5}")
    return "\n".join(lines)


def to_json(diagnostics: list[Diagnostic], resources: int) -> str:
    counts = Counter(d.level for d in diagnostics)
    return json.dumps(
        {"resources": resources, "errors": counts.get("error", 0), "warnings": counts.get("warning", 0),
         "diagnostics": [asdict(d) for d in diagnostics]},
        indent=2,
    )


def to_junit(diagnostics: list[Diagnostic], resources: int) -> str:
    from xml.sax.saxutils import escape, quoteattr  # noqa: PLC0415 - its import loads urllib and ssl

    errors = [d for d in diagnostics if d.level == "error"]
    cases = []
    for d in diagnostics:
        body = f'<failure message={quoteattr(d.message)} type="{d.level}">{escape(d.text())}</failure>' \
            if d.level == "error" else f"<system-out>{escape(d.text())}</system-out>"
        cases.append(f'    <testcase classname={quoteattr(d.rule)} name={quoteattr(f"{d.path}:{d.line}")}>{body}</testcase>')
    if not diagnostics:
        cases.append('    <testcase classname="validate" name="all resources"/>')
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<testsuites><testsuite name="dox-validate" tests="{max(len(diagnostics), 1)}" failures="{len(errors)}">\n'
        + "\n".join(cases) + "\n</testsuite></testsuites>\n"
    )


def to_sarif(diagnostics: list[Diagnostic], rules_doc: dict[str, str]) -> str:
    rule_ids = sorted({d.rule for d in diagnostics})
    level_map = {"error": "error", "warning": "warning", "info": "note"}
    return json.dumps({
        "version": "2.1.0",
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "runs": [{
            "tool": {"driver": {
                "name": "dox-validate",
                "rules": [{"id": r, "shortDescription": {"text": rules_doc.get(r, r)}} for r in rule_ids],
            }},
            "results": [{
                "ruleId": d.rule,
                "level": level_map.get(d.level, "note"),
                "message": {"text": d.message + (f" (from {d.source})" if d.source else "")},
                "locations": [{"physicalLocation": {
                    "artifactLocation": {"uri": d.path},
                    "region": {"startLine": d.line, "startColumn": d.col},
                }}],
            } for d in diagnostics],
        }],
    }, indent=2)
