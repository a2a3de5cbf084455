"""The shared helpers as a library chart: each subchart renders on its own and uses no umbrella-only helper."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from doxops import chart as chart_mod

from .conftest import CHART_DIR, KUBE_VERSION, NAMESPACE, Rendered, _parse, run_helm

LIBRARY_DIR = CHART_DIR / "charts" / chart_mod.LIBRARY
SUBCHART_DIRS = chart_mod.subchart_dirs()
DEFINE = re.compile(r'{{-?\s*define\s+"([^"]+)"')
INCLUDE = re.compile(r'{{-?.*?\b(?:include|template)\s+"([^"]+)"', re.DOTALL)
# Annotations whose value names the template path (which includes the parent chart's directory under the
# umbrella) or hashes an object carrying that path.
PATH_DEPENDENT = re.compile(r"^(dox-asdlc\.io/template|checksum/.*)$")
# The directory name of each subchart as Helm names it in the umbrella's template paths (its alias if any).
IN_UMBRELLA = {dep["name"]: dep.get("alias", dep["name"])
               for dep in yaml.safe_load((CHART_DIR / "Chart.yaml").read_text())["dependencies"]}


def defines(directory: Path) -> set[str]:
    """Every template name defined in the templates of ``directory`` (not its charts/)."""
    return {name for path in (directory / "templates").rglob("*") if path.is_file()
            for name in DEFINE.findall(path.read_text())}


def includes(directory: Path) -> dict[str, set[str]]:
    """Every template name each template file of ``directory`` includes (its charts/ excluded)."""
    found: dict[str, set[str]] = {}
    for path in sorted((directory / "templates").rglob("*")):
        if path.is_file():
            names = set(INCLUDE.findall(path.read_text()))
            if names:
                found[str(path.relative_to(directory))] = names
    return found


def umbrella_only_helpers(umbrella: Path = CHART_DIR) -> set[str]:
    """Helpers the umbrella defines itself (not in the library)."""
    return defines(umbrella) - defines(umbrella / "charts" / chart_mod.LIBRARY)


def foreign_includes(subchart: Path, umbrella: Path = CHART_DIR) -> list[str]:
    """``file: name`` for each include of a subchart that neither it nor its library copy defines, or that only
    the umbrella defines (such a subchart renders through the umbrella and nowhere else)."""
    own = defines(subchart) | defines(subchart / "charts" / chart_mod.LIBRARY)
    umbrella_only = umbrella_only_helpers(umbrella)
    return [f"{subchart.name}/{file}: {name}" for file, names in includes(subchart).items()
            for name in sorted(names) if name in umbrella_only or name not in own]


def test_the_library_is_a_library_chart_of_helpers_only() -> None:
    meta = yaml.safe_load((LIBRARY_DIR / "Chart.yaml").read_text())
    assert meta["type"] == "library" and meta["name"] == chart_mod.LIBRARY
    templates = sorted(p.name for p in (LIBRARY_DIR / "templates").iterdir())
    assert templates and all(name.startswith("_") and name.endswith(".tpl") for name in templates), templates
    assert not (LIBRARY_DIR / "values.yaml").exists(), "a library takes no values of its own"


def test_the_umbrella_keeps_only_helpers_no_subchart_uses() -> None:
    umbrella_only = umbrella_only_helpers()
    assert umbrella_only, "the umbrella's own helpers are gone: drop this test and its _helpers.tpl"
    assert not defines(CHART_DIR) & defines(LIBRARY_DIR), "a helper is defined in the umbrella and the library"
    used_by_subcharts = {n for sub in SUBCHART_DIRS for names in includes(sub).values() for n in names}
    assert not umbrella_only & used_by_subcharts


@pytest.mark.parametrize("subchart", SUBCHART_DIRS, ids=lambda p: p.name)
def test_each_subchart_depends_on_the_library_and_carries_an_identical_copy(subchart: Path) -> None:
    meta = yaml.safe_load((subchart / "Chart.yaml").read_text())
    library = yaml.safe_load((LIBRARY_DIR / "Chart.yaml").read_text())
    assert {"name": chart_mod.LIBRARY, "version": library["version"]} in meta["dependencies"]
    assert subchart / "charts" / chart_mod.LIBRARY not in chart_mod.stale_library_copies(), (
        f"{subchart.name}/charts/{chart_mod.LIBRARY} differs from the library; run `./dox chart`")


def test_a_changed_library_makes_every_copy_stale_and_sync_repairs_it(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    shutil.copytree(CHART_DIR.parent, root / "helm")
    assert chart_mod.stale_library_copies(root) == []
    helpers = chart_mod.library_dir(root) / "templates" / "_identity.tpl"
    helpers.write_text(helpers.read_text() + "\n{{/* dox-asdlc.extra: planted. */}}\n{{- define \"dox-asdlc.extra\" -}}x{{- end }}\n")
    (chart_mod.subchart_dirs(root)[0] / "charts" / chart_mod.LIBRARY / "templates" / "_pod.tpl").unlink()
    stale = chart_mod.stale_library_copies(root)
    assert [p.parent.parent.name for p in stale] == [p.name for p in chart_mod.subchart_dirs(root)]
    assert chart_mod.sync_library_copies(root) == stale
    assert chart_mod.stale_library_copies(root) == []


@pytest.mark.parametrize("subchart", SUBCHART_DIRS, ids=lambda p: p.name)
def test_no_subchart_template_includes_an_umbrella_only_helper(subchart: Path) -> None:
    assert foreign_includes(subchart) == []


def test_an_umbrella_only_include_in_a_subchart_is_caught_and_breaks_its_own_render(tmp_path: Path) -> None:
    """The failing case: a subchart template that includes the umbrella's helper."""
    umbrella = tmp_path / "dox-asdlc"
    shutil.copytree(CHART_DIR, umbrella)
    redis = umbrella / "charts" / "redis"
    (redis / "templates" / "zz-planted.yaml").write_text(
        '{{- include "dox-asdlc.externalSecret" (dict "ctx" $ "secret" "redisPassword") }}\n')
    assert foreign_includes(redis, umbrella) == ['redis/templates/zz-planted.yaml: dox-asdlc.externalSecret']
    alone = run_helm("template", "dox-asdlc", str(redis), "--kube-version", KUBE_VERSION, "--namespace", NAMESPACE)
    assert alone.returncode != 0 and 'no template "dox-asdlc.externalSecret"' in alone.stderr, alone.stderr
    # Through the umbrella the same include renders: only the check above and the render alone catch it.
    through = run_helm("template", "dox-asdlc", str(umbrella), "--kube-version", KUBE_VERSION,
                       "--namespace", NAMESPACE)
    assert through.returncode == 0, through.stderr


