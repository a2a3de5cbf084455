from tests.validate.helpers import run_rule


def test_pool_left_to_a_bounded_cpu_hpa_passes():
    assert run_rule("autoscaled-pool", "pass.yaml") == []


def test_fixed_replicas_missing_cpu_request_and_out_of_bounds_hpa_each_fail():
    found = run_rule("autoscaled-pool", "fail-replicas-no-cpu.yaml")
    expected = [
        (8, "sets spec.replicas although an HPA owns the count"),
        (14, "container main requests no CPU"),
        (23, "minReplicas 1 is below 2"),
        (24, "maxReplicas 20 is above 10"),
        (25, "no CPU resource metric"),
    ]
    assert [d.line for d in found] == [line for line, _ in expected]
    for diagnostic, (_, words) in zip(found, expected):
        assert words in diagnostic.message and diagnostic.level == "error"


def test_pool_without_hpa_and_hpa_without_target_fail():
    messages = [d.message for d in run_rule("autoscaled-pool", "fail-no-hpa.yaml")]
    assert "Deployment demo/crunch: autoscaled pool with no HorizontalPodAutoscaler targeting it" in messages
    assert any("HorizontalPodAutoscaler demo/orphan targets Deployment gone, which is not rendered" in m
               for m in messages)


def test_any_hpa_target_that_sets_replicas_fails_whatever_its_role():
    found = run_rule("autoscaled-pool", "fail-target-replicas.yaml")
    assert [(d.line, d.message) for d in found] == [
        (9, "Deployment demo/api: sets spec.replicas although HorizontalPodAutoscaler demo/api scales it; remove it "
            "(Argo CD would reset the HPA's count on every sync, whatever the workload's role)"),
    ]  # batch sets no replicas; neither has the pool role, so the pool's bounds are not applied


def test_a_pool_that_sets_replicas_is_reported_once():
    found = run_rule("autoscaled-pool", "fail-replicas-no-cpu.yaml")
    assert sum("spec.replicas" in d.message for d in found) == 1
