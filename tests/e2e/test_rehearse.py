"""``./dox rehearse``: commits of a scratch clone replayed by the real Argo CD, the plan checked against them.

The usage errors run without a cluster. The corpus is one chain of commits rehearsed in sequence on
one control plane per environment (both side by side): the issue's "done when" commit first (prod's
``workers.maxReplicas`` changed, hitl-ui's NetworkPolicy removed), then an image bump, a ConfigMap
value that rolls its consumer through the checksum annotation, the KnowledgeStore's resources
written as equal quantities, an added ConfigMap, a value change (the Ingress host), and (last, since the sync fails) a label added to
hitl-ui's immutable ``spec.selector``. minikube (``prune: true``) prunes the removed NetworkPolicy and
sees no change from the prod-only commits. A tampered plan (the NetworkPolicy "will be pruned" on prod) judged
against the same observations disagrees and makes the exit code 1.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from doxops.cluster import rehearse as rehearse_mod
from doxops.cluster.argocd import PRUNED_TEMPLATE, set_value
from doxops.diff import REMOVE
from doxops.diff.plan import LEFT, PRUNED
from doxops.errors import Findings, UsageError
from doxops.paths import REPO_ROOT
from tests.patches import SELECTOR_PATCH

pytestmark = pytest.mark.e2e

IDENTITY = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@dox.invalid", "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@dox.invalid"}


def _git(repo: Path, *args: str) -> str:
    env = {**os.environ, **IDENTITY, "GIT_CONFIG_NOSYSTEM": "1"}
    return subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True).stdout.strip()


def _clone(tmp: Path) -> Path:
    """A clone of this repository's HEAD (its committed state, never the working tree)."""
    repo = tmp / "repo"
    subprocess.run(["git", "clone", "-q", "--no-hardlinks", str(REPO_ROOT), str(repo)], check=True)
    _git(repo, "checkout", "-q", "-B", "main")
    return repo


def _commit(repo: Path, message: str, edit) -> str:
    """Apply ``edit(repo)``, re-render every environment with the clone's own pipeline, commit."""
    edit(repo)
    environ = {k: v for k, v in os.environ.items() if k not in ("DOX_ENV", "PYTHONPATH")}
    proc = subprocess.run([sys.executable, "-m", "doxops", "render"], cwd=repo, env={**environ, "PYTHONPATH": str(repo)},
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", message)
    return _git(repo, "rev-parse", "HEAD")


def _values(repo: Path, env: str, top: str, key: str, value) -> None:
    path = repo / "environments" / env / "values.yaml"
    path.write_text(set_value(path.read_text(), top, key, value))


def done_when(repo: Path) -> None:
    _values(repo, "prod", "workers", "maxReplicas", 8)
    (repo / PRUNED_TEMPLATE).unlink()


def image_bump(repo: Path) -> None:
    path = repo / "environments" / "prod" / "values.yaml"
    text = path.read_text()
    start = text.index("\nworkers:")
    assert "tag: 1.4.2" in text[start:]
    path.write_text(text[:start] + text[start:].replace("tag: 1.4.2", "tag: 1.4.3", 1))


def config_value(repo: Path) -> None:
    _values(repo, "prod", "orchestrator", "logLevel", "DEBUG")


def equal_quantities(repo: Path) -> None:
    path = repo / "environments" / "prod" / "values.yaml"
    text = path.read_text()
    start = text.index("\nknowledgeStore:")
    tail = text[start:].replace("{cpu: 500m, memory: 1Gi}", "{cpu: 500m, memory: 1024Mi}", 1) \
        .replace('{cpu: "2", memory: 4Gi}', "{cpu: 2000m, memory: 4096Mi}", 1)
    assert tail != text[start:]
    path.write_text(text[:start] + tail)


EXTRA_CONFIGMAP = """apiVersion: v1
kind: ConfigMap
metadata:
  name: release-notes
  namespace: dox-asdlc
  annotations:
    argocd.argoproj.io/sync-wave: "-1"
data:
  NOTES: rehearsed
"""



def value_change(repo: Path) -> None:
    path = repo / "environments" / "prod" / "values.yaml"
    text = path.read_text()
    assert text.count("host: hitl.dox-asdlc.example.com") == 1
    path.write_text(text.replace("host: hitl.dox-asdlc.example.com", "host: review.dox-asdlc.example.com"))


def added_resource(repo: Path) -> None:
    (repo / "environments" / "prod" / "release-notes.yaml").write_text(EXTRA_CONFIGMAP)
    path = repo / "environments" / "prod" / "kustomization.yaml"
    path.write_text(path.read_text() + "resources:\n  - release-notes.yaml\n")


def immutable_selector(repo: Path) -> None:
    path = repo / "environments" / "prod" / "kustomization.yaml"
    path.write_text(path.read_text() + SELECTOR_PATCH)


CORPUS = [("done when: workers.maxReplicas 10 -> 8, hitl-ui NetworkPolicy removed", done_when),
          ("image bump: workers 1.4.2 -> 1.4.3", image_bump),
          ("ConfigMap value: orchestrator LOG_LEVEL DEBUG (rolls through checksum/config)", config_value),
          ("equal quantities: KnowledgeStore resources as 1024Mi / 2000m / 4096Mi", equal_quantities),
          ("added resource: ConfigMap release-notes", added_resource),
          ("value change: hitl-ui's Ingress host", value_change),
          # last: a refused sync leaves the cluster between two commits and ends the chain
          ("immutable: a label added to hitl-ui's spec.selector", immutable_selector)]


# ---------------------------------------------------------------------- usage, no cluster


def test_uncommitted_changes_are_refused(tmp_path):
    repo = _clone(tmp_path)
    (repo / "environments" / "prod" / "values.yaml").write_text("# edited\n")
    with pytest.raises(UsageError, match="uncommitted changes"):
        rehearse_mod.resolve(repo, None, None)


def test_no_main_and_no_origin_main_is_a_usage_error(tmp_path):
    repo = _clone(tmp_path)
    _git(repo, "checkout", "-q", "-b", "topic")
    _git(repo, "branch", "-q", "-D", "main")
    _git(repo, "remote", "remove", "origin")
    with pytest.raises(UsageError, match="neither `main` nor `origin/main`"):
        rehearse_mod.resolve(repo, None, None)
    base, head = rehearse_mod.resolve(repo, "HEAD~1", None)
    assert base != head and head == _git(repo, "rev-parse", "HEAD")


def test_the_base_defaults_to_the_merge_base_with_main(tmp_path):
    repo = _clone(tmp_path)
    fork = _git(repo, "rev-parse", "HEAD")
    _git(repo, "checkout", "-q", "-b", "topic")
    _git(repo, "commit", "-q", "--allow-empty", "-m", "topic")
    _git(repo, "checkout", "-q", "main")
    _git(repo, "commit", "-q", "--allow-empty", "-m", "main moves on")
    _git(repo, "checkout", "-q", "topic")
    assert rehearse_mod.resolve(repo, None, None) == (fork, _git(repo, "rev-parse", "HEAD"))


# ---------------------------------------------------------------------- the corpus, on real control planes


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, cluster_binaries):
    repo = _clone(tmp_path_factory.mktemp("rehearse"))
    base = _git(repo, "rev-parse", "HEAD")
    heads = [_commit(repo, message, edit) for message, edit in CORPUS]
    started = time.monotonic()
    rehearsals, verdicts = rehearse_mod.rehearse_chain(None, base, heads, root=repo, paths=cluster_binaries,
                                                       progress=lambda m: print(m, file=sys.stderr, flush=True))
    seconds = time.monotonic() - started
    print(rehearse_mod.FORMATTERS["text"](rehearsals, verdicts), file=sys.stderr)
    print(f"corpus: {len(heads)} commits on {len(rehearsals)} control planes in {seconds:.0f} s", file=sys.stderr)
    return {"heads": heads, "rehearsals": {r.env: r for r in rehearsals},
            "verdicts": {(v.env, v.step.head): v for v in verdicts}}