@pytest.mark.parametrize("subchart", SUBCHART_DIRS, ids=lambda p: p.name)
def test_helm_template_of_each_subchart_directory_alone_succeeds(subchart: Path) -> None:
    result = run_helm("template", "dox-asdlc", str(subchart), "--kube-version", KUBE_VERSION, "--namespace", NAMESPACE)
    assert result.returncode == 0, result.stderr
    assert _parse(result.stdout).objects, f"{subchart.name} rendered nothing"
    linted = run_helm("lint", "--strict", str(subchart))
    assert linted.returncode == 0, linted.stdout + linted.stderr


def _comparable(obj: dict[str, Any]) -> dict[str, Any]:
    """The object without the annotations that name (or hash) the template's path, which differs by chart root."""
    obj = yaml.safe_load(yaml.safe_dump(obj))
    for meta in (obj["metadata"], obj.get("spec", {}).get("template", {}).get("metadata", {})):
        annotations = meta.get("annotations") or {}
        for key in [k for k in annotations if PATH_DEPENDENT.match(k)]:
            del annotations[key]
    return obj


@pytest.mark.parametrize("subchart", SUBCHART_DIRS, ids=lambda p: p.name)
def test_a_subchart_alone_renders_exactly_its_objects_of_the_umbrella(subchart: Path, default_render: Rendered) -> None:
    """The global defaults a subchart carries are complete and equal to the umbrella's: same objects."""
    result = run_helm("template", "dox-asdlc", str(subchart), "--kube-version", KUBE_VERSION, "--namespace", NAMESPACE)
    assert result.returncode == 0, result.stderr
    alone = {(o["kind"], o["metadata"]["name"]): _comparable(o) for o in _parse(result.stdout).objects}
    prefix = f"dox-asdlc/charts/{IN_UMBRELLA[subchart.name]}/"
    through = {key: _comparable(default_render.index[key])
               for key, source in default_render.sources.items() if source.startswith(prefix)}
    assert alone.keys() == through.keys()
    for key in through:
        assert alone[key] == through[key], key


def _leaves(tree: Any, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    if isinstance(tree, dict) and tree:
        return {k: v for key, value in tree.items() for k, v in _leaves(value, (*path, key)).items()}
    return {path: tree}


@pytest.mark.parametrize("subchart", SUBCHART_DIRS, ids=lambda p: p.name)
def test_a_subcharts_global_defaults_are_the_umbrellas(subchart: Path) -> None:
    umbrella = yaml.safe_load((CHART_DIR / "values.yaml").read_text())["global"]
    own = yaml.safe_load((subchart / "values.yaml").read_text())["global"]
    for path, value in _leaves(own).items():
        node: Any = umbrella
        for key in path:
            assert isinstance(node, dict) and key in node, f"{subchart.name}: global.{'.'.join(path)} not in the umbrella"
            node = node[key]
        assert node == value, f"{subchart.name}: global.{'.'.join(path)} is {value!r}, the umbrella's {node!r}"


def test_the_library_renders_no_object(default_render: Rendered) -> None:
    charts = {source.split("/templates/")[0] for source in default_render.sources.values()}
    assert charts == {"dox-asdlc", *(f"dox-asdlc/charts/{IN_UMBRELLA[sub.name]}" for sub in SUBCHART_DIRS)}
