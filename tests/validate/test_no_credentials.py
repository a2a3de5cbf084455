import threading
from pathlib import Path

import pytest

from doxops import toolchain
from doxops.errors import UsageError
from doxops.validate.rules import no_credentials
from tests.validate.helpers import FIXTURES, config, run_rule

FAIL = FIXTURES / "no-credentials" / "fail.yaml"


def conf(**options):
    return config(rules={"no-credentials": {"conf": options}})


def disabled(*rule_ids):
    return conf(disableRules=list(rule_ids))


def rule_ids(found):
    return [d.message.split("(gitleaks: ")[1].split(")")[0] if "(gitleaks: " in d.message else None for d in found]


def test_checksums_digests_secret_references_and_cidrs_pass():
    assert run_rule("no-credentials", "pass.yaml") == []
    assert run_rule("no-credentials", "single-document.yaml") == []


def test_each_credential_fails_with_its_line_and_rule_never_its_value():
    found = run_rule("no-credentials", "fail.yaml")
    assert [(d.line, d.level) for d in found] == [(6, "error"), (7, "error"), (8, "error"), (26, "error"),
                                                  (28, "error")]
    assert found[0].message.startswith("ConfigMap demo/settings: line 6 holds a credential")
    assert rule_ids(found) == ["url-basic-auth", "generic-api-key", "private-key", "aws-access-token", "github-pat"]
    assert "line 9" in found[2].message  # inside the block scalar of key tls.key (line 8)
    assert all(d.message.startswith("Deployment demo/pool: ") for d in found[3:])
    text = FAIL.read_text()
    for d in found:
        for value in ("Zq8vN3kLp2Xw", "Tr0ub4dor", "MIIBOgIBAAJBAKj34", "AKIAQX7", "ghp_Zx9"):
            assert value in text and value not in d.message


def test_the_allowlist_pragma_silences_a_line(tmp_path: Path):
    assert run_rule("no-credentials", "allowlisted.yaml") == []
    text = (FIXTURES / "no-credentials" / "allowlisted.yaml").read_text()
    for marker in ("# pragma: allowlist secret", "# gitleaks:allow", ""):
        (tmp_path / "cm.yaml").write_text(text.replace("# pragma: allowlist secret", marker))
        found = run_rule("no-credentials", tmp_path / "cm.yaml")
        assert [(d.line, rule_ids(found)) for d in found] == ([] if marker else [(6, ["generic-password"])])


def test_the_keyword_rule_reports_human_made_passwords_that_generic_api_key_passes(tmp_path: Path):
    """generic-api-key wants entropy >= 3.5 and no stopword; generic-password (gitleaks.toml) takes any literal."""
    (tmp_path / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: demo}\n"
                                      "data:\n  DB_PASSWORD: changeme\n  redisPassword: 'hunter2'\n"
                                      "  # ExternalSecrets: its project must allow them\n  secretEnv: one env entry\n"
                                      "  note: '{{ .Values.password }}'\n  user_pwd: \"${PASSWORD}\"\n"
                                      "  REDIS_PASSWORD_FILE: /run/secrets/redis\n  secretStoreRef: vault\n")
    found = run_rule("no-credentials", tmp_path / "cm.yaml")
    assert [(d.line, rule_ids([d])[0]) for d in found] == [(5, "generic-password"), (6, "generic-password")]


def test_generic_api_key_reports_a_checksum_unless_its_key_is_ignored():
    """gitleaks has no bare entropy detector; generic-api-key (entropy >= 3.5 under a key naming a secret) is on,
    and a sha256 under checksum/secret trips it: checksum/* is an ignored key by default for that reason."""
    keys = [k for k in no_credentials.CONF["ignoreKeys"] if k != "checksum/*"]
    found = run_rule("no-credentials", "single-document.yaml", cfg=conf(ignoreKeys=keys))
    assert [(d.line, rule_ids([d])[0]) for d in found] == [(12, "generic-api-key")]  # checksum/config: no keyword
    found = run_rule("no-credentials", "pass.yaml", cfg=conf(ignoreKeys=[]))
    # and without any ignored key, an ExternalSecret's secretKey: password fails too (secretName ends in a
    # reference word, which generic-password never reports: see gitleaks.toml)
    assert [(d.line, rule_ids([d])[0]) for d in found] == [(12, "generic-api-key"), (37, "generic-password")]


