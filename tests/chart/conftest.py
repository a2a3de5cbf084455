"""Fixtures and helpers of the chart tests: render helm/dox-asdlc with the pinned helm and parse its output.

Every distinct combination of release name and values is rendered once per session (an in-process cache), so
the whole suite runs a handful of helm processes. Test modules import the helpers from here
(``from .conftest import render``) and use the session fixtures for the two common renders.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

try:
    from doxops.toolchain import ensure_tool  # provided by the pipeline package, may not exist yet

    HELM = str(ensure_tool("helm"))
except ImportError:
    HELM = "/root/.cache/dox-asdlc/tools/helm-v4.3.1/helm"

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = REPO_ROOT / "helm" / "dox-asdlc"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
# Not an environment: every value the defaults leave alone set otherwise (registry, digests, narrowed egress,
# another storage class...), so tests can see that values drive the output. The environments are tested with
# their own values (ENVIRONMENTS).
VARIANT_VALUES = FIXTURES / "values-variant.yaml"
KUBE_VERSION = "1.36.0"
NAMESPACE = "dox-asdlc"
DEFAULT_RELEASE = "dox-asdlc"

# Kinds whose pod template the tests inspect.
WORKLOAD_KINDS = ("Deployment", "StatefulSet")


@dataclass(frozen=True)
class HelmResult:
    """Exit status and output of one helm command."""

    returncode: int
    stdout: str
    stderr: str


@dataclass
class Rendered:
    """The objects of one `helm template` run, indexed by (kind, name)."""

    objects: list[dict[str, Any]]
    #: The template each object came from (helm's "# Source:" comment), by (kind, name).
    sources: dict[tuple[str, str], str] = field(default_factory=dict)
    index: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for obj in self.objects:
            key = (obj["kind"], obj["metadata"]["name"])
            assert key not in self.index, f"duplicate object {key}"
            self.index[key] = obj

    def get(self, kind: str, name: str) -> dict[str, Any]:
        """The object of that kind and name; fails the test when it is missing."""
        try:
            return self.index[(kind, name)]
        except KeyError:
            present = sorted(f"{k}/{n}" for k, n in self.index)
            raise AssertionError(f"{kind}/{name} not rendered; rendered: {present}") from None

    def find(self, kind: str, name: str) -> dict[str, Any] | None:
        """The object of that kind and name, or None."""
        return self.index.get((kind, name))

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        """Every object of that kind."""
        return [obj for obj in self.objects if obj["kind"] == kind]

    def workloads(self) -> list[dict[str, Any]]:
        """Every Deployment and StatefulSet."""
        return [obj for obj in self.objects if obj["kind"] in WORKLOAD_KINDS]


_HELM_HOME = tempfile.mkdtemp(prefix="chart-test-helm-home-")
atexit.register(shutil.rmtree, _HELM_HOME, True)


def helm_env() -> dict[str, str]:
    """A Helm environment of the tests' own: no user configuration is read, no user cache written."""
    return {
        **os.environ,
        "HOME": _HELM_HOME,
        "HELM_CACHE_HOME": f"{_HELM_HOME}/cache",
        "HELM_CONFIG_HOME": f"{_HELM_HOME}/config",
        "HELM_DATA_HOME": f"{_HELM_HOME}/data",
        "KUBECONFIG": f"{_HELM_HOME}/no-kubeconfig",
    }


def run_helm(*args: str) -> HelmResult:
    """Run helm with the given arguments and capture its output."""
    proc = subprocess.run([HELM, *args], capture_output=True, text=True, timeout=60, check=False, env=helm_env())
    return HelmResult(proc.returncode, proc.stdout, proc.stderr)


@functools.lru_cache(maxsize=None)
def _template(release: str, overrides_json: str, values_files: tuple[str, ...]) -> HelmResult:
    """`helm template` once per distinct (release, overrides, values files); overrides are applied last."""
    with tempfile.TemporaryDirectory(prefix="chart-test-") as tmp:
        args = ["template", release, str(CHART_DIR), "--kube-version", KUBE_VERSION, "--namespace", NAMESPACE]
        for path in values_files:
            args += ["--values", path]
        overrides = json.loads(overrides_json)
        if overrides:
            override_file = Path(tmp) / "overrides.yaml"
            override_file.write_text(yaml.safe_dump(overrides))
            args += ["--values", str(override_file)]
        return run_helm(*args)


