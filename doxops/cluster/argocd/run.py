"""The Argo CD run of each environment, from the local remote to teardown, and its report.

:func:`run_env` creates the remote, starts the cluster, its simulators and Argo CD, samples every
socket from the cluster's start to the end, runs the scenarios in order (a failed one stops the
rest), and checks the teardown: every process stopped, every port closed.
"""

from __future__ import annotations

import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import Callable

import yaml

from ...environments import Environment
from ...paths import REPO_ROOT
from ..cluster import LOOPBACK, Cluster
from ..harness import Progress, run_each
from ..report import Check, EnvReport, attempt, conclude
from ..simulators import Simulators
from ..sockets import SocketSampler
from .harness import short
from .install import ArgoCD, git_binary, metrics_listener, redis_server
from .remote import IN_CLUSTER, GitRemote, meaning_differences
from .scenarios import ArgoScenario

def run_env(env: Environment, paths: dict[str, Path], *, keep: bool = False, progress: Progress = print) -> EnvReport:
    """One environment, from the local remote to teardown; never raises for a failed check (the report says it)."""
    report = EnvReport(env.name, title="e2e --argocd")
    started = time.monotonic()
    scratch = Path(tempfile.mkdtemp(prefix=f"dox-argocd-{env.name}-"))
    say = lambda message: progress(f"[{env.name} argocd] {message}")  # noqa: E731
    cluster = Cluster(scratch / "cluster", binaries=paths, keep=keep, progress=say, name=f"argocd-{env.name}")
    argocd = ArgoCD(scratch / "argocd", cluster.kubeconfig_path, str(paths["argocd"]), redis_server(),
                    taken=set(vars(cluster.ports).values()), progress=say)
    stopped = False
    try:
        remote = GitRemote(scratch / "git", env, say)
        original = yaml.safe_load((REPO_ROOT / "environments" / env.name / "argocd" / "settings.yaml").read_text())
        first, head = remote.create()
        problems = meaning_differences(REPO_ROOT / "rendered" / env.name, remote.rendered, {
            (original["spec"]["repoURL"], remote.url), (original["spec"]["destination"]["server"], IN_CLUSTER)})
        report.checks.append(Check(
            f"local remote {remote.url}: {short(first)} (the repository) + {short(head)} (settings.yaml pointed "
            f"at it and at {IN_CLUSTER}); rendered/{env.name} keeps its meaning", not problems,
            "; ".join(problems[:5]) or "workloads byte-identical, Argo CD objects differ in repoURL and destination "
            "only"))
        # Every socket of the control plane and of Argo CD, sampled from the cluster's start to the end.
        with cluster, SocketSampler(lambda: cluster.processes + argocd.processes,
                                    metrics_listener(argocd.ports.controller_metrics),
                                    name=f"dox-argocd-sockets-{env.name}") as sampler:
            scenario = ArgoScenario(env, cluster, remote, argocd, report, say)
            scenario.head = head
            try:
                with Simulators(cluster.api) as simulators:
                    def provide_secrets() -> None:
                        scenario.provide_secrets_as_user(simulators)

                    setup = (scenario.guard, scenario.provide_storage, scenario.apply_crds_and_namespaces,
                             provide_secrets, scenario.start_argocd, scenario.bootstrap)
                    if all(attempt(report, step) for step in setup):
                        if attempt(report, scenario.first_sync):
                            for step in (scenario.pull_request, scenario.prune, scenario.self_heal,
                                         scenario.steady_state):
                                if not attempt(report, step):
                                    break

                        def loopback() -> None:
                            scenario.loopback_argocd(sampler)

                        attempt(report, loopback)
                    if simulators.errors:
                        report.checks.append(Check("simulators ran without errors", False,
                                                   "; ".join(simulators.errors[:3])))
            finally:
                if not report.ok:
                    report.observations.append("Argo CD state: " + _safe(scenario.summary))
                    report.observations.append("log tails:\n" + "\n\n".join(
                        p.describe() for p in argocd.processes + cluster.processes))
                    cluster.mark_failed()
                argocd.stop()
        stopped = True
    except Exception as exc:  # noqa: BLE001 - start-up errors carry their log tails in the message
        cluster.mark_failed()
        report.checks.append(Check("the run itself", False, f"{type(exc).__name__}: {exc}"))
    finally:
        argocd.stop()
        if not stopped:
            cluster.stop()
        report.checks.append(teardown_check(argocd, cluster))
        report.seconds = time.monotonic() - started
        if report.ok and not keep:
            shutil.rmtree(scratch, ignore_errors=True)
        else:
            report.workdir = str(scratch)
    return report


def _safe(function: Callable[[], str]) -> str:
    try:
        return function()
    except Exception as exc:  # noqa: BLE001 - a summary for a failure report
        return f"(unavailable: {type(exc).__name__}: {exc})"


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((LOOPBACK, port)) == 0


def teardown_check(argocd: ArgoCD, cluster: Cluster) -> Check:
    """After a run: every process of Argo CD and the control plane has exited and no Argo CD port (127.0.0.1)
    still accepts a connection. Fails when there were no processes at all (nothing was proved)."""
    every = argocd.processes + cluster.processes
    alive = [f"{p.name} ({p.pid})" for p in every if p.alive]
    ports = [port for port in vars(argocd.ports).values() if _listening(port)]
    return Check(f"teardown: every process stopped ({len(every)}: {', '.join(p.name for p in every)}), "
                 "every Argo CD port closed", bool(every) and not alive and not ports,
                 f"alive: {alive or 'none'}; open ports: {ports or 'none'}")


def preflight() -> None:
    """What the run needs besides the pinned binaries: fail at once, with the package to install."""
    redis_server()
    git_binary()


def run_reports(env_names: list[str] | None, keep: bool = False, progress: Progress = print,
                parallel: bool = True, paths: dict[str, Path] | None = None) -> list[EnvReport]:
    """Run each environment (all when ``env_names`` is empty) with Argo CD; never raises for checks."""
    preflight()
    return run_each(run_env, env_names, keep=keep, progress=progress, parallel=parallel, paths=paths)


def run_argocd_e2e(env_names: list[str] | None, keep: bool = False, progress: Progress = print,
                   parallel: bool = True) -> list[EnvReport]:
    """Each environment synced by the real Argo CD from a local remote into its own control plane, checked.

    Prints each report; raises :class:`~doxops.errors.Findings` (exit 1) naming every failed check when
    an environment fails. ``keep`` keeps every work directory (git remote and copy, logs, kubeconfig).
    """
    return conclude("e2e --argocd", run_reports(env_names, keep=keep, progress=progress, parallel=parallel),
                    progress)