def test_disabling_the_rule_that_catches_a_credential_lets_it_pass():
    """The rule ids are gitleaks' (read from the pinned binary: an id it did not know would make it stop)."""
    found = run_rule("no-credentials", "fail.yaml", cfg=disabled("url-basic-auth", "private-key"))
    assert [(d.line, rule_ids([d])[0]) for d in found] == [(7, "generic-api-key"), (26, "aws-access-token"),
                                                            (28, "github-pat")]
    found = run_rule("no-credentials", "fail.yaml", cfg=disabled("generic-api-key"))
    assert (7, "generic-password") in [(d.line, rule_ids([d])[0]) for d in found]
    # without the shape rules, lines 26 and 28 are still found by the credential-name check of literal env values,
    # which is no gitleaks rule
    found = run_rule("no-credentials", "fail.yaml", cfg=disabled("aws-access-token", "github-pat"))
    assert [(d.line, rule_ids([d])[0]) for d in found if d.line > 20] == [(26, None), (28, None)]


def test_an_unknown_rule_is_a_usage_error():
    with pytest.raises(UsageError, match=r"unknown gitleaks rule\(s\) github-token \(close: [^)]*github-pat"):
        run_rule("no-credentials", "pass.yaml", cfg=disabled("github-token"))


def test_the_known_rules_are_the_binarys_and_ours():
    known = no_credentials.known_rules()
    assert {"github-pat", "private-key", "generic-api-key", "aws-access-token"} <= set(known)  # gitleaks' own
    assert {"url-basic-auth", "generic-password"} <= set(known)  # gitleaks.toml's
    assert len(known) == len(set(known)) > 200


def test_a_placeholder_made_of_the_alphabet_passes(tmp_path: Path):
    """gitleaks' default allowlist treats a secret containing "abcdefghijklmnopqrstuvwxyz" as a placeholder
    (a configuration that extends the default cannot remove that); a random-looking token of the same shape fails."""
    for token, lines in (("ghp_abcdefghijklmnopqrstuvwxyz0123456789", []),
                         ("ghp_q8Rk2mVx7LpT4nWz9cYb3HsJ6dFg1AeU5oNi", [5])):
        (tmp_path / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: demo}\n"
                                          f"data:\n  GITHUB_TOKEN: {token}\n")
        assert [d.line for d in run_rule("no-credentials", tmp_path / "cm.yaml")] == lines


def test_fifty_clean_files_scan_clean(tmp_path: Path):
    """Speed is measured by ./dox bench, not asserted here: a wall-clock bound fails on a busy machine."""
    source = (FIXTURES / "no-credentials" / "pass.yaml").read_text()
    paths = []
    for i in range(50):
        path = tmp_path / f"m{i}.yaml"
        path.write_text(source.replace("name: pool", f"name: pool{i}"))
        paths.append(path)
    assert no_credentials.scan(paths, no_credentials.CONF["disableRules"], no_credentials.CONF["ignoreKeys"]) == []


def test_one_scan_finds_each_files_credentials_in_files_of_one_name_in_many_directories(tmp_path: Path):
    """Files are linked into one directory for gitleaks; results map back to each path, and are cached."""
    paths = []
    for i in range(3):
        path = tmp_path / f"d{i}" / "values.yaml"
        path.parent.mkdir()
        path.write_text("a: 1\n" * i + f"token: ghp_q8Rk2mVx7LpT4nWz9cYb3HsJ6dFg1AeU5oN{i}\n")
        paths.append(path)
    (tmp_path / "d0" / "clean.yaml").write_text("a: 1\n")
    expected = [(p, i + 1, "github-pat") for i, p in enumerate(paths)]
    assert no_credentials.scan(paths + [tmp_path / "d0" / "clean.yaml"]) == expected
    no_credentials._MEMO.clear()
    assert no_credentials.scan(paths) == expected  # from the per-user cache