def _verdict(corpus, env: str, index: int):
    head = corpus["heads"][index]
    assert (env, head) in corpus["verdicts"], f"{env}: step {index} was not rehearsed: " \
        f"{corpus['rehearsals'][env].report.text()}"
    return corpus["verdicts"][(env, head)]


def _item(verdict, title: str):
    found = [i for i in verdict.items if i.title == title]
    assert len(found) == 1, [i.title for i in verdict.items]
    return found[0]


def test_the_rehearsal_itself_passed_its_checks(corpus):
    for env, rehearsal in corpus["rehearsals"].items():
        assert rehearsal.report.ok, rehearsal.report.text()
        names = [c.name for c in rehearsal.report.checks]
        assert any(n.startswith("loopback only") for n in names) and any(n.startswith("teardown") for n in names)


def test_done_when_prod_hpa_changed_and_network_policy_left_requiring_prune(corpus):
    verdict = _verdict(corpus, "prod", 0)
    assert verdict.ok, [(i.title, i.why) for i in verdict.disagreements] or verdict.failure
    assert verdict.step.outcome.phase == "Succeeded" and verdict.step.seconds is not None
    hpa = _item(verdict, "HorizontalPodAutoscaler dox-asdlc/workers")
    assert hpa.agrees and "spec.maxReplicas: 10 -> 8" in hpa.observed
    policy = _item(verdict, "NetworkPolicy dox-asdlc/hitl-ui")
    assert policy.agrees and LEFT in policy.predicted[0] and "requiresPruning" in policy.observed
    assert not verdict.step.new_pods, verdict.step.new_pods  # nothing in a pod template changed


