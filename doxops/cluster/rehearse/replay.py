"""One environment's rehearsal: a throwaway control plane with Argo CD, the remote at base, then each head pushed.

:func:`rehearse_env` builds what the Argo CD run builds (:mod:`doxops.cluster.argocd`: the cluster,
its simulators, Argo CD, ``./dox argocd-bootstrap``, the first sync to Synced/Healthy), but its
remote holds commits of the repository (:class:`~.refs.RefRemote`). Then, for each head in turn (a
chain shares one control plane), it computes ``./dox diff``'s plan for previous..head, pushes the
head and records what Argo CD did (:class:`Step`) until the sync is done or fails. Every socket is
sampled from the cluster's start; the teardown is checked (every process stopped, every port closed).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import yaml

from ...diff import Change, run_diff
from ...environments import Environment
from ..cluster import Cluster
from ..harness import Progress
from ..report import Check, EnvReport, attempt
from ..simulators import Simulators
from ..sockets import SocketSampler
from ..watch import PodWatch
from ..argocd import ArgoCD, ArgoScenario, metrics_listener, redis_server
from ..argocd.harness import short
from ..argocd.run import teardown_check
from . import observe
from .refs import RefRemote, tree_files

#: How long a pushed head may take to be synced (or to fail) before the rehearsal says it timed out.
SYNC_TIMEOUT = 180.0

Tamper = Callable[[list[Change]], list[Change]]


@dataclass
class Step:
    """One head rehearsed: the plan, and what the cluster showed before and after the push."""

    base: str
    head: str
    plan: list[Change] = field(default_factory=list)
    pushed: str = ""
    seconds: float | None = None
    outcome: observe.SyncOutcome | None = None
    docs: dict[tuple[str, str, str], list[dict]] = field(default_factory=dict)
    before: observe.Snapshot | None = None
    after: observe.Snapshot | None = None
    new_pods: dict[str, str] = field(default_factory=dict)
    gaps: dict[str, float] = field(default_factory=dict)
    error: str = ""
    #: Whether the plan knows which changes the API server refuses in place.
    immutability: str = ""


@dataclass
class Rehearsal:
    """One environment: its set-up and teardown checks (``report``) and its steps."""

    env: str
    report: EnvReport
    steps: list[Step] = field(default_factory=list)


def _workload_docs(root: Path, commit: str, env: str) -> list[dict]:
    docs = []
    for rel, data in sorted(tree_files(root, commit, f"rendered/{env}/workloads").items()):
        docs += [d for d in yaml.safe_load_all(data) if isinstance(d, dict)]
    return docs


def _quiet(_: str) -> None:
    pass


def immutable_verdict(root: Path):
    """The API server's verdict on in-place changes that ``./dox diff`` uses (``ImmutableCheck``, from the
    API-server stage), when this checkout has it; else None: the plan then cannot say "cannot be changed in
    place", and a refused change is a disagreement."""
    try:
        from ...validate import server  # noqa: PLC0415
    except ImportError:
        return None
    check = getattr(server, "ImmutableCheck", None)
    if check is None:
        return None
    from ... import environments  # noqa: PLC0415

    return check(progress=_quiet, kubernetes_versions={e.name: e.kubernetes_version
                                                      for e in environments.discover(root)})


def rehearse_env(env: Environment, paths: dict[str, Path], root: Path, base: str, heads: list[str], *,
                 keep: bool = False, progress: Progress = print, tamper: Tamper | None = None) -> Rehearsal:
    """Rehearse base -> heads[0] -> heads[1] ... on one control plane; never raises for what it observes."""
    report = EnvReport(env.name, title="rehearse")
    result = Rehearsal(env.name, report)
    started = time.monotonic()
    scratch = Path(tempfile.mkdtemp(prefix=f"dox-rehearse-{env.name}-"))
    say = lambda message: progress(f"[{env.name} rehearse] {message}")  # noqa: E731
    cluster = Cluster(scratch / "cluster", binaries=paths, keep=keep, progress=say, name=f"rehearse-{env.name}")
    argocd = ArgoCD(scratch / "argocd", cluster.kubeconfig_path, str(paths["argocd"]), redis_server(),
                    taken=set(vars(cluster.ports).values()), progress=say)
    stopped = False
    try:
        remote = RefRemote(scratch / "git", env, root, say)
        pushed, problems = remote.create_at(base)
        report.checks.append(Check(f"local remote {remote.url} at base {short(base)} (pushed as {short(pushed)}, "
                                   f"settings pointed at it); rendered/{env.name} keeps its meaning", not problems,
                                   "; ".join(problems[:5]) or "workloads byte-identical to the commit's"))
        with cluster, SocketSampler(lambda: cluster.processes + argocd.processes,
                                    metrics_listener(argocd.ports.controller_metrics),
                                    name=f"dox-rehearse-sockets-{env.name}") as sampler:
            scenario = ArgoScenario(env, cluster, remote, argocd, report, say)
            scenario.head = pushed
            try:
                with Simulators(cluster.api) as simulators:
                    setup = (scenario.guard, scenario.provide_storage, scenario.apply_crds_and_namespaces,
                             lambda: scenario.provide_secrets_as_user(simulators), scenario.start_argocd,
                             scenario.bootstrap, scenario.first_sync)
                    if all(attempt(report, step) for step in setup):
                        previous = base
                        for head in heads:
                            step = _rehearse_step(scenario, remote, root, previous, head, tamper, say)
                            result.steps.append(step)
                            if step.error or (step.outcome and step.outcome.failed):
                                break  # a failed sync leaves the cluster between two commits
                            previous = head
                    attempt(report, lambda: scenario.loopback_argocd(sampler))
                    if simulators.errors:
                        report.checks.append(Check("simulators ran without errors", False,
                                                   "; ".join(simulators.errors[:3])))
            finally:
                if not report.ok:
                    report.observations.append("log tails:\n" + "\n\n".join(
                        p.describe() for p in argocd.processes + cluster.processes))
                    cluster.mark_failed()
                argocd.stop()
        stopped = True
    except Exception as exc:  # noqa: BLE001 - start-up errors carry their log tails in the message
        cluster.mark_failed()
        report.checks.append(Check("the rehearsal itself", False, f"{type(exc).__name__}: {exc}"))
    finally:
        argocd.stop()
        if not stopped:
            cluster.stop()
        report.checks.append(teardown_check(argocd, cluster))
        report.seconds = time.monotonic() - started
        if report.ok and not keep and all(not s.error for s in result.steps):
            shutil.rmtree(scratch, ignore_errors=True)
        else:
            report.workdir = str(scratch)
    return result


