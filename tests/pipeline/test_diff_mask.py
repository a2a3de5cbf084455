"""Masking hides secrets only: a table of values to mask and values to show, checked in every format.

Each row is one value changed in one place of one object (old -> new). A masked row's old and new values
must appear in no output; a shown row's must appear in every output (text, markdown, JSON and the unified
YAML diff), so masking too much fails as surely as masking too little.
"""

from __future__ import annotations

import json

import pytest

from doxops import diff as d
from doxops.diff import formats

GITHUB = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"  # the shape GitHubTokenDetector knows


def configmap(data: dict) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "app", "namespace": "ns"}, "data": data}


def deployment(env: list, volumes: list | None = None) -> dict:
    spec = {"containers": [{"name": "app", "image": "app:1", "env": env}], "volumes": volumes or []}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "app", "namespace": "ns"},
            "spec": {"template": {"spec": spec}}}


def secret(string_data: dict) -> dict:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "ns"}, "stringData": string_data}


def external_secret(remote_key: str) -> dict:
    return {"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
            "metadata": {"name": "es", "namespace": "ns"},
            "spec": {"data": [{"secretKey": "password", "remoteRef": {"key": remote_key, "property": "pw"}}]}}


# (case, object builder, old value, new value, masked?)
ROWS = [
    ("Secret stringData value", lambda v: secret({"api-key": v}), "sk-old-7Hq2", "sk-new-9Zt4", True),
    ("ExternalSecret remote reference (ExternalSecret data)", external_secret, "vault/old-3f9a", "vault/new-8c1d", True),
    ("URL password", lambda v: configmap({"REDIS_URL": f"redis://:{v}@redis:6379/0"}), "Pw0ld4x", "PwN3w7y", True),
    ("literal value of a credential-named env key",
     lambda v: deployment([{"name": "API_TOKEN", "value": v}]), "tok-old-55ab", "tok-new-66cd", True),
    ("literal value of a credential-named ConfigMap key", lambda v: configmap({"DB_PASSWORD": v}),
     "hunter2-old", "hunter2-new", True),
    ("a value the scanner flags under an innocent key", lambda v: configmap({"NOTE": v}),
     GITHUB, GITHUB[:-4] + "ZZZZ", True),
    ("a credential line of free text", lambda v: configmap({"redis.conf": f"port 6379\nrequirepass {v}\n"}),
     "rp-old-1a2b", "rp-new-3c4d", True),
    ("a number under a credential-looking key", lambda v: configmap({"TOKEN_BUDGET": v}), "250000", "300000", False),
    ("a secretKeyRef's key (a key's name)",
     lambda v: deployment([{"name": "ANTHROPIC_API_KEY", "valueFrom": {"secretKeyRef": {"name": "anthropic-api-key",
                                                                                       "key": v}}}]),
     "api-key", "api-key-v2", False),
    ("a Secret's name", lambda v: deployment([], [{"name": "git", "secret": {"secretName": v}}]),
     "git-credentials", "git-credentials-v2", False),
    ("a path to a credential file", lambda v: configmap({"REDIS_PASSWORD_FILE": v}),
     "/run/secrets/redis-old", "/run/secrets/redis-new", False),
    ("a number in an env value", lambda v: deployment([{"name": "MAX_TOKENS", "value": v}]), "4096", "8192", False),
    ("an ordinary value", lambda v: configmap({"LOG_LEVEL": v}), "INFO", "DEBUG", False),
]


def outputs(changes) -> dict[str, str]:
    return {
        "text": d.to_text(changes),
        "markdown": "".join(d.to_markdown(changes)),
        "json": d.to_json(changes),
        "unified": formats.to_unified(changes),
    }


@pytest.fixture
def scan_home(tmp_path, monkeypatch):
    monkeypatch.setenv("DOX_CACHE_DIR", str(tmp_path / "cache"))  # the scanner's own cache stays in tmp
    return tmp_path / "diff-cache"


@pytest.mark.parametrize("case,build,old,new,masked", ROWS, ids=[r[0] for r in ROWS])
def test_value_is_masked_or_shown_in_every_format(scan_home, case, build, old, new, masked):
    key = ("e", "", "Thing", "ns", "x")
    changes = d.compare({key: build(old)}, {key: build(new)}, d.load_settings(scan_home / "none.yaml"),
                        scan_cache=scan_home)
    assert len(changes) == 1 and changes[0].action == d.CHANGE, case  # the change is always shown
    for fmt, out in outputs(changes).items():
        if masked:
            assert old not in out and new not in out, f"{case}: a secret leaked in {fmt}:\n{out}"
            assert "masked" in out, f"{case}: no (masked) marker in {fmt}"
        else:
            assert new in out, f"{case}: a reviewable value was hidden in {fmt}:\n{out}"


def test_key_names_are_never_masked(scan_home):
    key = ("e", "", "Secret", "ns", "s")
    changes = d.compare({key: secret({"api-key": "a-old-value-1"})}, {key: secret({"api-key": "a-new-value-2"})},
                        d.load_settings(scan_home / "none.yaml"), scan_cache=scan_home)
    for fmt, out in outputs(changes).items():
        assert "api-key" in out, fmt


def test_scanner_answers_are_cached_by_content_without_values(scan_home):
    key = ("e", "", "ConfigMap", "ns", "app")
    args = ({key: configmap({"NOTE": GITHUB})}, {key: configmap({"NOTE": "plain"})},
            d.load_settings(scan_home / "none.yaml"))
    first = d.to_text(d.compare(*args, scan_cache=scan_home))
    cached = list(scan_home.glob("scan-*.json"))
    assert len(cached) == 1 and GITHUB not in cached[0].read_text()
    assert d.to_text(d.compare(*args, scan_cache=scan_home)) == first and GITHUB not in first
