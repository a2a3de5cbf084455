"""Every registered rule has a test module, a passing fixture and a failing one, and each does what it says.

A rule whose module has ``STAGE`` (``api-server``, ``stored-as-written``) is judged by that validate stage, not by
the policy engine: its fixtures are named ``"<rule-id>/pass..."`` and ``"<rule-id>/fail..."`` in
``test_server.py``, whose ``test_stage_rule_fixtures`` runs each through the real API-server stage (a server is
needed, so that test is marked slow); here the engine must leave them alone.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from doxops.validate.rules import REGISTRY
from tests.validate.helpers import FIXTURES, config, run_rule

HERE = Path(__file__).parent
#: What a rule needs from the configuration before it checks anything (as its own test module sets it).
SETUP = {
    "namespace": {"namespace": "demo"},
    "git-credentials": {"cfg": config(git_credentials_secret="repo-creds")},
    "config-refs": {"cfg": config(provided_secrets={"vendor-token": None, "vendor-keys": ["api-key"]},
                                  provided_configmaps=["kube-root-ca.crt"])},
}


def fixtures(rule_id: str, kind: str) -> list[Path]:
    directory = FIXTURES / rule_id
    return sorted(p for p in directory.iterdir() if p.name.startswith(kind)) if directory.is_dir() else []


def is_stage_rule(rule_id: str) -> bool:
    return hasattr(REGISTRY[rule_id], "STAGE")


def module_of(rule_id: str) -> Path:
    if is_stage_rule(rule_id):
        return HERE / "test_server.py"
    return HERE / f"test_{rule_id.replace('-', '_')}.py"


def named_fixtures(rule_id: str, text: str) -> set[str]:
    if is_stage_rule(rule_id):
        return set(re.findall(rf'"{re.escape(rule_id)}/((?:pass|fail)[\w.-]*)"', text))
    return set(re.findall(r'"((?:pass|fail)[\w.-]*)"', text))


@pytest.mark.parametrize("rule_id", list(REGISTRY))
def test_every_rule_has_a_test_module_that_uses_a_passing_and_a_failing_fixture(rule_id):
    module = module_of(rule_id)
    assert module.is_file(), f"{rule_id}: add {module.relative_to(HERE.parent.parent)}"
    text = module.read_text()
    assert f'"{rule_id}"' in text, f"{module.name} never runs {rule_id}"
    named = named_fixtures(rule_id, text)
    assert any(n.startswith("pass") for n in named) and any(n.startswith("fail") for n in named), \
        f"{module.name} names no passing or no failing fixture of {rule_id}"
    for name in named:
        assert (FIXTURES / rule_id / name).exists(), f"{module.name} names {name}, not in fixtures/{rule_id}/"


@pytest.mark.parametrize("rule_id", list(REGISTRY))
def test_every_passing_fixture_passes_and_every_failing_fixture_fails(rule_id):
    passing, failing = fixtures(rule_id, "pass"), fixtures(rule_id, "fail")
    assert passing and failing, f"fixtures/{rule_id}/ needs pass* and fail* fixtures"
    setup = SETUP.get(rule_id, {})
    if is_stage_rule(rule_id):  # the stage judges them (test_server.py); the engine must report nothing itself
        assert "def test_stage_rule_fixtures" in module_of(rule_id).read_text()
        for path in passing + failing:
            assert run_rule(rule_id, path, **setup) == [], f"the policy engine judged {path.name} itself"
        return
    for path in passing:
        assert run_rule(rule_id, path, **setup) == [], f"{path.name} should pass {rule_id}"
    for path in failing:
        assert run_rule(rule_id, path, **setup), f"{path.name} should fail {rule_id}"
