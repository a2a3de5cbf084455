from tests.validate.helpers import run_rule


def test_a_least_privilege_project_passes():
    assert run_rule("argocd-project", "pass") == []


def test_the_default_project_fails():
    found = run_rule("argocd-project", "fail-default-project")
    assert [(d.line, d.message) for d in found] == [
        (15, "Application argocd/shop: uses the default project; give it a project with least privilege")]
