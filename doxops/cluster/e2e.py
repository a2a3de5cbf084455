"""The e2e run: each environment applied to a real control plane, the design's acceptance scenarios observed.

For each environment, :func:`run_e2e`:

1. renders a *test variant* of the environment (``render_all`` in a copy of the sources, with one
   more values file, :data:`E2E_VALUES`, that shortens the workers' scale-down stabilisation
   window) and checks that it differs from the committed ``rendered/<env>`` in exactly that;
2. starts a :class:`~doxops.cluster.cluster.Cluster` (etcd, API server, controller manager,
   scheduler, kwok nodes, metrics-server; all on 127.0.0.1) and pre-made PersistentVolumes for
   the StatefulSets' claims;
3. applies in phases: the Namespace and the CRDs of Argo CD and External Secrets (server-side;
   waits until they are Established), the ``argocd`` namespace, the Secrets (minikube: created
   with generated test values; prod: the simulated External Secrets store), then a server-side
   dry-run of everything through validate's API-server stage (as the Applications apply it), then the server-side apply of ``workloads/`` and ``argocd/``;
4. observes the acceptance scenarios (:class:`~doxops.cluster.scenarios.Scenario`), each a named
   :class:`~doxops.cluster.report.Check`; milestones are observations. A
   :class:`~doxops.cluster.sockets.SocketSampler` reads every socket of every process, every second,
   from the cluster's start to the last scenario.

Nothing is faked on the API side: every object is admitted (or refused) by the real API server,
Deployments, ReplicaSets, StatefulSets, the HPA and the PV binder are the real controllers, and the
HPA acts on metrics-server's numbers. What is simulated is listed in :data:`SIMULATED`.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

from .. import environments, render
from ..environments import Environment
from ..paths import REPO_ROOT
from .cluster import Cluster
from .harness import Progress, run_each
from .report import Check, EnvReport, attempt, conclude
from .scenarios import Scenario
from .simulators import Simulators
from .sockets import SocketSampler

#: Helm values added to each environment for the test variant (the chart's own knob, not a patch).
E2E_VALUES = {"workers": {"scaleDownStabilizationWindowSeconds": 5}}

#: What the e2e cluster simulates instead of running (also in the README).
SIMULATED = (
    "kubelets and nodes: kwok (pods go Pending then Running after ~1-2 s, terminate 2-3 s after deletion; "
    "no containers, probes or volume mounts)",
    "container CPU usage: kwok's resource-usage simulation, set per container through a node annotation",
    "ingress controller: doxops.cluster.simulators.IngressSimulator (status address 127.0.0.1)",
    "External Secrets Operator: doxops.cluster.simulators.ExternalSecretsSimulator "
    "(fake-provider ClusterSecretStore holding what the environment's values define, generated values)",
    "storage: pre-made hostPath PersistentVolumes pre-bound to the StatefulSets' claims (nothing mounts them)",
)


# ---------------------------------------------------------------------- the test variant


def render_variant(env: Environment, target: Path, progress: Progress) -> tuple[Path, dict[str, str]]:
    """Render ``env`` plus :data:`E2E_VALUES` from a copy of the sources into ``target/rendered/<env>``."""
    source = target / "src"
    for name in ("helm", "apps", "environments", "argocd"):
        if (REPO_ROOT / name).exists():
            shutil.copytree(REPO_ROOT / name, source / name, ignore=shutil.ignore_patterns(".*", "__pycache__"))
    env_dir = source / "environments" / env.name
    (env_dir / "e2e-values.yaml").write_text(
        "# Added by doxops.cluster.e2e for the test variant only.\n" + yaml.safe_dump(E2E_VALUES))
    kfile = env_dir / environments.KUSTOMIZATION
    data = yaml.safe_load(kfile.read_text())
    for chart in data.get("helmCharts") or []:
        chart["additionalValuesFiles"] = [*(chart.get("additionalValuesFiles") or []), "e2e-values.yaml"]
    kfile.write_text(yaml.safe_dump(data, sort_keys=False))
    copy = next(e for e in environments.discover(source) if e.name == env.name)
    [result] = render.render_all([copy], root=source, write=False, use_cache=False, jobs=1,
                                 progress=lambda message: None)
    out = target / "rendered" / env.name
    for rel, text in result.files.items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text(text)
    return out, result.files


def variant_differences(env: Environment, files: dict[str, str]) -> list[str]:
    """How the test variant differs from the committed render, beyond the shortened window (should be none)."""
    committed_dir = REPO_ROOT / render.RENDERED / env.name
    committed = {str(p.relative_to(committed_dir)): p.read_text() for p in committed_dir.rglob("*.yaml")}
    problems = []
    for rel in sorted(set(committed) | set(files)):
        if rel not in committed or rel not in files:
            problems.append(f"{rel}: only in {'the variant' if rel in files else 'rendered/'}")
            continue
        # Objects are compared, not bytes: the header comments name source paths, here those of the copy.
        new, old = yaml.safe_load(files[rel]), yaml.safe_load(committed[rel])
        if new == old:
            continue
        if new.get("kind") == "HorizontalPodAutoscaler":
            for doc in (new, old):
                doc.get("spec", {}).get("behavior", {}).get("scaleDown", {}).pop("stabilizationWindowSeconds", None)
            if new == old:
                continue
        problems.append(f"{rel}: differs from rendered/{env.name}/{rel} beyond the stabilisation window "
                        f"(is rendered/ stale? run ./dox render)")
    return problems



# ---------------------------------------------------------------------- the runner


def run_env(env: Environment, paths: dict[str, Path], *, keep: bool = False, progress: Progress = print) -> EnvReport:
    """One environment, from render to teardown; never raises for a failed check (the report says it)."""
    report = EnvReport(env.name)
    started = time.monotonic()
    scratch = Path(tempfile.mkdtemp(prefix=f"dox-e2e-{env.name}-"))
    say = lambda message: progress(f"[{env.name}] {message}")  # noqa: E731
    cluster = Cluster(scratch / "cluster", binaries=paths, keep=keep, progress=say, name=env.name)
    try:
        manifests, files = render_variant(env, scratch / "variant", say)
        problems = variant_differences(env, files)
        report.checks.append(Check(f"test variant = rendered/{env.name} + {E2E_VALUES} only", not problems,
                                   "; ".join(problems[:5])))
        with cluster, SocketSampler(lambda: cluster.processes, name=f"dox-e2e-sockets-{env.name}") as sampler:
            scenario = Scenario(env, cluster, manifests, report, say)
            with Simulators(cluster.api) as simulators:
                def provide_secrets() -> None:
                    scenario.provide_secrets(simulators)

                setup = (scenario.guard, scenario.provide_storage, scenario.apply_crds_and_namespaces,
                         provide_secrets, scenario.apply_everything)
                if all(attempt(report, step) for step in setup):
                    for step in (scenario.external_secrets, scenario.stateful_sets):
                        attempt(report, step)
                    # The orchestrator's rollouts and the workers' autoscaling touch different objects and
                    # mostly wait on controllers: they run side by side.
                    with ThreadPoolExecutor(max_workers=2) as pool:
                        list(pool.map(lambda step: attempt(report, step), (scenario.orchestrator, scenario.workers)))
                    for step in (scenario.hitl_ui, scenario.config_and_service_resolution, scenario.pod_security,
                                 scenario.argocd):
                        attempt(report, step)

                def loopback() -> None:
                    scenario.loopback(sampler)

                attempt(report, loopback)
                if simulators.errors:
                    report.checks.append(Check("simulators ran without errors", False,
                                               "; ".join(simulators.errors[:3])))
            if not report.ok:
                cluster.mark_failed()
    except Exception as exc:  # noqa: BLE001 - start-up errors carry their log tails in the message
        cluster.mark_failed()
        report.checks.append(Check("the cluster and the run itself", False, f"{type(exc).__name__}: {exc}"))
    finally:
        report.seconds = time.monotonic() - started
        if not report.ok and cluster.processes and not any("log tails" in o for o in report.observations):
            report.observations.append("log tails:\n" + "\n\n".join(p.describe() for p in cluster.processes))
        if report.ok and not keep:
            shutil.rmtree(scratch, ignore_errors=True)
        else:
            report.workdir = str(scratch)
    return report


def run_reports(env_names: list[str] | None, keep: bool = False, progress: Progress = print,
                parallel: bool = True, paths: dict[str, Path] | None = None) -> list[EnvReport]:
    """Run each environment (all when ``env_names`` is empty) and return the reports; never raises for checks.

    ``parallel`` runs the environments side by side, each on its own cluster and ports (most of a run
    is waiting for controllers, so two fit the two cores).
    """
    return run_each(run_env, env_names, keep=keep, progress=progress, parallel=parallel, paths=paths)


def run_e2e(env_names: list[str] | None, keep: bool = False, progress: Progress = print,
            parallel: bool = True) -> list[EnvReport]:
    """Apply each environment (all when ``env_names`` is empty) to its own real control plane and check it.

    Builds the pinned binaries on first use. Prints each environment's report; raises
    :class:`~doxops.errors.Findings` (exit 1) naming every failed check when any environment
    fails, and returns the reports otherwise. ``keep`` keeps every work directory (logs,
    kubeconfig, the rendered variant); a failed environment's is always kept.
    """
    return conclude("e2e", run_reports(env_names, keep=keep, progress=progress, parallel=parallel), progress)
