"""The committed environments render fresh and validate clean."""

from __future__ import annotations

from doxops import environments
from doxops.validate import runner


def test_environments_are_discovered_from_directories_with_their_facts():
    found = {e.name: e for e in environments.discover()}
    assert set(found) >= {"minikube", "prod"}
    assert found["prod"].kubernetes_version == "1.36.1"
    assert "external-secrets.io/v1" in found["prod"].api_versions


def test_every_committed_environment_validates_clean():
    for env in environments.discover():
        report = runner.validate_env(env)
        assert report.resources > 20
        assert [d.text() for d in report.diagnostics if d.level == "error"] == []
