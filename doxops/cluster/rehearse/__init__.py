"""``./dox rehearse``: replay a pull request on a local control plane with the real Argo CD, and check the plan.

Per environment (side by side): a throwaway control plane with Argo CD bootstrapped by
``./dox argocd-bootstrap`` (:mod:`doxops.cluster.argocd`), the environment's local remote at the base
commit, synced to Synced/Healthy, then the remote moved to the head: what Argo CD did is recorded
(:mod:`.observe`) and compared with ``./dox diff``'s plan for base..head (:mod:`.verdict`), then
reported (:mod:`.formats`). Modules: :mod:`.refs` (the commits and the remote), :mod:`.replay` (the run).

Exit codes: 0 plan and rehearsal agree and every sync succeeded; 1 a disagreement, a failed sync or a
failed check of the run itself; 2 usage (dirty tree, no base, unknown ref or environment); 3 tools.
"""

from __future__ import annotations

from pathlib import Path

from ...progress import stderr as _stderr
from ... import environments
from ...errors import Findings, UsageError
from ...paths import REPO_ROOT
from ..harness import Progress
from ..argocd import preflight
from .formats import FORMATTERS
from .refs import resolve
from .replay import Rehearsal, Step, Tamper, rehearse_env
from .verdict import Verdict, judge

__all__ = ["FORMATTERS", "Rehearsal", "Step", "Tamper", "Verdict", "conclude", "judge", "rehearse", "rehearse_chain",
           "resolve"]


def rehearse_chain(env_names: list[str] | None, base: str, heads: list[str], *, root: Path = REPO_ROOT,
                   keep: bool = False, progress: Progress = print, parallel: bool = True,
                   paths: dict[str, Path] | None = None, tamper: Tamper | None = None
                   ) -> tuple[list[Rehearsal], list[Verdict]]:
    """Rehearse base -> heads[0] -> ... per environment (one control plane each); never raises for findings."""
    from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415

    from .. import binaries  # noqa: PLC0415

    envs = environments.select(",".join(env_names) if env_names else None, root) if env_names else \
        environments.discover(root)
    preflight()
    paths = paths or binaries.ensure(progress=progress).paths

    def one(env):
        return rehearse_env(env, paths, root, base, heads, keep=keep, progress=progress, tamper=tamper)

    if parallel and len(envs) > 1:
        with ThreadPoolExecutor(max_workers=len(envs)) as pool:
            rehearsals = list(pool.map(one, envs))
    else:
        rehearsals = [one(e) for e in envs]
    verdicts = [judge(r.env, step) for r in rehearsals for step in r.steps]
    return rehearsals, verdicts


def rehearse(env: str | None = None, base: str | None = None, head: str | None = None, fmt: str = "text",
             keep: bool = False, root: Path = REPO_ROOT, progress: Progress | None = None,
             tamper: Tamper | None = None, paths: dict[str, Path] | None = None) -> str:
    """The ``./dox rehearse`` task: prints the report; raises Findings (exit 1) unless everything agrees."""
    if fmt not in FORMATTERS:
        raise UsageError(f"--format {fmt!r}: choose one of {', '.join(FORMATTERS)}")
    progress = progress or _stderr  # stdout is the report alone (a pull-request comment with --format markdown)
    base_commit, head_commit = resolve(root, base, head)
    names = [n.strip() for n in env.split(",") if n.strip()] if env else None
    if names:
        known = {e.name for e in environments.discover(root)}
        unknown = sorted(set(names) - known)
        if unknown:
            raise UsageError(f"unknown environment {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    rehearsals, verdicts = rehearse_chain(names, base_commit, [head_commit], root=root, keep=keep,
                                          progress=progress, paths=paths, tamper=tamper)
    text = FORMATTERS[fmt](rehearsals, verdicts)
    print(text, flush=True)
    conclude(rehearsals, verdicts)
    return text


def conclude(rehearsals: list[Rehearsal], verdicts: list[Verdict]) -> None:
    """Raise Findings (exit 1) naming every failed sync, disagreement and failed check; else return."""
    problems = [f"{v.env}: {v.failure}" for v in verdicts if v.failure]
    problems += [f"{v.env}: {i.title}: {i.why}" for v in verdicts for i in v.disagreements]
    problems += [f"{r.env}: {c.name}: {c.detail[:400]}" for r in rehearsals for c in r.report.failures]
    problems += [f"{r.env}: no step was rehearsed (set-up failed)" for r in rehearsals if not r.steps
                 and not r.report.failures]
    if problems:
        raise Findings("rehearse: the plan and the rehearsal do not agree, or the rehearsal failed:\n  "
                       + "\n  ".join(problems))
