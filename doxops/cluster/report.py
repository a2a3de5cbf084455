"""What an e2e run reports: checks (real assertions), observations (what was seen) and the conclusion.

Both runs (the plain e2e of :mod:`.e2e` and the Argo CD run of :mod:`.argocd`) fill an
:class:`EnvReport` per environment. A :class:`Check` is an assertion that could have gone
the other way; a milestone reached after a wait (a Namespace applied, Argo CD started, a first
sync) is an *observation*, not a check: had the wait failed, the wait itself is recorded as a
failed check (see :meth:`doxops.cluster.harness.Harness.wait`). :func:`conclude` prints every
report and raises :class:`~doxops.errors.Findings` (exit 1) naming each failed check.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from ..errors import Findings
from ..progress import Progress


@dataclass
class Check:
    """One assertion: its name, whether it held, and what was seen."""

    name: str
    ok: bool
    detail: str = ""


@dataclass
class EnvReport:
    """Everything one environment's run found; ``ok`` only when at least one check ran and none failed."""

    env: str
    seconds: float = 0.0
    checks: list[Check] = field(default_factory=list)
    observations: list[str] = field(default_factory=list)
    not_done: list[str] = field(default_factory=list)
    workdir: str = ""
    #: The run's name in the report's first line.
    title: str = "e2e"

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    def text(self) -> str:
        lines = [f"{self.title} {self.env}: {'PASSED' if self.ok else 'FAILED'} in {self.seconds:.0f} s "
                 f"({len(self.checks)} checks, {len(self.failures)} failed)"]
        lines += [f"  [{'ok' if c.ok else 'FAIL'}] {c.name}" + (f": {c.detail}" if c.detail else "")
                  for c in self.checks]
        lines += [f"  observed: {o}" for o in self.observations]
        lines += [f"  not done: {n}" for n in self.not_done]
        if self.workdir:
            lines.append(f"  work directory (logs) kept: {self.workdir}")
        return "\n".join(lines)


class ScenarioFailed(Exception):
    """A step the rest of the scenario depends on failed; the report says which."""


def attempt(report: EnvReport, step: Callable[[], None]) -> bool:
    """Run one scenario step; a failed requirement or an unexpected error becomes a failed check."""
    try:
        step()
        return True
    except ScenarioFailed:
        return False
    except Exception as exc:  # noqa: BLE001 - reported with its message; the other steps still run
        name = getattr(step, "__name__", "a step").replace("_", " ")
        report.checks.append(Check(f"{name} ran to the end", False, f"{type(exc).__name__}: {exc}"))
        return False


def conclude(what: str, reports: list[EnvReport], progress: Progress) -> list[EnvReport]:
    """Print every report; raise Findings (exit 1) naming each failed check, or return the reports."""
    for report in reports:
        progress(report.text())
    failed = [r for r in reports if not r.ok]
    if failed:
        raise Findings(f"{what} failed:\n" + "\n".join(
            f"  {r.env}: {c.name}: {c.detail}" for r in failed for c in (r.failures or [Check("no check ran", False)]))
            + "\n(logs: " + ", ".join(r.workdir or "none" for r in failed) + ")")
    return reports
