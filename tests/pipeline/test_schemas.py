"""doxops.schemas: the installed kubernetes-validate version, read without importing importlib.metadata."""

from __future__ import annotations

import importlib.metadata
import importlib.util
from pathlib import Path

import pytest

from doxops import schemas
from doxops.errors import ToolError


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    return Path(next(iter(spec.submodule_search_locations)))


@pytest.mark.parametrize(("package", "project"), [
    ("kubernetes_validate", "kubernetes-validate"),
    ("yaml", "PyYAML"),  # a project whose import name differs from its distribution name: found by the oracle
    ("ruamel", "ruamel.yaml"),
    ("invoke", "invoke"),
])
def test_installed_version_agrees_with_importlib_metadata(package, project):
    assert schemas.installed_version(_package_dir(package), project) == importlib.metadata.version(project)


def _site(tmp_path: Path, *dist_infos: str) -> Path:
    package = tmp_path / "kubernetes_validate"
    package.mkdir()
    for name in dist_infos:
        (tmp_path / name).mkdir()
    return package


def test_the_dist_info_name_is_read(tmp_path):
    # The version is the directory's: importlib.metadata (which reads the real installation) is not asked.
    assert schemas.installed_version(_site(tmp_path, "kubernetes_validate-9.8.7.dist-info"),
                                     "kubernetes-validate") == "9.8.7"


def test_other_projects_with_the_same_prefix_are_not_taken(tmp_path):
    package = _site(tmp_path, "kubernetes_validate_extra-1.0.dist-info", "kubernetes_validate-2.0.dist-info")
    assert schemas.installed_version(package, "kubernetes-validate") == "2.0"


def test_ambiguous_or_missing_dist_info_asks_importlib_metadata(tmp_path):
    two = _site(tmp_path, "kubernetes_validate-1.0.dist-info", "kubernetes_validate-2.0.dist-info")
    # Two records beside the package: the real installation's answer, not either directory's.
    assert schemas.installed_version(two, "kubernetes-validate") == importlib.metadata.version("kubernetes-validate")


def test_a_project_that_is_not_installed_is_a_tool_error(tmp_path):
    with pytest.raises(ToolError, match="no-such-project-dox is not installed"):
        schemas.installed_version(_site(tmp_path), "no-such-project-dox")
