from tests.validate.helpers import run_rule


def test_a_path_of_rendered_manifests_passes():
    assert run_rule("argocd-source", "pass") == []


def test_a_path_that_was_never_rendered_fails():
    found = run_rule("argocd-source", "fail-missing-path")
    assert [d.line for d in found] == [16]
    assert "path rendered/staging/workloads does not exist in the repository or holds no manifests" in found[0].message
