"""Pinned tools: one build mechanism, one check (the Go build info), refusal of others, corrupt caches, no Go."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest

from doxops import gotools, toolchain
from doxops.cluster import binaries
from doxops.errors import ToolError, UsageError


def fake_binary(path, output: str, code: int = 0):
    path.write_text(f"#!/bin/sh\necho '{output}'\nexit {code}\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def test_every_pinned_tool_is_the_pinned_build():
    for tool in toolchain.resolve_all():
        assert gotools.check(tool.spec, tool.path) is None, tool
        assert toolchain.reported_version(tool.spec, tool.path) == tool.spec.version, tool


def test_the_pipeline_and_the_cluster_tools_share_one_mechanism():
    assert toolchain.ToolSpec is binaries.BinarySpec is gotools.GoTool
    assert binaries.check is gotools.check and binaries.build_command is gotools.build_command
    assert set(toolchain.load_specs()).isdisjoint(binaries.load_specs())


def test_a_script_printing_the_pinned_version_is_refused(tmp_path, monkeypatch):
    """The version string proves only the ldflags: a binary that is not the pinned build is refused."""
    fake_binary(tmp_path / "kubeconform", "v0.7.0")
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    notes = []
    tool = toolchain.resolve("kubeconform", progress=notes.append)
    assert tool.path != tmp_path / "kubeconform" and tool.origin in ("cache", "built")
    assert any("refusing" in n and "no Go build info" in n for n in notes), notes


def test_the_pinned_build_on_path_is_used(tmp_path, monkeypatch):
    real = toolchain.resolve("kubeconform").path
    shutil.copy2(real, tmp_path / "kubeconform")
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    tool = toolchain.resolve("kubeconform")
    assert (tool.path, tool.origin) == (tmp_path / "kubeconform", "PATH")


def test_explicit_binary_of_another_module_is_an_error(tmp_path, monkeypatch):
    other = shutil.copy2(toolchain.resolve("kubeconform").path, tmp_path / "helm")
    monkeypatch.setenv("DOX_HELM", str(other))
    with pytest.raises(ToolError) as info:
        toolchain.resolve("helm")
    message = str(info.value)
    assert info.value.code == 3 and "DOX_HELM=" in message and "v4.3.1" in message
    assert "github.com/yannh/kubeconform" in message and "helm.sh/helm/v4/cmd/helm" in message


def test_another_version_of_the_module_fails_the_check():
    tool = toolchain.resolve("kubeconform")
    older = gotools.GoTool(**{**tool.spec.__dict__, "version": "v0.6.7"})
    assert gotools.check(older, tool.path) == "is github.com/yannh/kubeconform/cmd/kubeconform at v0.7.0, not v0.6.7"


def _wrapper(tmp_path, requires: str, packages=(".",)):
    wrapper = tmp_path / "gobuild" / "demo"
    wrapper.mkdir(parents=True)
    (wrapper / "go.mod").write_text(f"module dox-asdlc.local/gobuild/demo\n\ngo 1.26.0\n\nrequire (\n{requires})\n")
    return gotools.GoTool(section="cluster", name="demo", version="v1.36.1", binaries=("demo",), ldflags=(),
                          version_args=("--version",), version_regex="(v.*)", gobuild="gobuild/demo",
                          packages=packages)


WRAPPER = "dox-asdlc.local/gobuild/demo"
APISERVER = "k8s.io/kubernetes/cmd/kube-apiserver"


@pytest.mark.parametrize("packages, path, main, deps, problem", [
    # the wrapper's own main package (etcd): "mod" is the wrapper, the pinned module a dependency
    (["."], WRAPPER, (WRAPPER, "(devel)"), {"k8s.io/kubernetes": "v1.36.1"}, None),
    (["."], WRAPPER, (WRAPPER, "(devel)"), {"k8s.io/kubernetes": "v1.36.0"}, "was built with k8s.io/kubernetes v1.36.0"),
    (["."], WRAPPER, (WRAPPER, "(devel)"), {"k8s.io/api": "v0.36.1"}, "was built without k8s.io/kubernetes"),
    (["."], "example.com/other", ("example.com/other", "(devel)"), {"k8s.io/kubernetes": "v1.36.1"},
     "not a package gobuild/demo builds"),
    # a package of the pinned module itself (Kubernetes, Argo CD): "mod" is that module at its version
    ([APISERVER], APISERVER, ("k8s.io/kubernetes", "v1.36.1"), {"k8s.io/api": "v0.36.1"}, None),
    ([APISERVER], APISERVER, ("k8s.io/kubernetes", "v1.35.0"), {}, "was built with k8s.io/kubernetes v1.35.0"),
    ([APISERVER], "k8s.io/kubernetes/cmd/kubelet", ("k8s.io/kubernetes", "v1.36.1"), {}, "not a package"),
])
def test_a_wrapper_build_is_checked_by_its_build_info(tmp_path, monkeypatch, packages, path, main, deps, problem):
    spec = _wrapper(tmp_path, "\tk8s.io/kubernetes v1.36.1 // indirect\n\tk8s.io/api v0.36.1\n", tuple(packages))
    info = gotools.BuildInfo(path=path, main=main, deps=deps, settings={})
    monkeypatch.setattr(gotools, "build_info", lambda binary: info)
    got = gotools.check(spec, tmp_path / "demo", root=tmp_path)
    assert got is None if problem is None else problem in got, got


def test_every_built_cluster_binary_passes_the_check():
    """The real wrappers' builds (where this machine has them): the check reads them right, so nothing is rebuilt."""
    for spec in binaries.load_specs().values():
        for binary in spec.binaries:
            path = gotools.tool_dir(spec) / binary
            if path.exists():
                assert gotools.check(spec, path) is None, path


