from pathlib import Path

import pytest

from doxops.errors import UsageError
from doxops.validate.rules import no_credentials
from tests.validate.helpers import FIXTURES, config, run_rule

FAIL = FIXTURES / "no-credentials" / "fail.yaml"


def plugins(*names):
    return config(rules={"no-credentials": {"conf": {"plugins": list(names)}}})


def test_checksums_digests_secret_references_and_cidrs_pass():
    assert run_rule("no-credentials", "pass.yaml") == []
    assert run_rule("no-credentials", "single-document.yaml") == []


def test_each_credential_fails_with_its_line_and_type_never_its_value():
    found = run_rule("no-credentials", "fail.yaml")
    assert [(d.line, d.level) for d in found] == [(6, "error"), (7, "error"), (8, "error"), (26, "error"),
                                                  (28, "error")]
    assert found[0].message.startswith("ConfigMap demo/settings: line 6 holds a credential")
    kinds = [d.message.split("detect-secrets: ")[1].split(")")[0] for d in found]
    assert kinds == ["Basic Auth Credentials", "Secret Keyword", "Private Key", "AWS Access Key", "GitHub Token"]
    assert "line 9" in found[2].message  # inside the block scalar of key tls.key (line 8)
    assert all(d.message.startswith("Deployment demo/pool: ") for d in found[3:])
    text = FAIL.read_text()
    for d in found:
        for value in ("Zq8vN3kLp2Xw", "Tr0ub4dor", "MIIBOgIBAAJBAKj34", "AKIAQX7", "ghp_Zx9"):
            assert value in text and value not in d.message


def test_the_allowlist_pragma_silences_a_line():
    assert run_rule("no-credentials", "allowlisted.yaml") == []


def test_entropy_plugins_are_off_by_default_because_checksums_trip_them():
    found = run_rule("no-credentials", "single-document.yaml", cfg=plugins("HexHighEntropyString"))
    assert [d.line for d in found] == [11, 12]  # the two checksum annotations (sha256 hex)
    assert all("Hex High Entropy String" in d.message for d in found)


def test_the_plugin_list_is_configurable():
    found = run_rule("no-credentials", "fail.yaml", cfg=plugins("GitHubTokenDetector"))
    # line 28 by the one plugin left; line 26 (AWS_ACCESS_KEY_ID's literal value) by the credential-name check,
    # which is no plugin of the scanner
    assert [(d.line, "detect-secrets" in d.message) for d in found] == [(26, False), (28, True)]


def test_an_unknown_plugin_is_a_usage_error():
    with pytest.raises(UsageError, match="GitHubDetector"):
        run_rule("no-credentials", "pass.yaml", cfg=plugins("GitHubDetector"))


def test_fifty_clean_files_scan_clean(tmp_path: Path):
    """Speed is measured by ./dox bench, not asserted here: a wall-clock bound fails on a busy machine."""
    source = (FIXTURES / "no-credentials" / "pass.yaml").read_text()
    paths = []
    for i in range(50):
        path = tmp_path / f"m{i}.yaml"
        path.write_text(source.replace("name: pool", f"name: pool{i}"))
        paths.append(path)
    no_credentials.scan(paths[:1], no_credentials.CONF["plugins"])  # import and plugin set-up
    assert no_credentials.scan(paths, no_credentials.CONF["plugins"], no_credentials.CONF["ignoreKeys"]) == []


def test_a_literal_env_value_under_a_credential_name_fails_at_its_value():
    """The scanner misses ``- name: DB_PASSWORD`` / ``value: ...`` (two lines); numbers, paths, references pass."""
    found = run_rule("no-credentials", "fail-literal-env.yaml")
    assert [(d.line, d.message.split(": env ")[1].split(" ")[0]) for d in found] == [(16, "DB_PASSWORD"),
                                                                                     (24, "API_TOKEN")]
    text = (FIXTURES / "no-credentials" / "fail-literal-env.yaml").read_text()
    for d in found:
        assert "Xk9#mP2" in text and "Xk9#mP2" not in d.message and "Zq8vN3" not in d.message