def test_a_literal_env_value_under_a_credential_name_fails_at_its_value():
    """The scanner misses ``- name: DB_PASSWORD`` / ``value: ...`` (two lines); numbers, paths, references pass."""
    found = run_rule("no-credentials", "fail-literal-env.yaml")
    assert [(d.line, d.message.split(": env ")[1].split(" ")[0]) for d in found] == [(16, "DB_PASSWORD"),
                                                                                     (24, "API_TOKEN")]
    text = (FIXTURES / "no-credentials" / "fail-literal-env.yaml").read_text()
    for d in found:
        assert "Xk9#mP2" in text and "Xk9#mP2" not in d.message and "Zq8vN3" not in d.message


def test_every_gitleaks_build_finds_the_same_credentials(tmp_path: Path, monkeypatch):
    """Small scans use Go's regexp, large ones RE2 (RE2_FROM), and where it was built the system-RE2 build
    answers both: the same rules must give the same answers. Every fixture of this rule and of the e2e/diff
    secrets, plus the rendered environments, scanned by each build."""
    from doxops.paths import REPO_ROOT

    paths = sorted((FIXTURES / "no-credentials").glob("*.yaml")) + sorted((REPO_ROOT / "rendered").rglob("*.yaml"))
    planted = tmp_path / "planted.yaml"
    planted.write_text("".join(f"k{i}: {value}\n" for i, value in enumerate([
        "ghp_q8Rk2mVx7LpT4nWz9cYb3HsJ6dFg1AeU5oN1", "AKIAZ3MSJV4WWNKWW5FG", "xoxb-2947561038-8374652910-Zq8vN3kLp2XwRtYu",
        "redis://app:Zq8vN3kLp2Xw@cache:6379/0", "sk_live_51Hq8Rk2mVx7LpT4nWz9cYb3H"])) + "password: Tr0ub4dor&3x\n")
    paths.append(planted)
    latin1 = tmp_path / "latin1.yaml"  # not UTF-8: the two engines must still agree
    latin1.write_bytes("password: contrase\u00f1a-Zq8vN3kLp2Xw\ntoken: ghp_q8Rk2mVx7LpT4nWz9cYb3HsJ6dFg1AeU5oN2 \u00e9\n"
                       .encode("latin-1"))
    paths.insert(0, latin1)
    conf = no_credentials.CONF
    monkeypatch.setattr(no_credentials, "_cached", lambda keys: {})  # every scan cold, nothing stored
    monkeypatch.setattr(no_credentials, "_store", lambda answers: None)
    answers = {}
    builds = [("gitleaks", 10**9, False), ("gitleaks-re2", 0, False)]
    if toolchain.resolve_optional("gitleaks-re2-system") is not None:
        builds.append(("gitleaks-re2-system", 10**9, True))
    for name, threshold, system in builds:
        monkeypatch.setattr(no_credentials, "RE2_FROM", threshold)
        monkeypatch.setattr(no_credentials, "SYSTEM_RE2", system)
        monkeypatch.setattr(no_credentials, "_MEMO", {})
        assert no_credentials._gitleaks(len(paths)).spec.name == name
        answers[name] = no_credentials.scan(paths, list(conf["disableRules"]), list(conf["ignoreKeys"]))
    assert all(found == answers["gitleaks"] for found in answers.values()), {n: len(a) for n, a in answers.items()}
    # every planted line, and both of the Latin-1 file's: so the comparison compares findings
    assert len([f for f in answers["gitleaks"] if f[0] == planted]) == 6
    assert [(line, kind) for path, line, kind in answers["gitleaks"] if path == latin1] == \
        [(1, "generic-password"), (2, "github-pat")]


