"""Shared fixtures: a cache of the test session's own, and a throwaway copy of the repository for tests that write.

The suite never reads or writes the user's cache (``~/.cache/dox-asdlc`` or ``$DOX_CACHE_DIR``): every session
gets a fresh one (``DOX_CACHE_DIR``, inherited by every ``./dox`` the tests start) in which the built tools and
the schemas are linked from the user's cache, which ``./dox test`` fills before pytest starts. The links are
read only in effect: each tool directory is the session's own, holding symlinks to the binaries and a copy of
their stamp, so a test that finds a "broken" entry removes only its links; schema trees are complete and never
written again. Everything else (credential-scan answers, locks, venvs) starts empty and is removed at the end.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from doxops.paths import cache_dir, copy_working_tree

#: The user's cache, as it was before the session replaced it (the source of the links, never written).
SHARED_CACHE = cache_dir()
_PREVIOUS = os.environ.get("DOX_CACHE_DIR")
_SESSION: dict[str, Path] = {}


def link_shared(shared: Path, session: Path) -> list[str]:
    """Link the built tools and complete schema trees of ``shared`` into ``session``; returns what was linked."""
    linked = []
    for entry in sorted((shared / "tools").glob("[!.]*")):
        if not entry.is_dir():
            continue
        own = session / "tools" / entry.name
        own.mkdir(parents=True)
        for item in entry.iterdir():
            if item.name.startswith("."):
                if item.is_file():
                    shutil.copy2(item, own / item.name)  # the stamp: the session may rewrite its own copy
            else:
                (own / item.name).symlink_to(item)
        linked.append(f"tools/{entry.name}")
    for entry in sorted((shared / "schemas").glob("[!.]*")):
        if (entry / ".complete").exists():
            (session / "schemas").mkdir(parents=True, exist_ok=True)
            (session / "schemas" / entry.name).symlink_to(entry)
            linked.append(f"schemas/{entry.name}")
    return linked


def pytest_configure(config):
    session = Path(tempfile.mkdtemp(prefix="dox-test-cache-"))
    _SESSION["dir"] = session
    _SESSION["linked"] = link_shared(SHARED_CACHE, session)  # type: ignore[assignment]
    os.environ["DOX_CACHE_DIR"] = str(session)


def pytest_unconfigure(config):
    if _PREVIOUS is None:
        os.environ.pop("DOX_CACHE_DIR", None)
    else:
        os.environ["DOX_CACHE_DIR"] = _PREVIOUS
    if "dir" in _SESSION:
        shutil.rmtree(_SESSION.pop("dir"), ignore_errors=True)


def pytest_report_header(config):
    linked = _SESSION.get("linked") or []
    tools = sum(1 for name in linked if name.startswith("tools/"))
    line = f"dox cache: {_SESSION.get('dir')} (this session's; {tools} tools and " \
           f"{len(linked) - tools} schema trees linked from {SHARED_CACHE})"
    if not tools:
        line += "; nothing is built yet: run `./dox test`, which builds them first, or tests will build their own"
    return line


@pytest.fixture(scope="session")
def session_cache() -> Path:
    """The session's cache directory (``DOX_CACHE_DIR`` for the whole run)."""
    return _SESSION["dir"]


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


@pytest.fixture(scope="session")
def pool():
    """One etcd + kube-apiserver (the API-server stage's pool) for every test of the session that needs one:
    the validate stage's and the diff's immutable-field tests (each uses its own namespaces and result cache)."""
    from doxops.cluster import binaries
    from doxops.validate import server

    resolved = binaries.ensure(["kubernetes", "etcd"])
    with server.Pool(binaries=resolved.paths, progress=lambda message: None) as shared:
        yield shared
