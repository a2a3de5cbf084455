from doxops.paths import REPO_ROOT
from tests.validate.helpers import config, run_rule


def test_budgets_that_leave_a_pod_evictable_pass():
    assert run_rule("pdb-eviction", "pass.yaml") == []


def test_min_available_equal_to_a_single_replica_fails():
    found = run_rule("pdb-eviction", "fail-single-replica.yaml")
    assert [(d.line, d.level) for d in found] == [(15, "error")]
    assert found[0].message.startswith("PodDisruptionBudget demo/leader: minAvailable 1")
    assert "replicas 1" in found[0].message and "maxUnavailable: 1" in found[0].message


def test_minimum_is_the_hpa_min_replicas_not_spec_replicas():
    found = run_rule("pdb-eviction", "fail-hpa-minimum.yaml")
    assert [(d.line, d.level) for d in found] == [(25, "error")]
    assert "minAvailable 100%" in found[0].message
    assert "minReplicas 2 of HorizontalPodAutoscaler demo/pool-scaler" in found[0].message


def test_max_unavailable_zero_fails_as_integer_and_percentage():
    found = run_rule("pdb-eviction", "fail-max-unavailable.yaml")
    assert [(d.line, d.level) for d in found] == [(16, "error"), (24, "error")]
    assert "demo/pool: maxUnavailable 0 " in found[0].message
    assert "demo/pool-percent: maxUnavailable 0% " in found[1].message


def test_budget_selecting_no_workload_in_its_namespace_fails():
    found = run_rule("pdb-eviction", "fail-no-workload.yaml")
    assert [(d.line, d.level) for d in found] == [(19, "error")]
    assert "PodDisruptionBudget demo/cache: selects no workload in namespace demo" in found[0].message


def test_a_budget_without_always_allow_fails_and_the_demand_is_an_option():
    found = run_rule("pdb-eviction", "fail-unhealthy-policy.yaml")
    assert [(d.line, d.level) for d in found] == [(16, "error"), (25, "error")]
    assert found[0].message.startswith("PodDisruptionBudget demo/pool: unhealthyPodEvictionPolicy is unset (the API "
                                       "server applies IfHealthyBudget), so a node drain blocks")
    assert "set spec.unhealthyPodEvictionPolicy: AlwaysAllow" in found[0].message
    assert "demo/pool-strict: unhealthyPodEvictionPolicy is IfHealthyBudget" in found[1].message
    relaxed = config(rules={"pdb-eviction": {"conf": {"unhealthyPodEvictionPolicy": "IfHealthyBudget"}}})
    assert [d.line for d in run_rule("pdb-eviction", "fail-unhealthy-policy.yaml", cfg=relaxed)] == [16]
    off = config(rules={"pdb-eviction": {"conf": {"unhealthyPodEvictionPolicy": None}}})
    assert run_rule("pdb-eviction", "fail-unhealthy-policy.yaml", cfg=off) == []


def test_the_committed_budgets_need_the_charts_always_allow():
    """issue 16 case 7: the rendered workers' budget leaves the policy unset. This fails until the chart sets
    AlwaysAllow (merged together with this rule); afterwards it passes and guards the chart's setting."""
    for env in ("minikube", "prod"):
        path = REPO_ROOT / "rendered" / env / "workloads" / "poddisruptionbudget-workers.yaml"
        found = [d for d in run_rule("pdb-eviction", path.parent) if "unhealthyPodEvictionPolicy" in d.message]
        assert found == [], f"{env}: {found[0].message}"
