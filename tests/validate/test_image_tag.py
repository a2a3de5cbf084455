import pytest

from doxops.errors import UsageError
from tests.validate.helpers import config, run_rule


def require(level: str):
    return config(rules={"image-tag": {"conf": {"require": level}}})


def test_tags_versions_and_digests_pass_by_default_and_when_requiring_versions():
    assert run_rule("image-tag", "pass.yaml") == []
    assert run_rule("image-tag", "pass.yaml", cfg=require("version")) == []


def test_missing_latest_and_malformed_references_fail_at_the_image():
    found = run_rule("image-tag", "fail.yaml")
    assert [(d.line, d.level) for d in found] == [(10, "error"), (12, "error"), (14, "error"), (15, "error")]
    assert "container setup image registry.example.com:5000/team/setup has no tag" in found[0].message  # a port
    assert "pool:latest uses the tag latest" in found[1].message
    assert "malformed digest" in found[2].message
    assert "container empty has no image" in found[3].message


def test_require_version_rejects_a_tag_that_is_no_version():
    found = run_rule("image-tag", "fail.yaml", cfg=require("version"))
    assert [d.line for d in found] == [10, 12, 13, 14, 15]
    assert "cache:stable has the tag stable, which does not read as a version" in found[2].message


def test_require_digest_rejects_tags_alone():
    found = run_rule("image-tag", "pass.yaml", cfg=require("digest"))
    assert [(d.line, d.level) for d in found] == [(10, "error"), (12, "error"), (13, "error")]
    assert all("is not pinned by digest" in d.message for d in found)


def test_an_unknown_requirement_is_a_usage_error():
    with pytest.raises(UsageError, match="require"):
        run_rule("image-tag", "pass.yaml", cfg=require("semver"))
