"""One definition of what shapes rendered output, behind every cache key (render, diff --rerender, validate)."""

from __future__ import annotations

from pathlib import Path

from doxops import environments, render
from doxops.paths import REPO_ROOT
from doxops.validate import runner


def test_shaping_inputs_hold_the_code_the_tools_and_the_lock():
    files = {str(p.relative_to(REPO_ROOT)) for p in render.shaping_inputs(REPO_ROOT)}
    package = {f"doxops/render/{p.name}" for p in (REPO_ROOT / "doxops" / "render").glob("*.py")}
    assert package <= files and len(package) >= 7
    assert {"doxops/yamlio.py", "doxops/yamlscalars.py", "tools.toml", "requirements.lock"} <= files
    prod = next(e for e in environments.discover() if e.name == "prod")
    with_env = {str(p.resolve().relative_to(REPO_ROOT)) for p in render.shaping_inputs(REPO_ROOT, prod)}
    assert {"apps/dox-asdlc/values.yaml", "environments/prod/values.yaml", "helm/dox-asdlc/Chart.yaml"} <= with_env


def test_every_cache_key_follows_the_lock_and_the_sources(repo_copy: Path):
    prod = next(e for e in environments.discover(repo_copy) if e.name == "prod")
    keys = lambda: (render.shaping_digest(repo_copy), render.shaping_digest(repo_copy, prod),  # noqa: E731
                    runner.cache_key(prod, repo_copy))
    before = keys()
    lock = repo_copy / "requirements.lock"
    lock.write_text(lock.read_text() + "# changed\n")
    after_lock = keys()
    assert all(a != b for a, b in zip(before, after_lock))  # diff's base cache, the render cache, validation
    values = repo_copy / "environments/prod/values.yaml"
    values.write_text(values.read_text() + "# changed\n")
    after_values = keys()
    assert after_values[0] == after_lock[0]  # a commit's sources are fixed by its id: not in diff's part
    assert after_values[1] != after_lock[1] and after_values[2] != after_lock[2]


def test_one_command_walks_each_kustomization_once_and_never_keeps_a_refusal(repo_copy: Path, monkeypatch):
    import pytest

    from doxops.errors import UsageError
    from doxops.render import sources

    prod = next(e for e in environments.discover(repo_copy) if e.name == "prod")
    walked: list[Path] = []
    real = sources.kustomization_paths
    monkeypatch.setattr(sources, "kustomization_paths", lambda d: walked.append(d) or real(d))
    first = sources.input_files(prod, repo_copy)
    once = len(walked)
    sources.input_files(prod, repo_copy)
    assert len(walked) == 2 * once  # outside a command: walked every time
    walked.clear()
    with sources.walks_remembered():
        assert sources.input_files(prod, repo_copy) == first
        assert sources.input_files(prod, repo_copy) == first and len(walked) == once  # the second one is remembered
        kustomization = repo_copy / "environments" / "prod" / "kustomization.yaml"
        with sources.walks_remembered():  # nested: the same answers
            assert sources.input_files(prod, repo_copy) == first and len(walked) == once
    # a refusal is not remembered: fixed, the next walk in the same command sees the fix
    text = kustomization.read_text()
    with sources.walks_remembered():
        kustomization.write_text(text + "resources:\n  - https://example.com/remote.yaml\n")
        with pytest.raises(UsageError, match="remote source"):
            sources.input_files(prod, repo_copy)
        kustomization.write_text(text)
        assert sources.input_files(prod, repo_copy) == first


def test_one_command_hashes_each_environment_once_and_the_next_command_afresh(repo_copy: Path):
    from doxops.render import sources
    from doxops.validate import cache

    prod = next(e for e in environments.discover(repo_copy) if e.name == "prod")
    values = repo_copy / "environments/prod/values.yaml"
    with sources.walks_remembered():
        digest, key = sources.shaping_digest(repo_copy, prod), cache.cache_key(prod, repo_copy)
        values.write_text(values.read_text() + "# changed during the command\n")
        # the render cache and the validation key keep the reading the command started with
        assert sources.shaping_digest(repo_copy, prod) == digest and cache.cache_key(prod, repo_copy) == key
        sources.remember_digest(repo_copy, prod, "handed-over")  # a caller's digest of moments ago is taken
        assert sources.shaping_digest(repo_copy, prod) == "handed-over"
    assert sources.shaping_digest(repo_copy, prod) != digest and cache.cache_key(prod, repo_copy) != key
    sources.remember_digest(repo_copy, prod, "outside")  # outside a command nothing is kept
    assert sources.shaping_digest(repo_copy, prod) != "outside"


def test_a_render_that_waited_for_the_lock_reads_the_sources_again(repo_copy: Path):
    """Digests handed over before the lock (the cached path's check) are dropped when the render had to wait for
    another render: the sources may have changed meanwhile."""
    import fcntl
    import threading

    from doxops.render import sources

    envs = environments.discover(repo_copy)
    prod = next(e for e in envs if e.name == "prod")
    render.render_all(envs, root=repo_copy, progress=lambda message: None)  # the render cache is filled
    handle = open(repo_copy / ".dox" / "render.lock", "w")
    fcntl.flock(handle, fcntl.LOCK_EX)  # another render holds the lock for half a second
    threading.Timer(0.5, lambda: (fcntl.flock(handle, fcntl.LOCK_UN), handle.close())).start()
    said: list[str] = []
    with sources.walks_remembered():
        sources.remember_digest(repo_copy, prod, "digest-from-before-the-wait")
        [result] = render.render_all([prod], root=repo_copy, progress=said.append)
        assert sources.shaping_digest(repo_copy, prod) != "digest-from-before-the-wait"
    assert any("waiting for it to finish" in message for message in said)
    assert result.cached  # read again, the sources match the cache
