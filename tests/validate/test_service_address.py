from tests.validate.helpers import config, run_rule


def test_every_address_form_resolves_and_external_or_templated_ones_are_skipped():
    assert run_rule("service-address", "pass.yaml") == []


def test_configmap_addresses_with_missing_services_or_ports_fail_at_their_key():
    found = run_rule("service-address", "fail-configmap.yaml")
    assert [(d.line, d.level) for d in found] == [(5, "error"), (7, "error"), (8, "error"), (9, "error"),
                                                  (10, "error")]
    assert found[0].message.startswith("ConfigMap demo/pool: key CACHE_URL points at cach:6379, but no Service cach")
    assert "CACHE_HOST/CACHE_PORT points at cache:6380" in found[1].message  # at the port's line
    assert "Service demo/cache exposes 6379" in found[1].message
    assert "Service demo/leader exposes 80" in found[2].message
    assert "no Service store is rendered in namespace demo" in found[3].message  # it lives in namespace data
    assert "hunter2" not in found[4].message and "gone.demo.svc:6379" in found[4].message


def test_env_addresses_of_containers_and_init_containers_fail_at_their_entry():
    found = run_rule("service-address", "fail-env.yaml")
    assert [(d.line, d.level) for d in found] == [(14, "error"), (19, "error"), (20, "error"), (22, "error")]
    assert "container wait env STORE_HOST/STORE_PORT" in found[0].message
    assert "Service data/store exposes 8000" in found[0].message
    assert "LEADER_URL points at leader:8080" in found[1].message
    assert "no Service queue" in found[2].message
    assert "cache:443" in found[3].message  # https without a port means 443


def test_cluster_domain_is_configurable():
    assert run_rule("service-address", "cluster-domain.yaml") == []  # an external host by default
    cfg = config(rules={"service-address": {"conf": {"clusterDomain": "corp.internal"}}})
    found = run_rule("service-address", "cluster-domain.yaml", cfg=cfg)
    assert [(d.line, d.level) for d in found] == [(5, "error")]
    assert "Service demo/cache exposes 6379" in found[0].message
