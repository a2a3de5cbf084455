"""Faults: SIGINT, SIGTERM and SIGKILL during render and diff; a full disk while writing."""

from __future__ import annotations

import errno
import os
import hashlib
import subprocess
from pathlib import Path

import pytest

from tests.conftest import assert_no_traceback, run_dox


def tree(directory: Path) -> dict[str, str]:
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def git(repo, *args):
    return subprocess.run(["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args], cwd=repo,
                          check=True, capture_output=True, text=True).stdout


@pytest.mark.parametrize("point", ["after-build", "before-swap"])
@pytest.mark.parametrize("sig", ["INT", "TERM"])
def test_interrupting_a_render_keeps_every_environment_whole(repo_copy, point, sig):
    before = {env: tree(repo_copy / "rendered" / env) for env in ("minikube", "prod")}
    values = repo_copy / "environments/prod/values.yaml"
    values.write_text(values.read_text().replace("maxReplicas: 10", "maxReplicas: 9"))
    proc = run_dox(repo_copy, "render", "--jobs", "1", env={"DOX_FAULT_POINT": point, "DOX_FAULT_SIGNAL": sig})
    assert proc.returncode == 3 and "interrupted" in proc.stderr
    assert_no_traceback(proc)
    after = {env: tree(repo_copy / "rendered" / env) for env in ("minikube", "prod")}
    assert run_dox(repo_copy, "render").returncode == 0
    fresh = {env: tree(repo_copy / "rendered" / env) for env in ("minikube", "prod")}
    for env in ("minikube", "prod"):
        assert after[env] in (before[env], fresh[env])
    assert not [p for p in (repo_copy / "rendered").iterdir() if p.name.startswith(".")]


@pytest.fixture
def git_repo(repo_copy):
    git(repo_copy, "init", "-q", "-b", "main")
    git(repo_copy, "add", "-A")
    git(repo_copy, "commit", "-qm", "base")
    return repo_copy


def worktrees(repo) -> list[str]:
    return [line for line in git(repo, "worktree", "list", "--porcelain").splitlines() if line.startswith("worktree ")]


def test_sigterm_during_diff_rerender_removes_its_worktree(git_repo):
    proc = run_dox(git_repo, "diff", "--rerender", env={"DOX_FAULT_POINT": "diff-worktree", "DOX_FAULT_SIGNAL": "TERM"})
    assert proc.returncode == 3
    assert_no_traceback(proc)
    assert len(worktrees(git_repo)) == 1  # only the main one
    assert not list((git_repo / ".dox" / "worktrees").iterdir())


def test_sigkill_during_diff_rerender_leaves_a_worktree_the_next_diff_removes(git_repo):
    proc = run_dox(git_repo, "diff", "--rerender", env={"DOX_FAULT_POINT": "diff-worktree"})
    assert proc.returncode == -9
    assert len(worktrees(git_repo)) == 2
    proc = run_dox(git_repo, "diff", "--rerender")
    assert proc.returncode == 0, proc.stderr
    assert len(worktrees(git_repo)) == 1
    assert not list((git_repo / ".dox" / "worktrees").iterdir())


def test_full_disk_while_writing_leaves_the_previous_output(repo_copy, monkeypatch, tmp_path):
    """ENOSPC injected at the write layer (os.write), in-process."""
    from doxops import environments, render
    from doxops.errors import ToolError

    envs = environments.discover(repo_copy)
    before = tree(repo_copy / "rendered")
    values = repo_copy / "environments/prod/values.yaml"
    values.write_text(values.read_text().replace("maxReplicas: 10", "maxReplicas: 9"))
    real_write = os.write
    calls = {"n": 0}

    def failing_write(fd, data):
        calls["n"] += 1
        if calls["n"] > 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", failing_write)
    with pytest.raises(ToolError) as info:
        render.render_all(envs, root=repo_copy, use_cache=False, jobs=1, progress=lambda m: None)
    assert info.value.code == 3
    assert "No space left on device" in str(info.value) and "previous output is intact" in str(info.value)
    monkeypatch.setattr(os, "write", real_write)
    assert tree(repo_copy / "rendered") == before
    assert not [p for p in (repo_copy / "rendered").iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("failing", ["write", "fsync"])
def test_a_failed_write_or_fsync_is_raised_with_every_file_closed(tmp_path, monkeypatch, failing):
    """The files of a tree are fsynced together from a few threads: an error there (EIO after a lost disk, a
    quota reached at writeback) is raised from write_tree like a failed write, with no descriptor left open."""
    from doxops.render import write

    files = {f"workloads/configmap-{i:03}.yaml": f"kind: ConfigMap\nmetadata: {{name: c{i}}}\n" for i in range(150)}
    import itertools
    import threading

    real = getattr(os, failing)
    calls = itertools.count(1)
    counting = threading.Lock()  # the fsyncs come from several threads

    def fail_once(fd, *args):
        with counting:
            n = next(calls)
        if n == 70:  # in the second batch of FSYNC_BATCH files
            raise OSError(errno.EIO, "Input/output error")
        return real(fd, *args)

    open_before = len(os.listdir("/proc/self/fd"))
    monkeypatch.setattr(os, failing, fail_once)
    with pytest.raises(OSError, match="Input/output error"):
        write.write_tree(tmp_path / "new", files)
    monkeypatch.setattr(os, failing, real)
    assert len(os.listdir("/proc/self/fd")) == open_before
    write.write_tree(tmp_path / "whole", files)  # and without the fault, every file, each with its text
    assert {str(p.relative_to(tmp_path / "whole")): p.read_text() for p in (tmp_path / "whole").rglob("*.yaml")} \
        == files
    assert {oct(p.stat().st_mode & 0o777) for p in (tmp_path / "whole").rglob("*.yaml")} == {"0o644"}
