from tests.validate.helpers import run_rule


def test_secrets_without_values_and_external_secrets_pass():
    assert run_rule("no-secret-data", "pass.yaml") == []


def test_data_and_string_data_fail_naming_keys_never_values():
    found = run_rule("no-secret-data", "fail.yaml")
    assert [(d.line, d.level) for d in found] == [(5, "error"), (8, "error")]
    assert found[0].message.startswith("Secret demo/cache-auth: data holds values")
    assert "keys: password, username" in found[0].message and "ExternalSecret" in found[0].message
    assert "stringData" in found[1].message and "keys: token" in found[1].message
    for d in found:
        for value in ("aHVudGVyMg==", "YXBw", "plain-text-token-value", "hunter2"):
            assert value not in d.message
