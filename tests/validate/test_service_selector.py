from tests.validate.helpers import run_rule


def test_ports_by_name_number_default_and_sidecar_pass_and_selectorless_skipped():
    assert run_rule("service-selector", "pass.yaml") == []


def test_selector_matching_no_pod_template_in_its_namespace_fails():
    found = run_rule("service-selector", "fail-selector.yaml")
    assert [(d.line, d.level) for d in found] == [(15, "error"), (23, "error")]
    assert found[0].message.startswith("Service demo/pool: selector app=pool, tier=web matches no pod template")
    assert "Service other/pool" in found[1].message and "namespace other" in found[1].message


def test_target_ports_missing_from_the_containers_fail_each():
    found = run_rule("service-selector", "fail-target-port.yaml")
    assert [(d.line, d.level) for d in found] == [(22, "error"), (23, "error"), (24, "error"), (25, "error")]
    assert "port web targets htp" in found[0].message
    assert "port alt targets 8081" in found[1].message
    assert "port direct targets 8443" in found[2].message  # the default targetPort is the port
    assert "port admin targets admin" in found[3].message  # a plain init container serves nothing
    assert "declared: 8080, http" in found[0].message
