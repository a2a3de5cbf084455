"""`./dox validate --format json|junit|sarif`: each output is checked by a maintained library against its
published definition (JSON Schema with `jsonschema`, JUnit XML with `junitparser`), with findings and without,
and the three formats agree with each other. The schemas are read from tests/pipeline/formats/ (see SOURCES.md).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import pytest
from junitparser import Failure, JUnitXml

from tests.conftest import assert_no_traceback, copy_repo, run_dox

SCHEMAS = Path(__file__).parent / "formats"
SARIF = json.loads((SCHEMAS / "sarif-2.1.0-rtm.5.json").read_text())
REPORT = json.loads((SCHEMAS / "dox-validate-report.schema.json").read_text())

BAD_CONFIGMAP = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: odd
  namespace: dox-asdlc
data:
  NOTE: '<&"quoted">'
unknownField: true
"""


def validator(schema: dict) -> jsonschema.protocols.Validator:
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)  # the schema itself is valid for its draft
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> dict[tuple[str, str], str]:
    """``{(case, format): stdout}`` for a directory with findings ("bad") and the committed prod ("clean")."""
    repo = copy_repo(tmp_path_factory.mktemp("formats") / "repo")
    bad = repo / "bad"
    bad.mkdir()
    deployment = (repo / "rendered/prod/workloads/deployment-orchestrator.yaml").read_text()
    (bad / "deployment-orchestrator.yaml").write_text(deployment.replace("replicas: 1", "replicas: 2"))
    (bad / "configmap-odd.yaml").write_text(BAD_CONFIGMAP)
    found = {}
    for fmt in ("json", "junit", "sarif"):
        for case, args, code in (("bad", ["--path", "bad"], 1), ("clean", ["--env", "prod", "--force"], 0)):
            proc = run_dox(repo, "validate", *args, "--format", fmt)
            assert proc.returncode == code, proc.stderr
            assert_no_traceback(proc)
            found[(case, fmt)] = proc.stdout
    return found


def diagnostics(outputs, case: str) -> list[dict]:
    return json.loads(outputs[(case, "json")])["diagnostics"]


@pytest.mark.parametrize("case", ["bad", "clean"])
def test_json_matches_its_published_schema(outputs, case):
    report = json.loads(outputs[(case, "json")])
    validator(REPORT).validate(report)
    levels = [d["level"] for d in report["diagnostics"]]
    assert (report["errors"], report["warnings"]) == (levels.count("error"), levels.count("warning"))
    if case == "bad":
        assert {"singleton", "schema"} <= {d["rule"] for d in report["diagnostics"]}
    else:
        assert report["resources"] > 10 and report["errors"] == 0


@pytest.mark.parametrize("case", ["bad", "clean"])
def test_sarif_matches_the_sarif_2_1_0_schema(outputs, case):
    log = json.loads(outputs[(case, "sarif")])
    validator(SARIF).validate(log)
    run = log["runs"][0]
    expected = diagnostics(outputs, case)
    assert len(run["results"]) == len(expected)
    assert {r["ruleId"] for r in run["results"]} <= {r["id"] for r in run["tool"]["driver"]["rules"]}
    for result, d in zip(run["results"], expected):
        region = result["locations"][0]["physicalLocation"]["region"]
        assert (result["ruleId"], region["startLine"], region["startColumn"]) == (d["rule"], d["line"], d["col"])


@pytest.mark.parametrize("case", ["bad", "clean"])
def test_junit_is_read_by_a_junit_library(outputs, case):
    xml = JUnitXml.fromstring(outputs[(case, "junit")])
    suites = list(xml) if isinstance(xml, JUnitXml) else [xml]
    cases = [c for suite in suites for c in suite]
    expected = diagnostics(outputs, case)
    errors = [d for d in expected if d["level"] == "error"]
    assert sum(s.tests for s in suites) == len(cases) == max(len(expected), 1)
    assert sum(s.failures for s in suites) == len(errors)
    failed = [c for c in cases if any(isinstance(r, Failure) for r in c.result)]
    assert [(c.classname, c.result[0].message) for c in failed] == [(d["rule"], d["message"]) for d in errors]
    if case == "clean":
        assert cases[0].is_passed


@pytest.mark.parametrize("breakage", ["line 0", "unknown level", "no rule id"])
def test_the_sarif_check_fails_on_a_broken_log(outputs, breakage):
    log = copy.deepcopy(json.loads(outputs[("bad", "sarif")]))
    result = log["runs"][0]["results"][0]
    if breakage == "line 0":
        result["locations"][0]["physicalLocation"]["region"]["startLine"] = 0
    elif breakage == "unknown level":
        result["level"] = "fatal"
    else:
        result["ruleIndex"] = "singleton"
    with pytest.raises(jsonschema.ValidationError):
        validator(SARIF).validate(log)


def test_the_json_and_junit_checks_fail_on_broken_output(outputs):
    report = json.loads(outputs[("bad", "json")])
    report["diagnostics"][0]["line"] = 0
    with pytest.raises(jsonschema.ValidationError):
        validator(REPORT).validate(report)
    with pytest.raises(Exception):  # noqa: B017, PT011  (the XML parser's own error type)
        JUnitXml.fromstring(outputs[("bad", "junit")].replace("</testsuite>", "", 1))