def test_a_tampered_plan_disagrees_and_exits_1(corpus):
    step = copy.copy(_verdict(corpus, "prod", 0).step)
    step.plan = copy.deepcopy(step.plan)
    removed = [c for c in step.plan if c.action == REMOVE]
    assert removed and all(c.outcome == LEFT for c in removed)
    for change in removed:
        change.outcome = PRUNED  # "will be pruned": what the diff said before issue 17
    wrong = rehearse_mod.judge("prod", step)
    assert [i.title for i in wrong.disagreements] == ["NetworkPolicy dox-asdlc/hitl-ui"]
    assert "planned to be pruned" in wrong.disagreements[0].why
    with pytest.raises(Findings, match="NetworkPolicy dox-asdlc/hitl-ui: planned to be pruned") as raised:
        rehearse_mod.conclude([corpus["rehearsals"]["prod"]], [wrong])
    assert raised.value.code == 1
    rehearse_mod.conclude([corpus["rehearsals"]["prod"]], [_verdict(corpus, "prod", 0)])  # the real plan: no raise


def test_minikube_prunes_the_removed_network_policy(corpus):
    verdict = _verdict(corpus, "minikube", 0)
    assert verdict.ok, [(i.title, i.why) for i in verdict.disagreements] or verdict.failure
    policy = _item(verdict, "NetworkPolicy dox-asdlc/hitl-ui")
    assert PRUNED in policy.predicted[0] and policy.observed.startswith("pruned")


def test_image_bump_rolls_the_workers_only(corpus):
    verdict = _verdict(corpus, "prod", 1)
    assert verdict.ok, [(i.title, i.why) for i in verdict.disagreements] or verdict.failure
    assert set(verdict.step.new_pods) == {"workers"}, verdict.step.new_pods


def test_configmap_value_rolls_its_consumer_through_the_checksum(corpus):
    verdict = _verdict(corpus, "prod", 2)
    assert verdict.ok, [(i.title, i.why) for i in verdict.disagreements] or verdict.failure
    assert "orchestrator" in verdict.step.new_pods and "workers" not in verdict.step.new_pods
    assert "data.LOG_LEVEL" in _item(verdict, "ConfigMap dox-asdlc/orchestrator").observed
    # Recreate: the watch saw the old pod gone before the new one was created (a gap, never an overlap)
    assert verdict.step.gaps.get("orchestrator", -1) >= 0, (verdict.step.gaps, verdict.step.new_pods)


def test_equal_quantities_change_nothing_in_the_cluster(corpus):
    verdict = _verdict(corpus, "prod", 3)
    assert verdict.ok, [(i.title, i.why) for i in verdict.disagreements] or verdict.failure
    item = _item(verdict, "StatefulSet dox-asdlc/knowledge-store")
    assert item.observed == "unchanged in the cluster" and not verdict.step.new_pods


def test_an_added_resource_is_created(corpus):
    verdict = _verdict(corpus, "prod", 4)
    assert verdict.ok, [(i.title, i.why) for i in verdict.disagreements] or verdict.failure
    item = _item(verdict, "ConfigMap dox-asdlc/release-notes")
    assert "will be created" in item.predicted[0] and item.observed.startswith("created")


def test_an_immutable_selector_change_fails_at_once_with_the_api_servers_message(corpus):
    verdict = _verdict(corpus, "prod", 6)
    assert "field is immutable" in verdict.failure and "Deployment dox-asdlc/hitl-ui" in verdict.failure
    assert verdict.step.seconds < 30, verdict.step.seconds  # the first failed attempt, not after the retries
    item = _item(verdict, "Deployment dox-asdlc/hitl-ui")
    assert "refused by the API server" in item.observed
    # Without the API server's immutable verdict in the plan, the plan said "changed in place": a disagreement.
    planned_immutable = "cannot be changed in place" in " ".join(item.predicted)
    assert item.agrees == planned_immutable, (item.predicted, item.why)
    with pytest.raises(Findings, match="the sync failed"):
        rehearse_mod.conclude([corpus["rehearsals"]["prod"]], [verdict])


def test_environments_a_commit_does_not_touch_see_no_change(corpus):
    for index in (1, 2, 3, 4, 5, 6):
        verdict = _verdict(corpus, "minikube", index)
        assert verdict.ok and not verdict.items and not verdict.step.new_pods, \
            ([(i.title, i.observed) for i in verdict.items], verdict.failure)


def test_a_value_change_reaches_the_ingress(corpus):
    verdict = _verdict(corpus, "prod", 5)
    assert verdict.ok, [(i.title, i.why) for i in verdict.disagreements] or verdict.failure
    assert "review.dox-asdlc.example.com" in _item(verdict, "Ingress dox-asdlc/hitl-ui").observed


def test_the_report_formats_say_the_same(corpus):
    rehearsals = list(corpus["rehearsals"].values())
    verdicts = [corpus["verdicts"][("prod", corpus["heads"][0])]]
    data = json.loads(rehearse_mod.FORMATTERS["json"](rehearsals, verdicts))
    prod = next(e for e in data["environments"] if e["env"] == "prod")
    items = {i["resource"]: i for i in prod["steps"][0]["items"]}
    assert items["NetworkPolicy dox-asdlc/hitl-ui"]["agrees"] and prod["steps"][0]["phase"] == "Succeeded"
    markdown = rehearse_mod.FORMATTERS["markdown"](rehearsals, verdicts)
    assert "| 3 | `NetworkPolicy dox-asdlc/hitl-ui` |" in markdown and len(markdown) < 65536
