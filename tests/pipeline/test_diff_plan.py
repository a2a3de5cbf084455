"""The diff as Argo CD's plan: prune policy per environment, Prune=false, equal quantities, rollouts, sync
waves and order, and the API server's immutable verdict (a seam, exercised with a stand-in verdict).

The first tests make the issue's changes in a scratch repository through the chart and values, render, and
read the plan from ``./dox diff``; the rest drive :func:`doxops.diff.build_plan` with small objects.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from doxops import diff as d
from doxops.diff import plan as p
from tests.conftest import copy_repo, run_dox

EMAIL = ["-c", "user.email=t@example.com", "-c", "user.name=t"]


def git(repo, *args):
    return subprocess.run(["git", *EMAIL, *args], cwd=repo, check=True, capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    repo = copy_repo(tmp_path_factory.mktemp("plan") / "repo")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "base")
    return repo


def commit_change(repo, edits: dict, message: str, remove: tuple = ()) -> None:
    for rel, (old, new) in edits.items():
        path = repo / rel
        text = path.read_text()
        assert old in text, (rel, old)
        path.write_text(text.replace(old, new, 1))
    for rel in remove:
        (repo / rel).unlink()
    proc = run_dox(repo, "render")
    assert proc.returncode == 0, proc.stderr
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", message)


def dox_diff(repo, *args):
    return run_dox(repo, "diff", "--base", "HEAD~1", "--head", "HEAD", *args)


def test_equal_quantities_are_no_change_to_the_cluster(repo):
    commit_change(repo, {"environments/prod/values.yaml": (
        'requests: {cpu: 500m, memory: 1Gi}\n    limits: {cpu: "2", memory: 4Gi}',
        'requests: {cpu: 500m, memory: 1024Mi}\n    limits: {cpu: 2000m, memory: 4096Mi}')}, "same amounts, other units")
    assert "memory: 4096Mi" in (repo / "rendered/prod/workloads/statefulset-knowledge-store.yaml").read_text()
    proc = dox_diff(repo, "--exit-code")
    assert proc.returncode == 0, proc.stdout + proc.stderr  # nothing changes for the cluster
    assert "prod: 0 to add, 0 to change, 0 to prune, 0 left in the cluster (requires pruning), 0 kept" in proc.stdout
    assert proc.stdout.count("no change to the cluster") == 1  # said once
    line = next(x for x in proc.stdout.splitlines() if "no change to the cluster" in x)
    assert "StatefulSet dox-asdlc/knowledge-store" in line
    assert all(f in line for f in ('"4Gi" = "4096Mi"', '"2" = "2000m"', '"1Gi" = "1024Mi"'))
    assert "will be changed" not in proc.stdout and "minikube" not in proc.stdout
    found = json.loads(dox_diff(repo, "--format", "json").stdout)
    assert [(c["kind"], c["action"], len(c["fields"]), len(c["storedIdentically"])) for c in found] == [
        ("StatefulSet", "none", 0, 3)]


def test_prune_policy_rollouts_and_order_as_argo_cd_applies_them(repo):
    commit_change(repo, {"helm/dox-asdlc/charts/orchestrator/values.yaml": ("logLevel: INFO", "logLevel: DEBUG")},
                  "hitl-ui NetworkPolicy gone, orchestrator logs more",
                  remove=("helm/dox-asdlc/charts/hitl-ui/templates/networkpolicy.yaml",))
    proc = dox_diff(repo, "--exit-code")
    assert proc.returncode == 1
    text = proc.stdout
    assert "minikube: 0 to add, 2 to change, 1 to prune, 0 left in the cluster (requires pruning), 0 kept" in text
    assert "prod: 0 to add, 2 to change, 0 to prune, 1 left in the cluster (requires pruning), 0 kept" in text
    minikube, prod = text.split("\nminikube, Application dox-asdlc-minikube ")[1].split("\nprod, Application ")
    assert "- NetworkPolicy dox-asdlc/hitl-ui will be pruned" in minikube
    assert "- NetworkPolicy dox-asdlc/hitl-ui left in the cluster: requires pruning (prune: false)" in prod
    assert "will be pruned" not in prod
    rollout = ("rollout: new pods: configuration changed (checksum/config annotation); Recreate: down during the "
               "rollout")
    assert rollout in minikube and rollout in prod
    # waves: the ConfigMap (-1), then the Deployment (2), then the prune after the last wave (PruneLast=true)
    order = [prod.index(s) for s in ("wave -1:", "~ ConfigMap dox-asdlc/orchestrator", "wave 2:",
                                     "~ Deployment dox-asdlc/orchestrator", "wave 3:", "- NetworkPolicy dox-asdlc/hitl-ui")]
    assert order == sorted(order)
    assert "prod: new pods: Deployment dox-asdlc/orchestrator (down during the rollout)" in text
    markdown = dox_diff(repo, "--format", "markdown").stdout
    assert "left in the cluster: requires pruning (prune: false)" in markdown and rollout in markdown
    assert "- prod: 0 to add, 2 to change, 0 to prune, 1 left in the cluster (requires pruning), 0 kept" in markdown


def test_a_change_outside_the_pod_template_rolls_nothing(repo):
    commit_change(repo, {"environments/prod/values.yaml": ("maxReplicas: 10", "maxReplicas: 9")}, "workers max 9")
    found = json.loads(dox_diff(repo, "--format", "json", "--env", "prod").stdout)
    assert [(c["kind"], c["rollout"]) for c in found] == [("HorizontalPodAutoscaler", "")]


# --------------------------------------------------------------------------- plan() on small objects


@pytest.fixture
def private_cache(tmp_path, monkeypatch):
    """In-process plans run the credential scanner: its cache goes to a tmp dir, not the user's."""
    monkeypatch.setenv("DOX_CACHE_DIR", str(tmp_path / "cache"))


