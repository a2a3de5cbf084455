"""The chart as a whole: layout, lint, rendering from a clean tree, determinism and the values schemas."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

from .conftest import (
    CHART_DIR,
    ENVIRONMENTS,
    KUBE_VERSION,
    NAMESPACE,
    REPO_ROOT,
    VARIANT_VALUES,
    EnvironmentInputs,
    helm_template,
    run_helm,
)

SUBCHARTS = ("orchestrator", "workers", "hitl-ui", "redis", "knowledge-store")
LIBRARY = "dox-asdlc-common"
# Template file name (without a "-qualifier" and ".yaml") to the one kind it holds.
FILE_KINDS = {
    "namespace": "Namespace",
    "networkpolicy": "NetworkPolicy",
    "externalsecret": "ExternalSecret",
    "deployment": "Deployment",
    "statefulset": "StatefulSet",
    "service": "Service",
    "serviceaccount": "ServiceAccount",
    "configmap": "ConfigMap",
    "hpa": "HorizontalPodAutoscaler",
    "pdb": "PodDisruptionBudget",
    "ingress": "Ingress",
}


def chart_dirs() -> list[Path]:
    return [CHART_DIR, *(CHART_DIR / "charts" / name for name in SUBCHARTS)]


def test_umbrella_depends_on_every_subchart_with_camel_case_aliases() -> None:
    chart = yaml.safe_load((CHART_DIR / "Chart.yaml").read_text())
    deps = {dep["name"]: dep for dep in chart["dependencies"]}
    assert set(deps) == {*SUBCHARTS, LIBRARY}
    assert deps["hitl-ui"]["alias"] == "hitlUI"
    assert deps["knowledge-store"]["alias"] == "knowledgeStore"
    for name in SUBCHARTS:
        sub = yaml.safe_load((CHART_DIR / "charts" / name / "Chart.yaml").read_text())
        assert sub["name"] == name
        assert sub["version"] == deps[name]["version"]


@pytest.mark.parametrize("chart", chart_dirs(), ids=lambda p: p.name)
def test_every_chart_has_values_schema_and_templates(chart: Path) -> None:
    for name in ("Chart.yaml", "values.yaml", "values.schema.json"):
        assert (chart / name).is_file(), f"{chart.name}: {name} missing"
    assert any((chart / "templates").glob("*.yaml"))


def _objects_schemas(node: object, path: str = "#") -> list[tuple[str, dict]]:
    """Every (path, schema) of type object inside a JSON schema."""
    found: list[tuple[str, dict]] = []
    if isinstance(node, dict):
        if node.get("type") == "object":
            found.append((path, node))
        for key, value in node.items():
            found.extend(_objects_schemas(value, f"{path}/{key}"))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found.extend(_objects_schemas(value, f"{path}/{i}"))
    return found


@pytest.mark.parametrize("chart", chart_dirs(), ids=lambda p: p.name)
def test_schemas_close_every_object(chart: Path) -> None:
    """Objects with fixed keys reject unknown ones; free-form maps constrain their values.

    The only open objects are "global" in a subchart (Helm injects it; the umbrella's schema checks it) and the
    umbrella's subchart sections (each checked by its subchart's own schema).
    """
    schema = json.loads((chart / "values.schema.json").read_text())
    assert schema["additionalProperties"] is False
    subchart_keys = {"orchestrator", "workers", "hitlUI", "redis", "knowledgeStore"}
    for path, node in _objects_schemas(schema):
        key = path.rsplit("/", 1)[-1]
        delegated = key == "global" and chart != CHART_DIR or chart == CHART_DIR and key in subchart_keys
        if delegated and path.count("/properties/") == 1:
            continue
        assert "additionalProperties" in node, f"{chart.name} {path}: no additionalProperties"
        if "properties" in node:
            assert node["additionalProperties"] is False, f"{chart.name} {path}: open object"


@pytest.mark.parametrize("chart", chart_dirs(), ids=lambda p: p.name)
def test_one_resource_per_template_file_named_by_kind(chart: Path) -> None:
    for template in (chart / "templates").glob("*.yaml"):
        stem = template.stem.split("-", 1)[0]
        assert stem in FILE_KINDS, f"{template}: not named by kind"
        text = template.read_text()
        assert text.count("\nkind: ") + text.startswith("kind: ") <= 1, f"{template}: more than one resource"


def test_every_rendered_object_comes_from_a_file_named_by_its_kind(default_render, variant_render) -> None:
    for rendered in (default_render, variant_render):
        seen: dict[str, str] = {}
        for (kind, name), source in rendered.sources.items():
            assert source not in seen, f"{source} renders {seen[source]} and {kind}/{name}"
            seen[source] = f"{kind}/{name}"
            stem = Path(source).stem.split("-", 1)[0]
            assert FILE_KINDS[stem] == kind, f"{source} renders a {kind}"


def test_defines_only_in_helper_files_namespaced_and_commented() -> None:
    """Shared helpers live in the library chart, the umbrella's own in its _helpers.tpl; each namespaced and
    commented. The subcharts' library copies are checked equal to the library (test_chart_library)."""
    library = CHART_DIR / "charts" / LIBRARY
    helper_files = [*sorted((library / "templates").glob("_*.tpl")), CHART_DIR / "templates" / "_helpers.tpl"]
    copies = [CHART_DIR / "charts" / sub / "charts" / LIBRARY / "templates" for sub in SUBCHARTS]
    for path in CHART_DIR.rglob("*.tpl"):
        assert path in helper_files or path.parent in copies, f"{path}: helpers belong in {library / 'templates'}"
    for path in CHART_DIR.rglob("templates/*.yaml"):
        assert not re.search(r"{{-?\s*define\b", path.read_text()), f"{path} defines a template"
    for helpers in helper_files:
        lines = helpers.read_text().splitlines()
        defines = [(i, line) for i, line in enumerate(lines) if "define \"" in line]
        assert defines, f"{helpers}: no define"
        for i, line in defines:
            name = line.split('"')[1]
            assert name.startswith("dox-asdlc."), name
            previous = lines[i - 1].strip()
            assert previous.endswith("*/}}") and name in "\n".join(lines[max(0, i - 6):i]), f"{name} uncommented"


