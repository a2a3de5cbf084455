"""kustomize's `helm version --short` is answered with what the pinned helm prints for it (render/tools.py).

The real helm is the oracle: the answering script must say exactly what helm says to that question, pass every
other call to helm, and leave kustomize's output byte for byte the same.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from doxops import environments, toolchain
from doxops.paths import REPO_ROOT
from doxops.render import tools


@pytest.fixture(scope="module")
def helm() -> Path:
    return toolchain.resolve("helm").path


def _run(binary: Path, *args: str, home: Path) -> tuple[int, str, str]:
    proc = subprocess.run([str(binary), *args], capture_output=True, text=True, env=tools.tool_env(home), timeout=120)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.mark.parametrize("args", [("version", "--short"), ("version",), ("version", "--short", "--template",
                                                                             "{{.Version}}"), ("--help",)])
def test_the_script_says_what_helm_says(helm, tmp_path, args):
    from doxops.paths import cache_dir

    script = tools.helm_command(helm)
    assert script != helm and script.read_text().startswith("#!/bin/sh")  # the script, not helm itself
    assert script.parent == cache_dir() / "helm-answers"  # run from the cache, never from a temporary directory
    assert _run(script, *args, home=tmp_path) == _run(helm, *args, home=tmp_path)


@pytest.mark.parametrize("target", ["environments/prod", "environments/minikube", "environments/prod/argocd",
                                    "environments/minikube/argocd"])
def test_a_build_through_the_script_is_the_build_through_helm(helm, tmp_path, target):
    directory = REPO_ROOT / target
    kustomize = toolchain.resolve("kustomize").path
    env = tools.tool_env(tmp_path / "plain")
    (tmp_path / "plain").mkdir()
    plain = subprocess.run(tools.kustomize_command(kustomize, helm, directory), capture_output=True, text=True,
                           cwd=REPO_ROOT, env=env, timeout=300)
    assert plain.returncode == 0, plain.stderr
    (tmp_path / "answered").mkdir()
    answered = tools.build_stream(directory, {"kustomize": kustomize, "helm": helm}, tmp_path / "answered", REPO_ROOT)
    assert answered == plain.stdout


def _fake_helm(path: Path, version: str, code: int = 0, stderr: str = "") -> Path:
    path.write_text(f"#!/bin/sh\nif [ \"$1\" = version ]; then printf '%s\\n' '{version}'; "
                    f"[ -n '{stderr}' ] && echo '{stderr}' >&2; exit {code}; fi\necho \"template $*\"\n")
    path.chmod(0o755)
    return path


def test_the_answer_is_asked_once_per_binary_and_again_when_it_changes(tmp_path):
    from doxops.paths import cache_dir  # the session's own cache (tests/conftest.py)

    (tmp_path / "bin with 'quote").mkdir()
    fake = _fake_helm(tmp_path / "bin with 'quote" / "helm", "v3.99.1")
    assert tools.recorded_version(fake) == "v3.99.1\n"
    kept = list((cache_dir() / "helm-answers").glob("*.json"))
    record = next(p for p in kept if json.loads(p.read_text())["identity"]["path"] == str(fake.resolve()))
    data = json.loads(record.read_text())
    data["stdout"] = "v3.0.0-kept\n"  # what the cache says is what is answered while the binary is unchanged
    record.write_text(json.dumps(data))
    assert tools.recorded_version(fake) == "v3.0.0-kept\n"
    _fake_helm(fake, "v3.99.2-changed")  # another size: asked again
    assert tools.recorded_version(fake) == "v3.99.2-changed\n"
    script = tools.helm_command(fake)
    assert _run(script, "version", "--short", home=tmp_path) == (0, "v3.99.2-changed\n", "")
    assert _run(script, "template", "x", home=tmp_path)[1] == "template template x\n"  # the quoted path runs
    _fake_helm(fake, "v3.99.3-again")  # a script per answer and binary: the old one is not reused
    again = tools.helm_command(fake)
    assert again != script and _run(again, "version", "--short", home=tmp_path)[1] == "v3.99.3-again\n"


@pytest.mark.parametrize("code, stderr", [(1, ""), (0, "a warning")])
def test_a_helm_whose_answer_fails_or_warns_is_run_itself(tmp_path, code, stderr):
    from doxops.paths import cache_dir

    fake = _fake_helm(tmp_path / "helm", "v3.1.0", code=code, stderr=stderr)
    assert tools.recorded_version(fake) is None
    assert tools.helm_command(fake) == fake
    kept = [json.loads(p.read_text()) for p in (cache_dir() / "helm-answers").glob("*.json")]
    assert str(fake.resolve()) not in {k["identity"]["path"] for k in kept}  # a failure is not kept


def test_a_render_starts_helm_once_per_chart(tmp_path):
    """Counted through a logging wrapper around the pinned helm: after the one recording, `template` only."""
    helm = toolchain.resolve("helm").path
    log = tmp_path / "calls.log"
    wrapper = tmp_path / "bin" / "helm"
    wrapper.parent.mkdir()
    wrapper.write_text(f"#!/bin/sh\necho \"$1\" >> '{log}'\nexec '{helm}' \"$@\"\n")
    wrapper.chmod(0o755)
    prod = next(e for e in environments.discover() if e.name == "prod")
    (tmp_path / "home").mkdir()
    tools.build_stream(prod.path, {"kustomize": toolchain.resolve("kustomize").path, "helm": wrapper},
                       tmp_path / "home", REPO_ROOT)
    assert log.read_text().split() == ["version", "template"]  # the first asks the real one, once, to record it
    log.write_text("")
    (tmp_path / "home2").mkdir()
    tools.build_stream(prod.path, {"kustomize": toolchain.resolve("kustomize").path, "helm": wrapper},
                       tmp_path / "home2", REPO_ROOT)
    assert log.read_text().split() == ["template"]


def test_the_record_and_the_script_are_read_once_per_process(tmp_path, monkeypatch):
    fake = _fake_helm(tmp_path / "helm", "v3.42.0")
    first = tools.helm_command(fake)
    monkeypatch.setattr(tools, "recorded_version", lambda helm: pytest.fail("asked again for the same binary"))
    assert tools.helm_command(fake) == first
    _fake_helm(fake, "v3.42.1-other")  # another binary: asked again
    with pytest.raises(pytest.fail.Exception, match="asked again"):
        tools.helm_command(fake)