def app(name: str, path: str, prune: bool, options: list[str] = ()) -> dict:
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", "metadata": {"name": name, "namespace": "argocd"},
            "spec": {"source": {"path": path}, "syncPolicy": {"automated": {"prune": prune}, "syncOptions": list(options)}}}


def obj(kind: str, name: str, wave: int | None = None, options: str | None = None, api: str = "v1", **spec) -> dict:
    notes = {**({"argocd.argoproj.io/sync-wave": str(wave)} if wave is not None else {}),
             **({"argocd.argoproj.io/sync-options": options} if options else {})}
    return {"apiVersion": api, "kind": kind, "metadata": {"name": name, "namespace": "ns", "annotations": notes},
            **({"spec": spec} if spec else {})}


def run_plan(before_objs: list[dict], after_objs: list[dict], prune: bool = True, options: list[str] = (),
             immutable=None) -> list[d.Change]:
    def keyed(objs):
        out, files = {}, {}
        for o in objs:
            group = o["apiVersion"].split("/")[0] if "/" in o["apiVersion"] else ""
            key = ("e", group, o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"])
            out[key] = o
            files[key] = f"rendered/e/{'argocd' if o['kind'] == 'Application' else 'workloads'}/{o['metadata']['name']}.yaml"
        return out, files

    application = app("e-app", "rendered/e/workloads", prune, options)
    before, files_before = keyed([application, *before_objs])
    after, files_after = keyed([application, *after_objs])
    return d.build_plan(before, after, {**files_before, **files_after}, d.Settings(), immutable=immutable)


@pytest.mark.parametrize("prune,annotation,default,outcome", [
    (True, None, [], p.PRUNED),
    (False, None, [], p.LEFT),
    (True, "Prune=false", [], p.KEPT),
    (False, "Delete=false,Prune=false", [], p.KEPT),
    (True, None, ["Prune=false"], p.KEPT),              # the Application's default
    (True, "Prune=true", ["Prune=false"], p.PRUNED),    # the object's annotation overrides it
    (True, "Prune=confirm", [], p.PRUNED_ON_CONFIRM),
])
def test_removed_object_outcome(prune, annotation, default, outcome, private_cache):
    changes = run_plan([obj("ConfigMap", "gone", options=annotation)], [], prune=prune, options=default)
    assert [(c.action, c.outcome) for c in changes] == [("-", outcome)]
    assert f"- ConfigMap ns/gone {outcome}" in d.to_text(changes)


def test_summary_counts_pruned_left_and_kept_apart(private_cache):
    before = [obj("ConfigMap", "a"), obj("ConfigMap", "b", options="Prune=false"), obj("Service", "c")]
    changes = run_plan(before, [obj("Service", "c", ports=[1])], prune=True)
    assert d.summary_lines(changes)[0] == "e: 0 to add, 1 to change, 1 to prune, 0 left in the cluster (requires pruning), 1 kept"
    changes = run_plan(before, [obj("Service", "c", ports=[1])], prune=False)
    assert d.summary_lines(changes)[0] == "e: 0 to add, 1 to change, 0 to prune, 1 left in the cluster (requires pruning), 1 kept"


def test_order_is_wave_then_prunes_first_then_kind_then_name(private_cache):
    before = [obj("Deployment", "old-late", wave=2, api="apps/v1"), obj("ConfigMap", "old-early", wave=-1)]
    after = [obj("Deployment", "b", wave=0, api="apps/v1"), obj("ConfigMap", "z", wave=0), obj("Namespace", "ns"),
             obj("Service", "a", wave=0), obj("ConfigMap", "late", wave=5)]
    changes = run_plan(before, after)
    # prune waves are mirrored (deletion in reverse creation order): the wave-2 object goes in wave -1
    assert [(c.wave, c.action, c.key[2], c.key[4]) for c in changes] == [
        (-1, "-", "Deployment", "old-late"),
        (0, "+", "Namespace", "ns"), (0, "+", "ConfigMap", "z"), (0, "+", "Service", "a"),
        (0, "+", "Deployment", "b"),
        (2, "-", "ConfigMap", "old-early"),
        (5, "+", "ConfigMap", "late")]


def test_prune_last_moves_prunes_after_the_last_wave(private_cache):
    before = [obj("ConfigMap", "gone", wave=-1), obj("ConfigMap", "tagged", wave=-1, options="PruneLast=true")]
    after = [obj("Deployment", "d", wave=2, api="apps/v1")]
    plain = run_plan(before, after)
    assert {c.key[4]: c.wave for c in plain} == {"gone": -1, "tagged": 3, "d": 2}  # the annotation alone
    last = run_plan(before, after, options=["PruneLast=true"])
    assert {c.key[4]: c.wave for c in last} == {"gone": 3, "tagged": 3, "d": 2}
    assert "pruned after every other wave (PruneLast=true)" in d.to_text(last)


def deployment(image: str, strategy: str = "RollingUpdate", replicas: int | None = None, kind: str = "Deployment",
               checksum: str = "a") -> dict:
    spec = {"selector": {"matchLabels": {"app": "x"}},
            "template": {"metadata": {"annotations": {"checksum/config": checksum}},
                         "spec": {"containers": [{"name": "app", "image": image}]}}}
    spec["updateStrategy" if kind == "StatefulSet" else "strategy"] = {"type": strategy}
    if replicas is not None:
        spec["replicas"] = replicas
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": "w", "namespace": "ns"}, "spec": spec}


@pytest.mark.parametrize("old,new,rollout", [
    (deployment("app:1"), deployment("app:2"),
     "new pods: pod template changed (spec.template.spec.containers.name=app.image)"),
    (deployment("app:1"), deployment("app:1", checksum="b"), "new pods: configuration changed (checksum/config annotation)"),
    (deployment("app:1", "Recreate"), deployment("app:2", "Recreate"),
     "new pods: pod template changed (spec.template.spec.containers.name=app.image); Recreate: down during the rollout "
     "(old pods stop before new ones start)"),
    (deployment("app:1", replicas=2), deployment("app:1", replicas=3), "no new pods (the pod template is unchanged)"),
    (deployment("app:1", kind="StatefulSet"), deployment("app:2", kind="StatefulSet"),
     "new pods: pod template changed (spec.template.spec.containers.name=app.image); one replica: down while its pod "
     "is replaced"),
    (deployment("app:1", "OnDelete", kind="StatefulSet"), deployment("app:2", "OnDelete", kind="StatefulSet"),
     "no new pods until each pod is deleted (updateStrategy OnDelete); pod template changed "
     "(spec.template.spec.containers.name=app.image)"),
])
def test_rollout_impact(old, new, rollout, private_cache):
    changes = run_plan([old], [new])
    assert [c.rollout for c in changes] == [rollout]
    assert f"rollout: {rollout}" in d.to_text(changes)


def test_a_quantity_outside_a_quantity_field_is_a_change(private_cache):
    before = [obj("ConfigMap", "c"), deployment("app:1")]
    before[0]["data"] = {"MEMORY": "1024Mi"}
    before[1]["spec"]["template"]["spec"]["containers"][0]["resources"] = {"limits": {"memory": "1024Mi"}}
    after = [obj("ConfigMap", "c"), deployment("app:1")]
    after[0]["data"] = {"MEMORY": "1Gi"}  # an application reads this text: a real change
    after[1]["spec"]["template"]["spec"]["containers"][0]["resources"] = {"limits": {"memory": "1Gi"}}
    changes = {c.key[2]: c for c in run_plan(before, after)}
    assert changes["ConfigMap"].action == "~" and changes["Deployment"].action == "="
    assert changes["Deployment"].rollout == ""  # stored identically: the pod template's hash does not move


def test_immutable_verdict_from_the_server_is_shown_with_its_field(private_cache):
    calls = []

    def server(key, old, new):  # stands in for the API-server stage: base applied, head dry-run against it
        calls.append((key[2], old["spec"]["selector"], new["spec"]["selector"]))
        return ["spec.selector"] if old["spec"]["selector"] != new["spec"]["selector"] else []

    old, new = deployment("app:1"), deployment("app:1")
    new["spec"]["selector"] = {"matchLabels": {"app": "x", "tier": "web"}}
    changes = run_plan([old], [new], immutable=server)
    assert calls == [("Deployment", old["spec"]["selector"], new["spec"]["selector"])]
    assert changes[0].immutable == ["spec.selector"]
    wording = "! cannot be changed in place: the sync fails unless the object is replaced (spec.selector)"
    assert wording in d.to_text(changes) and wording in "".join(d.to_markdown(changes))
    assert json.loads(d.to_json(changes))[0]["immutable"] == ["spec.selector"]
    assert run_plan([old], [new])[0].immutable == []  # without the server, no verdict is invented


@pytest.mark.parametrize("prune,outcome", [("true", p.PRUNED), ("false", p.LEFT)])
def test_without_a_rendered_application_the_settings_file_decides(prune, outcome, private_cache):
    key = ("e", "", "ConfigMap", "ns", "gone")
    files = {key: "rendered/e/workloads/gone.yaml"}
    before = {key: obj("ConfigMap", "gone")}
    assert p.uncovered(before, {}, files) == {"e"}
    settings = f"apiVersion: dox-asdlc.io/v1\nkind: ArgoCDSettings\nspec:\n  environment: e\n  prune: {prune}\n"
    changes = d.build_plan(before, {}, files, d.Settings(), {"e": p.settings_policy("e", settings)})
    assert [c.outcome for c in changes] == [outcome]
    assert "environments/e/argocd/settings.yaml" in d.to_text(changes)
