from tests.validate.helpers import run_rule


def test_single_recreate_deployment_passes():
    assert run_rule("singleton", "pass.yaml") == []


def test_two_replicas_rolling_update_and_hpa_each_fail_with_line():
    found = run_rule("singleton", "fail.yaml")
    assert [(d.line, d.level) for d in found] == [(8, "error"), (10, "error"), (21, "error")]
    assert "replicas 2" in found[0].message
    assert "RollingUpdate" in found[1].message
    assert "HorizontalPodAutoscaler demo/leader scales the singleton" in found[2].message
