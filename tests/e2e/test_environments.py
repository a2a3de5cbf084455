"""Each environment, applied to a real control plane, meets the design's acceptance scenarios.

One test per environment directory (adding ``environments/staging`` adds a test). The run itself is
the session fixture ``e2e_reports`` (conftest.py); a failure shows the whole report: every check,
what was observed, and where the logs were kept.
"""

from __future__ import annotations

import pytest
import yaml

from doxops.paths import REPO_ROOT

from .conftest import ENV_NAMES

pytestmark = pytest.mark.e2e

#: Checks every environment's report must contain (by the start of their names); see _hpa_checks for the rest.
REQUIRED = (
    "test variant = rendered/",
    "validate's API-server stage accepts all ",
    "server-side apply of workloads/ and argocd/",
    "orchestrator: Git credentials Secret",
    "orchestrator: image change rolled out (Recreate) with never two pods at once",
    "the rollout watch catches overlap under RollingUpdate",
    "hitl-ui: ConfigMap",
    "orchestrator: pod environment resolves to existing Services",
    "workers: pod environment resolves to existing Services",
    "every pod admitted under enforced restricted",
    "StatefulSet redis:",
    "StatefulSet knowledge-store:",
    "Argo CD Applications and AppProjects accepted",
    "loopback only: node InternalIP",
    "loopback only: every TCP/UDP socket of every process, in every state",
)
#: Milestones every report must have observed (they are not checks: a failed wait is).
OBSERVED = (
    "Namespace and ",
    "orchestrator: exactly 1 pod Running",
    "orchestrator: deleting pod",
)


def _hpa_checks(env_name: str) -> list[str]:
    """The workers' checks, named with the bounds of the environment's own rendered HPA (never literals)."""
    [hpa] = [d for p in (REPO_ROOT / "rendered" / env_name / "workloads").glob("horizontalpodautoscaler-*.yaml")
             for d in yaml.safe_load_all(p.read_text()) if d]
    low, high = hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]
    target = hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"]
    name = hpa["spec"]["scaleTargetRef"]["name"]
    return [f"{name}: HPA {low}..{high} at {target}% CPU, as the environment's values say",
            f"{name}: {low} pods, brought there by the HPA",
            f"{name}: CPU above {target}% scales up to {high}, capped there",
            f"{name}: back down to {low} after the stabilisation window"]


@pytest.mark.parametrize("env_name", ENV_NAMES)
def test_environment_meets_acceptance_scenarios(env_name, e2e_reports):
    report = e2e_reports[env_name]
    assert report.ok, report.text()
    names = [c.name for c in report.checks]
    missing = [r for r in (*REQUIRED, *_hpa_checks(env_name)) if not any(n.startswith(r) for n in names)]
    assert not missing, f"checks that did not run: {missing}\n{report.text()}"
    unseen = [o for o in OBSERVED if not any(seen.startswith(o) for seen in report.observations)]
    assert not unseen, f"milestones not observed: {unseen}\n{report.text()}"
    hitl = [n for n in names if "NodePort Service with node port" in n or n.startswith("Ingress ")]
    assert hitl, f"neither the NodePort nor the Ingress of hitl-ui was checked\n{report.text()}"
    external = [d for p in (REPO_ROOT / "rendered" / env_name / "workloads").glob("externalsecret-*.yaml")
                for d in yaml.safe_load_all(p.read_text()) if d]
    synced = [n for n in names if n.startswith("ExternalSecret ") and "from the environment's store" in n]
    assert len(synced) == len(external), f"ExternalSecrets checked: {synced}\n{report.text()}"
