from tests.validate.helpers import config, run_rule


def test_containers_with_both_probes_pass_and_init_containers_need_none():
    assert run_rule("probes", "pass.yaml") == []


def test_each_missing_probe_fails_at_its_container():
    found = run_rule("probes", "fail.yaml")
    assert [(d.line, d.level) for d in found] == [(10, "error"), (13, "error"), (13, "error")]
    assert found[0].message.startswith("StatefulSet demo/cache: container main has no readinessProbe")
    assert "container exporter has no livenessProbe" in found[1].message
    assert "container exporter has no readinessProbe" in found[2].message


def test_kinds_can_be_skipped_by_conf():
    cfg = config(rules={"probes": {"conf": {"skipKinds": ["StatefulSet"]}}})
    assert run_rule("probes", "fail.yaml", cfg=cfg) == []
