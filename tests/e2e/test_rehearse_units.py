"""The rehearsal's readings without a cluster: when a sync is done or failed, and which fields changed.

Each case is an Application status or a pair of live objects written here, so every verdict is shown
going both ways (done and not done, failed and not failed, changed and unchanged).
"""

from __future__ import annotations

from doxops.cluster.rehearse import observe

HEAD = "b" * 40


def _app(*, op_revision=HEAD, phase="Succeeded", message="", results=(), sync="Synced", revision=HEAD,
         health="Healthy", resources=(), reconciled="2026-11-30T07:00:05Z", finished="2026-11-30T07:00:04Z"):
    return {"status": {
        "operationState": {"phase": phase, "message": message, "finishedAt": finished,
                           "syncResult": {"revision": op_revision, "resources": list(results)}},
        "sync": {"status": sync, "revision": revision}, "health": {"status": health},
        "resources": list(resources), "reconciledAt": reconciled}}


def test_a_succeeded_sync_at_the_head_is_done_only_once_reconciled_after_it():
    assert observe.sync_outcome(_app(), HEAD).done
    assert not observe.sync_outcome(_app(reconciled="2026-11-30T07:00:03Z"), HEAD).done
    assert not observe.sync_outcome(_app(health="Progressing"), HEAD).done
    assert not observe.sync_outcome(_app(resources=[{"kind": "Deployment", "name": "x", "status": "OutOfSync"}]),
                                    HEAD).done


def test_a_resource_left_requiring_a_prune_does_not_keep_it_from_done():
    left = [{"kind": "NetworkPolicy", "namespace": "dox-asdlc", "name": "hitl-ui", "status": "OutOfSync",
             "requiresPruning": True}]
    outcome = observe.sync_outcome(_app(sync="OutOfSync", resources=left), HEAD)
    assert outcome.done and outcome.requires_pruning == {("NetworkPolicy", "dox-asdlc", "hitl-ui")}


def test_no_operation_at_the_head_is_done_when_nothing_but_prunes_differ():
    left = [{"kind": "NetworkPolicy", "name": "hitl-ui", "status": "OutOfSync", "requiresPruning": True}]
    outcome = observe.sync_outcome(_app(op_revision="a" * 40, sync="OutOfSync", resources=left), HEAD)
    assert outcome.done and outcome.phase.startswith("none started")
    changed = [{"kind": "ConfigMap", "name": "x", "status": "OutOfSync"}]
    assert not observe.sync_outcome(_app(op_revision="a" * 40, sync="OutOfSync", resources=changed), HEAD).done
    assert not observe.sync_outcome(_app(op_revision="a" * 40, revision="a" * 40), HEAD).done  # not yet compared


def test_the_first_refused_resource_fails_the_sync_at_once_even_while_argo_cd_retries():
    refused = [{"kind": "Deployment", "namespace": "dox-asdlc", "name": "hitl-ui", "status": "SyncFailed",
                "message": "spec.selector: Invalid value: field is immutable"}]
    outcome = observe.sync_outcome(_app(phase="Running", message="Retrying attempt #1 at 07:00:05", results=refused),
                                   HEAD)
    assert outcome.failed and not outcome.done and "field is immutable" in outcome.reason
    assert outcome.phase.startswith("Failed (first attempt")
    retry = observe.sync_outcome(_app(phase="Running", message="Retrying attempt #1: one or more objects failed"),
                                 HEAD)
    assert retry.failed
    assert not observe.sync_outcome(_app(phase="Running", message="waiting for healthy state"), HEAD).failed
    assert not observe.sync_outcome(_app(op_revision="a" * 40, phase="Failed", revision="a" * 40), HEAD).failed


def test_changed_paths_are_named_as_the_diff_names_them_and_only_where_rendered():
    rendered = {"kind": "Deployment", "spec": {"template": {"spec": {"containers": [
        {"name": "app", "image": "app:2", "resources": {"limits": {"memory": "1024Mi"}}}]}}}}
    before = {"kind": "Deployment", "metadata": {"resourceVersion": "1"}, "spec": {"template": {"spec": {
        "containers": [{"name": "app", "image": "app:1", "resources": {"limits": {"memory": "1Gi"}}}]}}},
        "status": {"replicas": 1}}
    after = {"kind": "Deployment", "metadata": {"resourceVersion": "2"}, "spec": {"template": {"spec": {
        "containers": [{"name": "app", "image": "app:2", "resources": {"limits": {"memory": "1Gi"}}}]}}},
        "status": {"replicas": 2}}
    assert observe.changed_paths([rendered], before, after) == {
        "spec.template.spec.containers.name=app.image": ("app:1", "app:2")}
    assert observe.changed_paths([rendered], before, before) == {}


def test_new_pods_are_told_by_replica_sets_pod_uids_and_the_watch():
    before = observe.Snapshot(replica_sets={"web": {"web-1"}}, pods={"web": {"u1"}, "web-api": {"u2"}})
    after = observe.Snapshot(replica_sets={"web": {"web-1", "web-2"}}, pods={"web": {"u3"}, "web-api": {"u2"}})
    found = observe.new_pods(before, after, ["web-2-abcde"])
    assert set(found) == {"web"} and "new ReplicaSet web-2" in found["web"]
    assert observe.new_pods(before, before, []) == {}
