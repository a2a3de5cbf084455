"""A validation report and its output formats: light to import (a warm no-op prints one without loading the stages)."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from ..progress import Progress, stderr as _stderr
from ..errors import Findings, UsageError
from . import diagnostics as diag

FORMATS = ("text", "json", "junit", "sarif")


@dataclass
class Report:
    """Diagnostics of one validation target (an environment or a directory)."""

    name: str
    resources: int
    diagnostics: list[diag.Diagnostic] = field(default_factory=list)
    seconds: float = 0.0
    cached: bool = False

    @property
    def errors(self) -> int:
        return sum(1 for d in self.diagnostics if d.level == "error")


def emit(reports: list[Report], fmt: str, out=None, progress: Progress = _stderr) -> None:
    """Print the reports in ``fmt`` to ``out`` (default stdout; the summary lines go to ``progress``).

    Raises UsageError for an unknown format and Findings (exit 1) when any report has an error."""
    out = out or sys.stdout
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    everything = [d for r in reports for d in r.diagnostics]
    resources = sum(r.resources for r in reports)
    if fmt == "text":
        for d in everything:
            print(d.text(), file=out)
        if len(everything) > 5:
            print("\n" + diag.table(everything), file=out)
        for r in reports:
            timing = "unchanged since the last validation" if r.cached else f"{r.seconds:.2f} s"
            progress(f"validate {r.name}: {diag.summary(r.diagnostics, r.resources)} ({timing})")
    elif fmt == "json":
        print(diag.to_json(everything, resources), file=out)
    elif fmt == "junit":
        print(diag.to_junit(everything, resources), file=out, end="")
    else:
        from . import server as server_mod  # noqa: PLC0415 - only SARIF names every rule
        from .rules import REGISTRY  # noqa: PLC0415

        docs = {rid: (m.__doc__ or rid).strip().splitlines()[0] for rid, m in REGISTRY.items()}
        docs["schema"] = "kubeconform: strict schema validation"
        docs[server_mod.RULE] = "the pinned kube-apiserver's dry-run apply: rejections and warnings"
        docs[server_mod.STORED_RULE] = "every field a manifest sets is stored by the API server with the same value"
        print(diag.to_sarif(everything, docs), file=out)
    errors = sum(r.errors for r in reports)
    if errors:
        raise Findings(f"validation found {errors} error{'s' if errors != 1 else ''} in {resources} resources")