def _rehearse_step(scenario: ArgoScenario, remote: RefRemote, root: Path, base: str, head: str,
                   tamper: Tamper | None, say: Progress) -> Step:
    step = Step(base, head)
    env, ns, api = scenario.env.name, scenario.namespace, scenario.api
    try:
        verdict = immutable_verdict(root)
        try:
            step.plan = run_diff(base, head, env=env, root=root, progress=_quiet, immutable=verdict)
        finally:
            if verdict is not None:
                verdict.close()
        step.immutability = "checked by the API server" if verdict is not None and not \
            getattr(verdict, "unjudged", None) else ("not checked: " + "; ".join(verdict.unjudged) if verdict
                                                     else "not checked (no API-server verdict in this checkout)")
        if tamper:
            step.plan = tamper(step.plan)
        base_docs, head_docs = _workload_docs(root, base, env), _workload_docs(root, head, env)
        for doc in base_docs + head_docs:
            step.docs.setdefault(observe.object_key(doc, ns), []).append(doc)
        every = base_docs + [d for d in head_docs if observe.object_key(d, ns) not in
                             {observe.object_key(b, ns) for b in base_docs}]
        step.before = observe.take(api, every, ns)
        watch = PodWatch(api, ns, "")
        try:
            step.pushed, problems = remote.move_to(head)
            pushed_at = time.monotonic()
            if problems:
                scenario.check(f"head {short(head)} pushed as {short(step.pushed)}; rendered/{env} keeps its meaning",
                               False, "; ".join(problems[:5]))
            say(f"head {short(head)} pushed as {short(step.pushed)}; {len(step.plan)} planned change(s)")
            outcome = observe.SyncOutcome()
            deadline = pushed_at + SYNC_TIMEOUT
            while time.monotonic() < deadline:
                outcome = observe.sync_outcome(scenario.app(scenario.child), step.pushed)
                if outcome.done or outcome.failed:
                    break
                time.sleep(0.5)
            step.seconds = time.monotonic() - pushed_at
            if not (outcome.done or outcome.failed):
                outcome.failed = True
                outcome.reason = (f"not Synced/Healthy at {short(step.pushed)} within {SYNC_TIMEOUT:.0f} s: "
                                  f"{scenario.summary()}")
            step.outcome = outcome
        finally:
            watch.stop()
        step.after = observe.take(api, every, ns)
        created = [e.pod for e in watch.timeline if e.what == "created"]
        step.new_pods = observe.new_pods(step.before, step.after, created)
        for doc in head_docs:
            strategy = ((doc.get("spec") or {}).get("strategy") or {}).get("type")
            name = doc["metadata"]["name"]
            if doc["kind"] == "Deployment" and strategy == "Recreate" and name in step.new_pods:
                old = {p for p in watch.initial if p.startswith(name + "-")}
                gap = observe.recreate_gap(watch.timeline, old, name)
                if gap is not None:
                    step.gaps[name] = gap
        scenario.reload()
        say(f"head {short(head)}: sync {'failed' if outcome.failed else 'done'} in {step.seconds:.1f} s"
            + (f": {outcome.reason}" if outcome.failed else ""))
    except Exception as exc:  # noqa: BLE001 - reported as the step's error, with what it was doing
        step.error = f"{type(exc).__name__}: {exc}"
        say(f"head {short(head)}: the rehearsal step failed: {step.error}")
    return step
