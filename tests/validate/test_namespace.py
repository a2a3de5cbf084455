from tests.validate.helpers import config, run_rule


def test_objects_in_the_expected_namespace_and_bare_cluster_scoped_ones_pass():
    assert run_rule("namespace", "pass.yaml", namespace="demo") == []


def test_without_an_expected_namespace_the_rule_checks_nothing():
    assert run_rule("namespace", "fail.yaml") == []


def test_the_expected_namespace_can_come_from_the_policy():
    assert len(run_rule("namespace", "fail.yaml", cfg=config(namespace="demo"))) == 4


def test_missing_wrong_and_superfluous_namespaces_fail():
    found = run_rule("namespace", "fail.yaml", namespace="demo")
    assert [(d.line, d.level) for d in found] == [(3, "error"), (10, "error"), (16, "error"), (20, "error")]
    assert found[0].message.startswith("ConfigMap settings: sets no metadata.namespace; set it to demo")
    assert "Service default/pool: is in namespace default; move it to demo" in found[1].message
    assert "ClusterRole demo/reader: ClusterRole is cluster-scoped; remove metadata.namespace" in found[2].message
    assert "ClusterIssuer letsencrypt" in found[3].message  # not a kind the engine knows as cluster-scoped


def test_more_cluster_scoped_kinds_can_be_declared_by_conf():
    cfg = config(rules={"namespace": {"conf": {"clusterScoped": ["ClusterIssuer"]}}})
    found = run_rule("namespace", "fail.yaml", namespace="demo", cfg=cfg)
    assert [d.line for d in found] == [3, 10, 16]
