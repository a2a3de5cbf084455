"""Pinned tools: exact versions, refusal of others, corrupt caches, a missing Go."""

from __future__ import annotations

import os
import stat

import pytest

from doxops import toolchain
from doxops.errors import ToolError


def fake_binary(path, output: str, code: int = 0):
    path.write_text(f"#!/bin/sh\necho '{output}'\nexit {code}\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def test_every_pinned_tool_reports_its_pinned_version():
    for tool in toolchain.resolve_all():
        assert toolchain.reported_version(tool.spec, tool.path) == tool.spec.version, tool


def test_other_version_on_path_is_refused(tmp_path, monkeypatch):
    fake_binary(tmp_path / "kubeconform", "v0.6.0")
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    notes = []
    tool = toolchain.resolve("kubeconform", progress=notes.append)
    assert tool.path != tmp_path / "kubeconform" and tool.origin in ("cache", "built")
    assert any("refusing" in n and "v0.6.0" in n for n in notes)


def test_exact_version_on_path_is_used(tmp_path, monkeypatch):
    fake_binary(tmp_path / "kubeconform", "v0.7.0")
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    tool = toolchain.resolve("kubeconform")
    assert (tool.path, tool.origin) == (tmp_path / "kubeconform", "PATH")


def test_explicit_binary_of_wrong_version_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("DOX_HELM", str(fake_binary(tmp_path / "helm", "v3.14.0")))
    with pytest.raises(ToolError) as info:
        toolchain.resolve("helm")
    assert info.value.code == 3 and "v3.14.0" in str(info.value) and "v4.3.1" in str(info.value)


def test_corrupt_cached_binary_is_detected_and_removed(tmp_path, monkeypatch):
    monkeypatch.setenv("DOX_CACHE_DIR", str(tmp_path / "cache"))
    spec = toolchain.load_specs()["kubeconform"]
    directory = toolchain.tool_dir(spec)
    directory.mkdir(parents=True)
    fake_binary(directory / "kubeconform", "garbage", code=1)
    notes = []
    with pytest.raises(ToolError, match="not built yet"):
        toolchain.resolve("kubeconform", build_missing=False, progress=notes.append)
    assert not directory.exists()
    assert any("broken" in n for n in notes)


def test_missing_go_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("DOX_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("PATH", str(tmp_path))  # no go, no tools
    with pytest.raises(ToolError, match="install Go"):
        toolchain.resolve("kubeconform")
