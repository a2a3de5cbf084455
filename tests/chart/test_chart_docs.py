"""Values documentation written once: the README tables are helm-docs' output from the values.yaml comments, the
schemas' descriptions are the same text, and the tables agree with the schemas (the same keys, every one
described, the same types)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from doxops import chart as chart_mod
from doxops import toolchain

from ..conftest import run_dox
from .conftest import CHART_DIR

CHARTS = chart_mod.documented_charts()
# helm-docs' type names and the JSON schema types they may stand for.
TYPES = {"int": {"integer", "number"}, "float": {"number"}, "string": {"string"}, "bool": {"boolean"},
         "object": {"object"}, "list": {"array"}}
# Helm gives every dependency a values key; the library's takes no value of its own, so nothing documents it.
HELM_INJECTED = {chart_mod.LIBRARY}


@pytest.fixture(scope="module")
def helm_docs() -> Path:
    return toolchain.resolve("helm-docs", build_missing=False).path


def table(readme: Path) -> dict[str, tuple[str, str]]:
    """``{key: (type, description)}`` of the values table of a README."""
    return chart_mod.values_table(readme.read_text())


def _is_row(node: dict) -> bool:
    """A schema node the table documents as one row: a leaf, or a map whose keys are data (not closed)."""
    return not (node.get("type") == "object" and node.get("properties") and node.get("additionalProperties") is False)


def schema_rows(schema: dict, prefix: str = "") -> dict[str, set[str]]:
    """``{key path: JSON schema types}`` of every value the table must document."""
    rows: dict[str, set[str]] = {}
    for key, node in schema.get("properties", {}).items():
        if not prefix and key in HELM_INJECTED:
            continue
        path = f"{prefix}{key}"
        if _is_row(node):
            kind = node.get("type", [])
            rows[path] = set(kind if isinstance(kind, list) else [kind])
        else:
            rows.update(schema_rows(node, f"{path}."))
    return rows


def disagreements(chart: Path) -> list[str]:
    """Where a chart's README table and its values schema disagree (none when they agree)."""
    rows = table(chart / chart_mod.README)
    wanted = schema_rows(json.loads((chart / "values.schema.json").read_text()))
    problems = [f"{chart.name}: {key} is in the schema but not described in values.yaml (`# --` comment)"
                for key in wanted if key not in rows]
    problems += [f"{chart.name}: {key} is described but not in the schema" for key in rows if key not in wanted]
    for key, (kind, description) in rows.items():
        if not description.strip():
            problems.append(f"{chart.name}: {key} has no description")
        if key in wanted and wanted[key] and not TYPES.get(kind, set()) & wanted[key]:
            problems.append(f"{chart.name}: {key} is a {kind} in values.yaml, {sorted(wanted[key])} in the schema")
    return problems


def test_every_chart_readme_is_what_helm_docs_writes(helm_docs: Path) -> None:
    stale = chart_mod.stale_readmes(helm_docs=helm_docs)
    assert stale == [], f"stale values tables: {[str(p) for p in stale]}; run `./dox chart`"


def test_every_schema_describes_each_value_as_its_values_yaml_comment(helm_docs: Path) -> None:
    stale = chart_mod.stale_schemas(helm_docs=helm_docs)
    assert stale == [], f"schema descriptions differ from values.yaml: {[str(p) for p in stale]}; run `./dox chart`"
    for chart in CHARTS:
        schema = json.loads((chart / "values.schema.json").read_text())
        for key, (_, description) in table(chart / chart_mod.README).items():
            node = schema
            for part in key.split("."):
                node = node["properties"][part]
            assert node["description"] == description, f"{chart.name}: {key}"


@pytest.mark.parametrize("chart", CHARTS, ids=lambda p: p.name)
def test_the_values_table_agrees_with_the_schema(chart: Path) -> None:
    assert table(chart / chart_mod.README), f"{chart.name}: README has no values table"
    assert disagreements(chart) == []


def test_a_changed_comment_makes_the_readme_stale_and_writing_repairs_it(tmp_path: Path, helm_docs: Path) -> None:
    root = tmp_path / "repo"
    shutil.copytree(CHART_DIR.parent, root / "helm")
    workers = root / "helm" / "dox-asdlc" / "charts" / "workers"
    values = workers / "values.yaml"
    values.write_text(values.read_text().replace("# -- Fewest replicas", "# -- At least this many replicas"))
    assert chart_mod.stale_readmes(root, helm_docs) == [workers / chart_mod.README]
    assert chart_mod.stale_schemas(root, helm_docs) == [workers / "values.schema.json"]
    assert chart_mod.write_readmes(root, helm_docs) == [workers / chart_mod.README]
    assert chart_mod.write_schemas(root, helm_docs) == [workers / "values.schema.json"]
    assert "| minReplicas | int | `2` | At least this many replicas" in (workers / chart_mod.README).read_text()
    schema = json.loads((workers / "values.schema.json").read_text())
    assert schema["properties"]["minReplicas"]["description"].startswith("At least this many replicas")
    assert chart_mod.stale_readmes(root, helm_docs) == [] and chart_mod.stale_schemas(root, helm_docs) == []


def test_an_undocumented_key_and_a_schema_drift_are_disagreements(tmp_path: Path, helm_docs: Path) -> None:
    root = tmp_path / "repo"
    shutil.copytree(CHART_DIR.parent, root / "helm")
    workers = root / "helm" / "dox-asdlc" / "charts" / "workers"
    values = workers / "values.yaml"
    text = values.read_text().replace("# -- Log level of the service (LOG_LEVEL).\n", "# Log level.\n")
    values.write_text(text.replace("terminationGracePeriodSeconds: 60", 'terminationGracePeriodSeconds: "60"'))
    schema = json.loads((workers / "values.schema.json").read_text())
    schema["properties"]["extraEnv"] = {"type": "object", "additionalProperties": {"type": "string"}}
    (workers / "values.schema.json").write_text(json.dumps(schema))
    chart_mod.write_readmes(root, helm_docs)
    assert disagreements(workers) == [
        "workers: logLevel is in the schema but not described in values.yaml (`# --` comment)",
        "workers: extraEnv is in the schema but not described in values.yaml (`# --` comment)",
        "workers: terminationGracePeriodSeconds is a string in values.yaml, ['integer'] in the schema",
    ]


def test_dox_chart_check_names_what_is_stale_and_dox_chart_repairs_it(repo_copy: Path) -> None:
    assert run_dox(repo_copy, "chart", "--check").returncode == 0
    library = repo_copy / "helm" / "dox-asdlc" / "charts" / chart_mod.LIBRARY / "templates" / "_pod.tpl"
    library.write_text(library.read_text() + "\n{{/* dox-asdlc.planted: a new helper. */}}\n")
    values = repo_copy / "helm" / "dox-asdlc" / "charts" / "redis" / "values.yaml"
    values.write_text(values.read_text().replace("# -- ", "# -- Changed: ", 1))
    stale = run_dox(repo_copy, "chart", "--check")
    assert stale.returncode == 1, stale.stderr
    for name in ("orchestrator", "workers", "hitl-ui", "redis", "knowledge-store"):
        assert f"helm/dox-asdlc/charts/{name}/charts/dox-asdlc-common" in stale.stderr
    assert "helm/dox-asdlc/charts/redis/README.md" in stale.stderr
    fixed = run_dox(repo_copy, "chart")
    assert fixed.returncode == 0 and "wrote helm/dox-asdlc/charts/redis/README.md" in fixed.stdout, fixed.stderr
    assert run_dox(repo_copy, "chart", "--check").returncode == 0
