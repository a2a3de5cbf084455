"""Shared fixtures: a throwaway copy of the repository for tests that write."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from doxops.paths import copy_working_tree

def copy_repo(target: Path) -> Path:
    return copy_working_tree(target)


def run_dox(repo: Path, *args: str, env: dict | None = None, timeout: int = 120,
            umask: int | None = None) -> subprocess.CompletedProcess:
    """``python -m doxops ARGS`` inside ``repo`` (a copy), as a user would run ./dox."""
    full_env = {**os.environ, "PYTHONPATH": str(repo), **(env or {})}
    def preexec():
        # A shell that starts jobs in the background ignores SIGINT for them, and Python then never turns
        # Ctrl-C into KeyboardInterrupt: give the child the default disposition, as a terminal would.
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        if umask is not None:
            os.umask(umask)

    return subprocess.run([sys.executable, "-m", "doxops", *args], cwd=repo, env=full_env,
                          capture_output=True, text=True, timeout=timeout, preexec_fn=preexec)


@pytest.fixture
def repo_copy(tmp_path) -> Path:
    return copy_repo(tmp_path / "repo")


def assert_no_traceback(proc: subprocess.CompletedProcess) -> None:
    assert "Traceback (most recent call last)" not in proc.stderr + proc.stdout, proc.stderr