def test_a_wrapper_that_pins_another_version_is_a_usage_error(tmp_path):
    spec = _wrapper(tmp_path, "\tk8s.io/kubernetes v1.35.0\n")
    with pytest.raises(UsageError, match=r"gobuild/demo/go.mod requires no module at v1.36.1"):
        gotools.pinned_modules(spec, tmp_path)


def test_one_build_command_for_both_kinds_of_table():
    kubeconform = toolchain.load_specs()["kubeconform"]
    argv, env, _ = gotools.build_command(kubeconform, gotools.tool_dir(kubeconform))
    assert argv[1:3] == ["install", "-p"] and argv[-1] == "github.com/yannh/kubeconform/cmd/kubeconform@v0.7.0"
    assert env["CGO_ENABLED"] == "0" and "-trimpath" in argv
    etcd = binaries.load_specs()["etcd"]
    argv, env, cwd = gotools.build_command(etcd, gotools.tool_dir(etcd))
    assert argv[1:3] == ["build", "-p"] and cwd.name == "etcd" and env["GOFLAGS"] == "-mod=mod"


def test_corrupt_cached_binary_is_detected_and_kept_until_replaced(tmp_path, monkeypatch):
    monkeypatch.setenv("DOX_CACHE_DIR", str(tmp_path / "cache"))
    spec = toolchain.load_specs()["kubeconform"]
    directory = toolchain.tool_dir(spec)
    directory.mkdir(parents=True)
    fake_binary(directory / "kubeconform", "v0.7.0")  # says the right version, but is no build of the module
    notes = []
    with pytest.raises(ToolError, match="not the pinned build; run `./dox tools`"):
        toolchain.resolve("kubeconform", build_missing=False, progress=notes.append)
    assert (directory / "kubeconform").exists()  # nothing is removed before a replacement exists
    assert any("broken" in n and "no Go build info" in n for n in notes), notes


def test_a_checked_cache_entry_needs_no_process(tmp_path, monkeypatch):
    real = _real("kubeconform")
    monkeypatch.setenv("DOX_CACHE_DIR", str(tmp_path / "cache"))
    spec = toolchain.load_specs()["kubeconform"]
    directory = toolchain.tool_dir(spec)
    directory.mkdir(parents=True)
    shutil.copy2(real, directory / "kubeconform")
    assert gotools.cached(spec) == {"kubeconform": directory / "kubeconform"}  # checked once, stamped
    monkeypatch.setattr(gotools, "build_info", lambda binary: pytest.fail("the stamp should have answered"))
    assert gotools.cached(spec) == {"kubeconform": directory / "kubeconform"}


def _real(name: str):
    return toolchain.resolve(name).path


