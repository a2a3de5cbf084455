"""The engine: exemptions, the safety net around rules, roles declared by label selector."""

from __future__ import annotations

import shutil
import types
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from doxops import environments, yamlio
from doxops.paths import REPO_ROOT
from doxops.validate import engine, runner
from doxops.validate.manifests import load_directory
from doxops.validate.options import defaults
from doxops.validate.rules import REGISTRY
from tests.validate.helpers import FIXTURES, config, run_rule

PROBES_FAIL = (FIXTURES / "probes" / "fail.yaml").read_text()


def with_annotation(tmp_path: Path, text: str, key: str, value: str) -> Path:
    doc = yaml.safe_load(text)
    doc["metadata"].setdefault("annotations", {})[key] = value
    path = tmp_path / "fixture.yaml"
    path.write_text(yamlio.dump(doc))
    return path


def test_an_exemption_with_a_reason_suppresses_the_rules_findings(tmp_path):
    assert run_rule("probes", FIXTURES / "probes" / "fail.yaml")  # the finding the exemption must hide
    path = with_annotation(tmp_path, PROBES_FAIL, "exempt.dox-asdlc.io/probes", "the exporter is probed by its sidecar")
    found = engine.run(load_directory(tmp_path), config=config(), only=["probes"])
    assert found == []


def test_an_exemption_naming_an_unknown_rule_is_an_error_and_suppresses_nothing(tmp_path):
    path = with_annotation(tmp_path, PROBES_FAIL, "exempt.dox-asdlc.io/probe", "typo")
    found = engine.run(load_directory(tmp_path), config=config(), only=["probes"])
    exemption = [d for d in found if d.rule == "exemption"]
    assert len(exemption) == 1 and "exemption names unknown rule 'probe'; known rules: " in exemption[0].message
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if "exempt.dox-asdlc.io/probe" in text)
    assert exemption[0].path.endswith(path.name) and exemption[0].line == line
    assert any(d.rule == "probes" for d in found)


def test_an_exemption_without_a_reason_is_an_error_and_suppresses_nothing(tmp_path):
    with_annotation(tmp_path, PROBES_FAIL, "exempt.dox-asdlc.io/probes", " ")
    found = engine.run(load_directory(tmp_path), config=config(), only=["probes"])
    assert any(d.rule == "exemption" and "has no reason" in d.message for d in found)
    assert any(d.rule == "probes" for d in found)


def crashing_rule(bad_name: str):
    """A rule that reports every Deployment and raises on the one named ``bad_name``."""

    @dataclass(frozen=True)
    class Options:
        """No options."""

    def check(ctx, conf):
        for m in ctx.of_kind("Deployment"):
            if m.name == bad_name:
                raise ZeroDivisionError("a secret value would never be shown")
            yield engine.Finding(m, "", f"{m.ref}: checked")

    return types.SimpleNamespace(ID="boom", LEVEL="warning", Options=Options, CONF=defaults(Options), check=check,
                                 __doc__="boom: a rule with a bug")


def test_a_rule_that_raises_becomes_an_error_naming_the_rule_and_the_object_and_the_rest_still_runs(monkeypatch):
    monkeypatch.setitem(REGISTRY, "boom", crashing_rule("coordinator"))
    manifests = load_directory(FIXTURES / "other-chart")
    found = [d for d in engine.run(manifests, config=config(), only=["boom"]) if d.rule == "boom"]
    crash = [d for d in found if "failed" in d.message]
    assert len(crash) == 1
    assert crash[0].level == "error" and crash[0].path.endswith("leader.yaml")
    assert crash[0].message.startswith("Deployment shop/coordinator: rule boom failed (ZeroDivisionError at "
                                       "tests/validate/test_engine.py:")
    assert "a secret value" not in crash[0].message  # exception text can carry values: never shown
    others = [d.message for d in found if d not in crash]
    assert others == ["Deployment shop/crunchers: checked"]  # run again without the object it crashed on


def test_issue_16_case_6_a_string_min_replicas_is_a_schema_finding_not_an_internal_error(tmp_path):
    root = tmp_path / "repo"
    shutil.copytree(REPO_ROOT / "rendered" / "prod", root / "rendered" / "prod")
    path = root / "rendered" / "prod" / "workloads" / "horizontalpodautoscaler-workers.yaml"
    path.write_text(path.read_text().replace("minReplicas: 2", 'minReplicas: "2"'))
    assert 'minReplicas: "2"' in path.read_text()
    env = next(e for e in environments.discover() if e.name == "prod")
    report = runner.validate_env(env, root=root)
    errors = [d for d in report.diagnostics if d.level == "error" and d.path.endswith(path.name)]
    assert [d.rule for d in errors] == ["schema"]
    assert "minReplicas" in errors[0].message
    assert not any("failed (" in d.message for d in report.diagnostics)


def test_roles_declared_by_label_selector_apply_role_rules_to_charts_without_the_role_label(tmp_path):
    doc = next(yaml.safe_load_all((FIXTURES / "singleton" / "fail.yaml").read_text()))
    role_label = "dox-asdlc.io/role"
    assert doc["metadata"]["labels"].pop(role_label) == "singleton"
    doc["metadata"]["labels"]["app.kubernetes.io/component"] = "scheduler"
    (tmp_path / "scheduler.yaml").write_text(yamlio.dump(doc))
    manifests = load_directory(tmp_path)
    assert engine.run(manifests, config=config(), only=["singleton"]) == []  # no role: nothing to check
    roles = {"singleton": [{"matchLabels": {"app.kubernetes.io/component": "scheduler"}}]}
    found = engine.run(manifests, config=config(roles=roles), only=["singleton"])
    assert found and all(d.rule == "singleton" for d in found)
    other = {"singleton": [{"matchLabels": {"app.kubernetes.io/component": "web"}}]}
    assert engine.run(manifests, config=config(roles=other), only=["singleton"]) == []


@pytest.mark.parametrize("label, expected", [("singleton", "singleton"), ("web", "web"), (None, "singleton")])
def test_the_role_label_wins_over_a_declared_role(label, expected):
    labels = {"app": "x", **({"dox-asdlc.io/role": label} if label else {})}
    m = engine.Manifest({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"labels": labels}},
                        Path("x.yaml"), 0, 1)
    ctx = engine.Context([m], config(roles={"singleton": [{"matchLabels": {"app": "x"}}]}))
    assert ctx.role(m) == expected