def test_files_of_one_content_are_scanned_once_and_each_reported(tmp_path: Path, monkeypatch):
    """A chart's library copied into each subchart: one gitleaks input per content, a finding for every path."""
    paths = []
    for i in range(3):
        path = tmp_path / f"sub{i}" / "_helpers.tpl"
        path.parent.mkdir()
        path.write_text("a: 1\ntoken: ghp_q8Rk2mVx7LpT4nWz9cYb3HsJ6dFg1AeU5oNz\n")
        paths.append(path)
    other = tmp_path / "other.yaml"
    other.write_text("token: ghp_Z8Rk2mVx7LpT4nWz9cYb3HsJ6dFg1AeU5oNq\n")
    given: list[list[Path]] = []
    real_run = no_credentials._run
    monkeypatch.setattr(no_credentials, "_run", lambda p, *a, **k: given.append(list(p)) or real_run(p, *a, **k))
    monkeypatch.setattr(no_credentials, "_cached", lambda keys: {})  # no earlier answers: gitleaks runs
    no_credentials._MEMO.clear()
    found = no_credentials.scan(paths + [other])
    assert sorted(found) == sorted([(p, 2, "github-pat") for p in paths] + [(other, 1, "github-pat")])
    assert len(given) == 1 and len(given[0]) == 2  # three copies and one other file: two inputs


def test_an_optional_build_that_no_longer_runs_gives_way_to_a_portable_one(tmp_path: Path, monkeypatch, capsys):
    """The system-RE2 build links libre2 at run time: if the library went away, the scan says so once and runs
    with a portable build; its answers are the portable build's."""
    from doxops import toolchain

    spec = toolchain.load_specs()["gitleaks-re2-system"]
    broken = tmp_path / "gitleaks"
    broken.write_text("#!/bin/sh\necho 'gitleaks: error while loading shared libraries: libre2.so.9' >&2\nexit 127\n")
    broken.chmod(0o755)
    monkeypatch.setattr(no_credentials, "SYSTEM_RE2", True)
    monkeypatch.setattr(toolchain, "resolve_optional", lambda name, specs=None: toolchain.Tool(spec, broken, "cache"))
    monkeypatch.setattr(no_credentials, "_cached", lambda keys: {})
    monkeypatch.setattr(no_credentials, "_store", lambda answers: None)
    monkeypatch.setattr(no_credentials, "_MEMO", {})
    monkeypatch.setattr(no_credentials, "_SYSTEM_FAILED", threading.Event())
    found = no_credentials.scan([FAIL])
    assert [(line, kind) for _, line, kind in found][:2] == [(6, "url-basic-auth"), (7, "generic-api-key")]
    err = capsys.readouterr().err
    assert f"validate: {broken} failed (gitleaks: error while loading shared libraries: libre2.so.9)" in err
    assert "scanning with the portable gitleaks build" in err
    # said once: the rest of the process scans with the portable builds
    assert no_credentials._gitleaks(1).spec.name == "gitleaks"
    monkeypatch.setattr(no_credentials, "_MEMO", {})
    assert no_credentials.scan([FAIL]) == found and capsys.readouterr().err == ""


def test_a_binary_that_cannot_start_gives_way_too(tmp_path: Path, monkeypatch, capsys):
    """The optional build's directory being replaced by ./dox tools (or gone): no crash, a portable scan."""
    spec = toolchain.load_specs()["gitleaks-re2-system"]
    monkeypatch.setattr(no_credentials, "SYSTEM_RE2", True)
    monkeypatch.setattr(toolchain, "resolve_optional",
                        lambda name, specs=None: toolchain.Tool(spec, tmp_path / "gone" / "gitleaks", "cache"))
    monkeypatch.setattr(no_credentials, "_cached", lambda keys: {})
    monkeypatch.setattr(no_credentials, "_store", lambda answers: None)
    monkeypatch.setattr(no_credentials, "_MEMO", {})
    monkeypatch.setattr(no_credentials, "_SYSTEM_FAILED", threading.Event())
    assert [kind for _, _, kind in no_credentials.scan([FAIL])][:1] == ["url-basic-auth"]
    assert "scanning with the portable gitleaks build" in capsys.readouterr().err


def test_a_forced_gitleaks_is_used_instead_of_the_optional_build(monkeypatch):
    portable = toolchain.resolve("gitleaks").path
    monkeypatch.setattr(no_credentials, "SYSTEM_RE2", True)
    monkeypatch.setattr(no_credentials, "_SYSTEM_FAILED", threading.Event())
    monkeypatch.setenv("DOX_GITLEAKS", str(portable))
    tool = no_credentials._gitleaks(1)
    assert (tool.spec.name, tool.path, tool.origin) == ("gitleaks", portable, "env")
