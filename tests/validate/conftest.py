"""Hermetic validation tests: a cache directory per test session, never the user's own.

The built tools, schemas, virtualenvs and build locks are linked in from the user's cache (building them again
would take minutes and they are keyed by version, so a test cannot change them); everything a validation run
writes (the credential scanner's answers, anything else) lands in the session's directory and goes with it.
"""

from __future__ import annotations

import os

import pytest

from doxops.paths import cache_dir

SHARED = ("tools", "schemas", "venvs", "locks")


@pytest.fixture(scope="session", autouse=True)
def session_cache(tmp_path_factory):
    real = cache_dir()
    mine = tmp_path_factory.mktemp("dox-cache")
    for name in SHARED:
        if (real / name).exists():
            (mine / name).symlink_to(real / name, target_is_directory=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DOX_CACHE_DIR", str(mine))  # subprocesses (./dox in tests) inherit it
        yield mine
    assert os.environ.get("DOX_CACHE_DIR") != str(mine)
