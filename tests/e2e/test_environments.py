"""Each environment, applied to a real control plane, meets the design's acceptance scenarios.

One test per environment directory (adding ``environments/staging`` adds a test). The run itself is
the session fixture ``e2e_reports`` (conftest.py); a failure shows the whole report: every check,
what was observed, and where the logs were kept.
"""

from __future__ import annotations

import pytest

from .conftest import ENV_NAMES

pytestmark = pytest.mark.e2e

#: Checks every environment's report must contain (by the start of their names).
REQUIRED = (
    "test variant = rendered/",
    "server-side dry-run of every manifest",
    "server-side apply of workloads/ and argocd/",
    "orchestrator: exactly 1 pod Running",
    "orchestrator: Git credentials Secret",
    "orchestrator: image change rolled out (Recreate) with never two pods at once",
    "the rollout watch catches overlap under RollingUpdate",
    "workers: 2 pods, brought there by the HPA",
    "workers: CPU above 70% scales up to 10",
    "workers: back down to 2 after the stabilisation window",
    "hitl-ui: ConfigMap",
    "orchestrator: pod environment resolves to existing Services",
    "workers: pod environment resolves to existing Services",
    "every pod admitted under enforced restricted",
    "StatefulSet redis:",
    "StatefulSet knowledge-store:",
    "Argo CD Applications and AppProjects accepted",
    "loopback only:",
)


@pytest.mark.parametrize("env_name", ENV_NAMES)
def test_environment_meets_acceptance_scenarios(env_name, e2e_reports):
    report = e2e_reports[env_name]
    assert report.ok, report.text()
    names = [c.name for c in report.checks]
    missing = [r for r in REQUIRED if not any(n.startswith(r) for n in names)]
    assert not missing, f"checks that did not run: {missing}\n{report.text()}"
    assert any("deleting pod" in o for o in report.observations), report.text()
    hitl = [n for n in names if "NodePort Service with node port" in n or n.startswith("Ingress ")]
    assert hitl, f"neither the NodePort nor the Ingress of hitl-ui was checked\n{report.text()}"
