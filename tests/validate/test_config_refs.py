from tests.validate.helpers import config, run_rule

PROVIDED = config(provided_secrets={"vendor-token": None, "vendor-keys": ["api-key"]},
                  provided_configmaps=["kube-root-ca.crt"])


def test_rendered_external_and_provided_objects_and_their_keys_resolve():
    assert run_rule("config-refs", "pass.yaml", cfg=PROVIDED) == []


def test_provided_objects_must_be_listed_in_the_policy():
    found = run_rule("config-refs", "pass.yaml")
    assert [(d.line, d.level) for d in found] == [(17, "error"), (34, "error"), (40, "error")]
    assert "references Secret vendor-token" in found[0].message and "providedSecrets" in found[0].message
    assert "references ConfigMap kube-root-ca.crt" in found[1].message
    assert "volume creds references Secret vendor-token" in found[2].message


def test_missing_configmaps_and_secrets_fail_at_the_reference():
    found = run_rule("config-refs", "fail-missing.yaml")
    assert [(d.line, d.level) for d in found] == [(13, "error"), (16, "error"), (19, "error"), (23, "error")]
    assert found[0].message.startswith("Deployment demo/pool: envFrom of container main references ConfigMap setings")
    assert "Secret cache-auth" in found[1].message  # its ExternalSecret is in another namespace
    assert "volume creds references Secret vendor-token" in found[2].message
    assert "projected volume bundle references ConfigMap bundle" in found[3].message


def test_missing_keys_fail_at_the_key():
    found = run_rule("config-refs", "fail-keys.yaml", cfg=PROVIDED)
    assert [(d.line, d.level) for d in found] == [(14, "error"), (16, "error"), (18, "error"), (23, "error")]
    assert "reads key LOGLEVEL of ConfigMap settings, whose keys are LOG_LEVEL" in found[0].message
    assert "reads key pass of Secret cache-auth, whose keys are password" in found[1].message
    assert "reads key token of Secret vendor-keys, whose keys are api-key" in found[2].message
    assert "volume logo reads key logo.svg" in found[3].message