def test_missing_go_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("DOX_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("PATH", str(tmp_path))  # no go, no tools
    with pytest.raises(ToolError, match="install Go"):
        toolchain.resolve("kubeconform")


def test_a_tables_build_tags_are_built_and_checked(monkeypatch):
    """gitleaks-re2 is built with its release's tag gore2regex; a build without it is not the pinned build."""
    spec = toolchain.load_specs()["gitleaks-re2"]
    argv, _, _ = gotools.build_command(spec, gotools.tool_dir(spec))
    assert argv[argv.index("-tags") + 1] == "gore2regex"
    assert gotools.check(spec, toolchain.resolve("gitleaks-re2").path) is None
    info = gotools.BuildInfo(path=spec.module, main=(spec.module, spec.version), deps={}, settings={})
    monkeypatch.setattr(gotools, "build_info", lambda binary: info)
    assert gotools.check(spec, gotools.tool_dir(spec) / "gitleaks") == "was built with tags '(none)', not 'gore2regex'"
    plain = toolchain.load_specs()["gitleaks"]  # and a build with tags is not the pinned build without them
    tagged = gotools.BuildInfo(path=plain.module, main=(plain.module, plain.version), deps={},
                               settings={"-tags": "gore2regex"})
    monkeypatch.setattr(gotools, "build_info", lambda binary: tagged)
    assert gotools.check(plain, gotools.tool_dir(plain) / "gitleaks") == \
        "was built with tags 'gore2regex', not '(none)'"


def test_the_tools_run_with_the_pipelines_gogc_unless_the_user_sets_one(monkeypatch, tmp_path):
    from doxops.render.tools import tool_env

    monkeypatch.delenv("GOGC", raising=False)
    assert tool_env(tmp_path)["GOGC"] == gotools.RUN_GOGC == "400"
    monkeypatch.setenv("GOGC", "100")
    assert tool_env(tmp_path)["GOGC"] == "100" and gotools.run_env({"A": "b"}) == {"A": "b", "GOGC": "100"}
    # kubeconform too: the environment its run gets
    import subprocess

    from doxops.validate import kubeconform

    seen = {}

    def fake_run(argv, **kwargs):
        seen.update(kwargs["env"])
        return subprocess.CompletedProcess(argv, 0, stdout='{"resources": []}', stderr="")

    monkeypatch.setattr(kubeconform.subprocess, "run", fake_run)
    monkeypatch.delenv("GOGC", raising=False)
    assert kubeconform.results([tmp_path / "x.yaml"], "1.36.1") == [] and seen["GOGC"] == "400"


def test_an_optional_cgo_build_is_pinned_with_cgo_and_its_headers(monkeypatch):
    """gitleaks-re2-system links the system's RE2: built with CGO_ENABLED=1 and both tags, and a build without
    cgo (or the portable builds) is not it."""
    import dataclasses

    spec = toolchain.load_specs()["gitleaks-re2-system"]
    assert spec.optional and spec.cgo and spec.needs_headers == ("re2/re2.h",)
    argv, env, _ = gotools.build_command(spec, gotools.tool_dir(spec))
    assert env["CGO_ENABLED"] == "1" and argv[argv.index("-tags") + 1] == "gore2regex,re2_cgo"
    assert gotools.build_command(toolchain.load_specs()["gitleaks"], Path("/x"))[1]["CGO_ENABLED"] == "0"
    same_tags = dataclasses.replace(toolchain.load_specs()["gitleaks"], cgo=True)
    assert gotools.check(same_tags, toolchain.resolve("gitleaks").path) == \
        "was built without cgo (CGO_ENABLED=1 is pinned)"
    assert gotools.check(spec, toolchain.resolve("gitleaks-re2").path) == \
        "was built with tags 'gore2regex', not 'gore2regex,re2_cgo'"


def test_the_compiler_decides_which_headers_are_missing(monkeypatch):
    import dataclasses

    spec = dataclasses.replace(toolchain.load_specs()["gitleaks-re2-system"],
                               needs_headers=("stdio.h", "no/such/dox-header.h"))
    if not shutil.which("go") or not (shutil.which("c++") or shutil.which("g++")):
        pytest.skip("no go or no C++ compiler on this machine")  # then every header is missing: the case below
    monkeypatch.delenv("CXX", raising=False)
    assert gotools.missing_headers(spec) == ["no/such/dox-header.h"]
    monkeypatch.setenv("CXX", "/nonexistent/dox-c++")  # go env CXX follows $CXX: no compiler, nothing included
    assert gotools.missing_headers(spec) == ["stdio.h", "no/such/dox-header.h"]
    assert gotools.missing_headers(dataclasses.replace(spec, needs_headers=())) == []


def test_an_optional_tool_that_cannot_be_built_is_left_out_with_a_note(tmp_path, monkeypatch):
    """Nothing depends on an optional build: resolve_all names what is missing and goes on, building nothing."""
    notes: list[str] = []
    monkeypatch.setattr(toolchain, "resolve_optional", lambda name, specs=None: None)
    monkeypatch.setattr(gotools, "missing_headers", lambda spec: list(spec.needs_headers))
    built = []
    real = toolchain.resolve
    monkeypatch.setattr(toolchain, "resolve", lambda name, **kw: built.append(name) or real(name, **kw))
    tools = toolchain.resolve_all(progress=notes.append)
    assert "gitleaks-re2-system" not in {t.name for t in tools} and "gitleaks-re2-system" not in built
    assert {"helm", "kustomize", "gitleaks", "gitleaks-re2"} <= {t.name for t in tools}
    assert notes == ["gitleaks-re2-system: optional, not built: the C++ compiler (go env CXX) cannot include "
                     "re2/re2.h (tools.toml [tools.gitleaks-re2-system] says which packages provide them)"]


def test_cgo_and_optional_must_be_booleans(tmp_path):
    table = {"module": "example.com/x", "version": "v1.0.0", "version_args": ["version"], "version_regex": "(.*)",
             "optional": "false"}
    with pytest.raises(UsageError, match=r"\[tools.x\] optional = 'false': write true or false"):
        gotools.from_table("tools", "x", table, tmp_path / "tools.toml")
    assert gotools.from_table("tools", "x", {**table, "optional": True}, tmp_path / "tools.toml").optional is True
