from tests.validate.helpers import run_rule


def test_automated_healing_retrying_sync_with_the_finalizer_passes():
    assert run_rule("argocd-sync", "pass") == []


def test_manual_sync_without_retry_or_finalizer_fails():
    messages = [d.message for d in run_rule("argocd-sync", "fail-manual")]
    assert any("no automated sync" in m for m in messages)
    assert any("no retry" in m for m in messages)
    assert any("without the resources-finalizer.argocd.argoproj.io/foreground finalizer" in m for m in messages)
