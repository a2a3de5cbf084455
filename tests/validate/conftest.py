"""Hermetic validation tests: the session's own cache directory (tests/conftest.py), never the user's.

tests/conftest.py sets ``DOX_CACHE_DIR`` to a directory of the test session's own, with the built tools and
schemas linked in, for the whole run; everything a validation run writes (the credential scanner's answers,
anything else) lands there and goes with it. (This directory once replaced it with another for the rest of the
session, so a test module that ran after these saw a cache it did not expect: tests must pass in any order.)
"""
