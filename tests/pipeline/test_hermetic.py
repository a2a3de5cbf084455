"""The suite runs in a cache of its own: the user's cache is only linked from, never read for answers or written."""

from __future__ import annotations

import os
import shutil

from doxops import toolchain
from doxops.paths import cache_dir
from tests.conftest import SHARED_CACHE, assert_no_traceback, link_shared, run_dox


def test_the_session_cache_is_not_the_users(session_cache):
    assert cache_dir() == session_cache.resolve() != SHARED_CACHE
    assert os.environ["DOX_CACHE_DIR"] == str(session_cache)
    assert not session_cache.resolve().is_relative_to(SHARED_CACHE)


def test_tools_resolve_inside_the_session_cache(session_cache):
    """Linked from the user's cache (what ./dox test built first), or built by this session into its own."""
    for tool in toolchain.resolve_all():
        if tool.origin in ("cache", "built"):
            assert tool.path.parent.parent.parent == session_cache
            if tool.path.is_symlink():
                assert tool.path.resolve().is_relative_to(SHARED_CACHE)


def test_credential_scan_answers_are_written_to_the_session_cache(repo_copy, session_cache):
    secret = repo_copy / "scan" / "cm.yaml"
    secret.parent.mkdir()
    secret.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: dox-asdlc}\n"
                      "data:\n  GITHUB_TOKEN: ghp_" + "q8Rk2mVx7LpT4nWz9cYb3HsJ6dFg1AeU5oNi" + "\n")
    proc = run_dox(repo_copy, "validate", "--path", "scan")
    assert_no_traceback(proc)
    assert "no-credentials" in proc.stdout, proc.stdout + proc.stderr
    assert (session_cache / "secret-scan" / "answers.sqlite").is_file(), "the scan answered from outside the session"


def test_a_broken_link_is_removed_from_the_session_only(tmp_path):
    shared, session = tmp_path / "shared", tmp_path / "session"
    (shared / "tools" / "demo-v1").mkdir(parents=True)
    (shared / "tools" / "demo-v1" / "demo").write_text("binary")
    (shared / "tools" / "demo-v1" / ".checked.json").write_text("{}")
    (shared / "schemas" / "half-built").mkdir(parents=True)
    assert link_shared(shared, session) == ["tools/demo-v1"]  # an incomplete schema tree is not linked
    (session / "tools" / "demo-v1" / ".checked.json").write_text('{"rewritten": 1}')
    shutil.rmtree(session / "tools" / "demo-v1")
    assert (shared / "tools" / "demo-v1" / "demo").read_text() == "binary"
    assert (shared / "tools" / "demo-v1" / ".checked.json").read_text() == "{}"