def _lint(chart: Path, *args: str) -> None:
    result = run_helm("lint", "--strict", str(chart), *args)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


def lint_args(inputs: EnvironmentInputs) -> list[str]:
    args = ["--namespace", inputs.namespace, "--kube-version", inputs.kube_version]
    for path in inputs.values_files:
        args += ["--values", str(path)]
    return args


@pytest.mark.parametrize("values", [None, VARIANT_VALUES], ids=["default", "variant"])
def test_helm_lint_strict_passes(values: Path | None) -> None:
    _lint(CHART_DIR, *(["--values", str(values)] if values else []))


@pytest.mark.parametrize("env", sorted(ENVIRONMENTS))
def test_helm_lint_strict_passes_with_each_environments_real_values(env: str) -> None:
    """The values, namespace and Kubernetes version the environment's kustomization hands to Helm, no fixture."""
    inputs = ENVIRONMENTS[env]
    assert [p.relative_to(REPO_ROOT).as_posix() for p in inputs.values_files] == [
        "apps/dox-asdlc/values.yaml", f"environments/{env}/values.yaml"]
    _lint(inputs.chart, *lint_args(inputs))


def test_lint_with_an_environments_values_fails_on_a_bad_value_there(tmp_path: Path) -> None:
    """The failing case: a value only the environment sets (here a typo in prod's values) fails the lint."""
    inputs = ENVIRONMENTS["prod"]
    env_values = tmp_path / "values.yaml"
    env_values.write_text(inputs.values_files[-1].read_text().replace("minReplicas:", "minReplica:"))
    broken = dataclasses.replace(inputs, values_files=(*inputs.values_files[:-1], env_values))
    result = run_helm("lint", "--strict", str(inputs.chart), *lint_args(broken))
    assert result.returncode != 0
    assert "minReplica" in result.stdout + result.stderr


def test_renders_and_lints_from_a_clean_tree_without_dependency_build(tmp_path: Path) -> None:
    """No Chart.lock, no packaged chart, no repository: the unpacked charts/ (and each subchart's copy of the
    library) are used as they are."""
    copy = tmp_path / "dox-asdlc"
    shutil.copytree(CHART_DIR, copy, ignore=shutil.ignore_patterns("Chart.lock", "*.tgz"))
    assert not list(copy.rglob("Chart.lock")) and not list(copy.rglob("*.tgz"))
    rendered = run_helm("template", "dox-asdlc", str(copy), "--kube-version", KUBE_VERSION, "--namespace", NAMESPACE)
    assert rendered.returncode == 0, rendered.stderr
    assert "kind: StatefulSet" in rendered.stdout
    linted = run_helm("lint", "--strict", str(copy))
    assert linted.returncode == 0, linted.stdout + linted.stderr
    assert not list(copy.rglob("Chart.lock")), "rendering must not need or write a lock file"


