from tests.validate.helpers import run_rule


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
    assert [(d.line, d.level) for d in found] == [(16, "error"), (23, "error")]
    assert "demo/pool: maxUnavailable 0 " in found[0].message
    assert "demo/pool-percent: maxUnavailable 0% " in found[1].message


def test_budget_selecting_no_workload_in_its_namespace_fails():
    found = run_rule("pdb-eviction", "fail-no-workload.yaml")
    assert [(d.line, d.level) for d in found] == [(18, "error")]
    assert "PodDisruptionBudget demo/cache: selects no workload in namespace demo" in found[0].message