def helm_template(
    overrides: dict[str, Any] | None = None,
    *,
    release: str = DEFAULT_RELEASE,
    values_files: tuple[Path, ...] = (),
) -> HelmResult:
    """Run (or reuse) `helm template` of the chart with these values; the result may be a failure."""
    return _template(release, json.dumps(overrides or {}, sort_keys=True), tuple(str(p) for p in values_files))


SOURCE_PREFIX = "# Source: "


@functools.lru_cache(maxsize=None)
def _parse(stdout: str) -> Rendered:
    """Split helm's output into documents, parse each and remember the template it came from."""
    objects: list[dict[str, Any]] = []
    sources: dict[tuple[str, str], str] = {}
    for chunk in re.split(r"^---$", stdout, flags=re.MULTILINE):
        doc = yaml.safe_load(chunk)
        if not doc:
            continue
        source = next(
            (line[len(SOURCE_PREFIX):] for line in chunk.splitlines() if line.startswith(SOURCE_PREFIX)), ""
        )
        objects.append(doc)
        sources[(doc["kind"], doc["metadata"]["name"])] = source
    return Rendered(objects, sources)


def render(
    overrides: dict[str, Any] | None = None,
    *,
    release: str = DEFAULT_RELEASE,
    values_files: tuple[Path, ...] = (),
) -> Rendered:
    """The parsed objects of a successful `helm template`; fails the test with helm's message otherwise."""
    result = helm_template(overrides, release=release, values_files=values_files)
    assert result.returncode == 0, f"helm template failed:\n{result.stderr}"
    return _parse(result.stdout)


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    """The pod spec of a Deployment or StatefulSet."""
    return workload["spec"]["template"]["spec"]


def containers(workload: dict[str, Any]) -> list[dict[str, Any]]:
    """Every container (init containers included) of a workload's pod template."""
    spec = pod_spec(workload)
    return [*spec.get("initContainers", []), *spec["containers"]]


def iter_env(container: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The explicit env entries of a container."""
    yield from container.get("env", [])


@pytest.fixture(scope="session")
def default_render() -> Rendered:
    """The chart rendered with its default values."""
    return render()


@dataclass(frozen=True)
class EnvironmentInputs:
    """What an environment's kustomization hands to Helm: the chart, release, namespace, versions and values."""

    name: str
    chart: Path
    release: str
    namespace: str
    kube_version: str
    values_files: tuple[Path, ...]


def environment_inputs(root: Path = REPO_ROOT) -> list[EnvironmentInputs]:
    """Every environment's Helm inputs, read from its kustomization's helmCharts entry (as kustomize reads it)."""
    found = []
    for kfile in sorted((root / "environments").glob("*/kustomization.yaml")):
        data = yaml.safe_load(kfile.read_text())
        home = kfile.parent / (data.get("helmGlobals") or {}).get("chartHome", "charts")
        for entry in data["helmCharts"]:
            files = [entry["valuesFile"]] if entry.get("valuesFile") else []
            files += entry.get("additionalValuesFiles") or []
            found.append(EnvironmentInputs(
                name=kfile.parent.name,
                chart=(home / entry["name"]).resolve(),
                release=entry.get("releaseName", entry["name"]),
                namespace=entry.get("namespace", NAMESPACE),
                kube_version=str(entry["kubeVersion"]),
                values_files=tuple((kfile.parent / f).resolve() for f in files),
            ))
    return found


ENVIRONMENTS = {inputs.name: inputs for inputs in environment_inputs()}


@pytest.fixture(scope="session")
def variant_render() -> Rendered:
    """The chart rendered with the variant values fixture (every default changed)."""
    return render(values_files=(VARIANT_VALUES,))


@pytest.fixture(scope="session", params=["default", "variant", *ENVIRONMENTS])
def any_render(request: pytest.FixtureRequest, default_render: Rendered, variant_render: Rendered) -> Rendered:
    """The default, the variant and each environment's render (its real values), for invariants of all."""
    if request.param == "default":
        return default_render
    if request.param == "variant":
        return variant_render
    inputs = ENVIRONMENTS[request.param]
    assert inputs.chart == CHART_DIR, f"{inputs.name} renders {inputs.chart}, not this chart"
    return render(release=inputs.release, values_files=inputs.values_files)