def test_rendering_is_deterministic() -> None:
    args = ["template", "dox-asdlc", str(CHART_DIR), "--kube-version", KUBE_VERSION, "--namespace", NAMESPACE,
            "--values", str(VARIANT_VALUES)]
    first, second = run_helm(*args), run_helm(*args)
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout
    nondeterministic = re.compile(r"\b(rand\w*|uuidv4|now|date\w*|lookup|gen\w+|htpasswd|bcrypt)\b")
    for path in CHART_DIR.rglob("templates/*"):
        actions = re.findall(r"{{(?!-? */\*)(.*?)}}", path.read_text(), flags=re.DOTALL)
        for action in actions:
            assert not nondeterministic.search(action), f"{path}: {action.strip()}"


@pytest.mark.parametrize(
    ("overrides", "key", "message"),
    [
        ({"workers": {"minReplica": 3}}, "minReplica", "additional properties"),
        ({"workers": {"maxReplicas": "ten"}}, "maxReplicas", "want integer"),
        ({"orchestrator": {"replicas": 2}}, "replicas", "must be 1"),
        ({"global": {"redis": {"prot": 6380}}}, "prot", "additional properties"),
        ({"hitlUi": {"replicas": 1}}, "hitlUi", "additional properties"),
        ({"hitlUI": {"service": {"type": "Nodeport"}}}, "type", "must be one of"),
        ({"redis": {"persistence": {"mode": "append"}}}, "mode", "must be one of"),
        ({"redis": {"image": {"tag": "latest"}}}, "tag", ""),
        ({"workers": {"targetCPUUtilization": 170}}, "targetCPUUtilization", "maximum"),
        ({"workers": {"podDisruptionBudget": {"maxUnavailable": 0}}}, "maxUnavailable", "minimum"),
        ({"workers": {"podDisruptionBudget": {"unhealthyPodEvictionPolicy": "Always"}}},
         "unhealthyPodEvictionPolicy", "must be one of"),
    ],
    ids=["typo", "wrong-type", "orchestrator-replicas-2", "global-typo", "top-level-typo", "service-type",
         "redis-mode", "latest-tag", "cpu-target", "pdb-blocks-drain", "pdb-eviction-policy"],
)
def test_schema_rejects_bad_values_naming_the_key(overrides: dict, key: str, message: str) -> None:
    result = helm_template(overrides)
    assert result.returncode != 0
    assert key in result.stderr, result.stderr
    assert message in result.stderr, result.stderr
    assert "values don't meet the specifications of the schema" in result.stderr


def test_min_replicas_above_max_fails() -> None:
    result = helm_template({"workers": {"minReplicas": 5, "maxReplicas": 3}})
    assert result.returncode != 0
    assert "minReplicas" in result.stderr and "maxReplicas" in result.stderr


# Maps whose keys are data (label names, annotation names), not chart settings.
FREE_FORM_MAPS = {"podLabels", "annotations", "nodeSelector"}


@pytest.mark.parametrize("chart", chart_dirs(), ids=lambda p: p.name)
def test_values_keys_are_camel_case_and_documented(chart: Path) -> None:
    lines = (chart / "values.yaml").read_text().splitlines()
    parents: list[tuple[int, str]] = []
    for number, line in enumerate(lines, start=1):
        match = re.match(r"^(\s*)([A-Za-z][\w.-]*):", line)
        if not match:
            continue
        indent, key = len(match.group(1)), match.group(2)
        while parents and parents[-1][0] >= indent:
            parents.pop()
        free_form = bool(parents) and parents[-1][1] in FREE_FORM_MAPS
        # A subchart's global defaults copy the umbrella's, which documents them (test_chart_library checks).
        umbrellas = chart != CHART_DIR and bool(parents) and parents[0][1] == "global"
        parents.append((indent, key))
        if free_form:
            continue
        where = f"{chart.name}/values.yaml:{number}: {key}"
        assert re.fullmatch(r"[a-z][a-zA-Z0-9]*", key), f"{where} is not camelCase"
        assert umbrellas or lines[number - 2].strip().startswith("#"), f"{where} has no comment above it"
