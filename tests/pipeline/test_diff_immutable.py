"""The diff's immutable fields, decided by the pinned kube-apiserver (doxops.validate.server.ImmutableCheck).

One etcd + kube-apiserver serves the test session (the ``pool`` fixture of tests/conftest.py); every verdict cache is a temporary directory,
and the ``./dox diff`` runs get a cache directory of their own (built tools and schemas linked in).
"""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path

import pytest
import yaml

from doxops import diff as d
from doxops.paths import REPO_ROOT, cache_dir
from doxops.validate import server
from tests.conftest import assert_no_traceback, copy_repo, run_dox
from tests.patches import SELECTOR_PATCH

pytestmark = pytest.mark.slow

WORKLOADS = REPO_ROOT / "rendered" / "prod" / "workloads"
KEY = ("prod", "apps", "Deployment", "dox-asdlc", "hitl-ui")
WORDING = "! cannot be changed in place: the sync fails unless the object is replaced (spec.selector)"
EMAIL = ["-c", "user.email=t@example.com", "-c", "user.name=t"]



@pytest.fixture
def check(pool, tmp_path):
    return server.ImmutableCheck(pool=pool, cache=server.ResultCache(tmp_path / "verdicts"), progress=lambda m: None)


def load(name: str) -> dict:
    return yaml.safe_load((WORKLOADS / name).read_text())


def hitl_ui(change=None) -> tuple[dict, dict]:
    """hitl-ui's Deployment (with a literal env entry, LOG_FORMAT) and a copy after ``change``."""
    base = load("deployment-hitl-ui.yaml")
    base["spec"]["template"]["spec"]["containers"][0]["env"].append({"name": "LOG_FORMAT", "value": "text"})
    head = copy.deepcopy(base)
    if change:
        change(head)
    return base, head


def add_tier(doc: dict) -> None:
    """A label added to the selector and to the pod template: a valid object, but not valid as a change."""
    doc["spec"]["selector"]["matchLabels"]["tier"] = "web"
    doc["spec"]["template"]["metadata"]["labels"]["tier"] = "web"


@pytest.mark.parametrize("server_side", [False, True], ids=["client-side", "server-side"])
def test_a_selector_change_cannot_be_made_in_place(check, server_side):
    base, head = hitl_ui(add_tier)
    assert check(KEY, base, head, server_side=server_side) == ["spec.selector"]
    assert check.asked == 1 and check.unjudged == []


@pytest.mark.parametrize("change", [
    lambda doc: doc["spec"].update(replicas=3),
    lambda doc: doc["spec"]["template"]["spec"]["containers"][0]["env"].append({"name": "LOG_LEVEL", "value": "DEBUG"}),
    lambda doc: doc["spec"]["template"]["spec"]["containers"][0]["env"][-1].update(value="json"),
], ids=["replicas", "env-added", "env-value"])
def test_ordinary_changes_are_allowed_in_place(check, change):
    base, head = hitl_ui(change)
    assert base != head
    assert check(KEY, base, head) == []
    assert check.asked == 1  # the server was asked, and said yes


def test_a_statefulsets_claim_templates_are_the_servers_verdict_too(check):
    """No list of fields is kept here: a StatefulSet refuses changes outside its template, replicas and a few
    others, and the server names the field it refuses (``spec``)."""
    base = load("statefulset-knowledge-store.yaml")
    head = copy.deepcopy(base)
    claim = head["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]
    claim["storage"] = "20Gi" if claim["storage"] != "20Gi" else "30Gi"
    assert check(("prod", "apps", "StatefulSet", "dox-asdlc", "knowledge-store"), base, head) == ["spec"]


def test_a_head_the_server_refuses_outright_is_not_called_immutable(check):
    """A string targetPort is refused for a new object as well: that is validate's finding, not immutability."""
    base = load("service-hitl-ui.yaml")
    head = copy.deepcopy(base)
    head["spec"]["ports"][0]["targetPort"] = "3000"
    assert check(("prod", "", "Service", "dox-asdlc", "hitl-ui"), base, head) == []
    assert check.asked == 1


def test_a_repeated_question_is_answered_from_the_cache_without_a_server(check, tmp_path):
    base, head = hitl_ui(add_tier)
    first = check(KEY, base, head)
    broken = server.Pool(binaries={"etcd": Path("/nonexistent/etcd"), "kube-apiserver": Path("/nonexistent/api")},
                         progress=lambda message: None)
    again = server.ImmutableCheck(pool=broken, cache=check.cache, progress=lambda m: None)
    assert again(KEY, base, head) == first == ["spec.selector"]
    assert again.asked == 0 and broken.starts == 0
    # another apply mode is another question: it needs the server, which cannot start here
    with pytest.raises(server.StageError) as caught:
        again(KEY, base, head, server_side=True)
    assert caught.value.code == 3 and "--no-server" in caught.value.message


def test_a_kind_without_a_crd_is_not_judged_and_starts_nothing(tmp_path):
    broken = server.Pool(binaries={"etcd": Path("/nonexistent/etcd"), "kube-apiserver": Path("/nonexistent/api")},
                         progress=lambda message: None)
    check = server.ImmutableCheck(pool=broken, cache=server.ResultCache(tmp_path / "v"), progress=lambda m: None)
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"a": 1}}
    assert check(("prod", "example.com", "Widget", "", "w"), widget, {**widget, "spec": {"a": 2}}) == []
    assert broken.starts == 0 and "no CRD for Widget" in check.unjudged[0]


def test_an_environment_targeting_another_minor_is_exit_3_naming_it(tmp_path):
    check = server.ImmutableCheck(pool=server.Pool(binaries={}), cache=server.ResultCache(tmp_path / "v"),
                                  progress=lambda m: None, kubernetes_versions={"prod": "1.35.2"})
    base, head = hitl_ui(add_tier)
    with pytest.raises(server.StageError) as caught:
        check(KEY, base, head)
    assert caught.value.code == 3 and "1.35" in caught.value.message and "--no-server" in caught.value.message
    assert check.pool.starts == 0


def test_merge_patch_sets_changes_and_removes_what_the_head_drops():
    old = {"a": 1, "b": {"c": 1, "d": 2}, "l": [1, 2], "same": {"x": 1}}
    new = {"a": 1, "b": {"c": 2}, "l": [1], "n": "new", "same": {"x": 1}}
    assert server.merge_patch(old, new) == {"b": {"c": 2, "d": None}, "l": [1], "n": "new"}


# --------------------------------------------------------------------------- through ./dox diff


def git(repo, *args):
    return subprocess.run(["git", *EMAIL, *args], cwd=repo, check=True, capture_output=True, text=True).stdout


def hermetic_cache(tmp_path: Path) -> Path:
    cache = tmp_path / "cache"
    cache.mkdir(exist_ok=True)
    for name in ("tools", "schemas"):
        if not (cache / name).exists():
            (cache / name).symlink_to(cache_dir() / name)
    return cache


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """A scratch repository whose last commit adds the tier label to hitl-ui's selector and template (prod),
    and changes the orchestrator's log level and hitl-ui's replicas (ordinary changes)."""
    repo = copy_repo(tmp_path_factory.mktemp("immutable") / "repo")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "base")
    kustomization = repo / "environments/prod/kustomization.yaml"
    kustomization.write_text(kustomization.read_text() + SELECTOR_PATCH)
    values = repo / "helm/dox-asdlc/charts/orchestrator/values.yaml"
    values.write_text(values.read_text().replace("logLevel: INFO", "logLevel: DEBUG", 1))
    proc = run_dox(repo, "render")
    assert proc.returncode == 0, proc.stderr
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "selector label")
    return repo


def dox_diff(repo, tmp_path, *args, env=None):
    environment = {"DOX_CACHE_DIR": str(hermetic_cache(tmp_path)), **(env or {})}
    return run_dox(repo, "diff", "--base", "HEAD~1", "--head", "HEAD", "--env", "prod", *args, env=environment,
                   timeout=300)


def test_diff_marks_the_selector_change_in_text_and_markdown(repo, tmp_path):
    text = dox_diff(repo, tmp_path)
    assert_no_traceback(text)
    assert text.returncode == 0, text.stderr
    block = text.stdout.split("~ Deployment dox-asdlc/hitl-ui will be changed", 1)[1].split("\n    ~ ", 1)[0]
    assert WORDING in block
    assert "spec.selector.matchLabels.tier: (none) -> \"web\"" in block
    orchestrator = text.stdout.split("~ Deployment dox-asdlc/orchestrator will be changed", 1)[1].split("\n  wave", 1)[0]
    assert "cannot be changed in place" not in orchestrator  # a checksum annotation: an ordinary change
    assert text.stdout.count("cannot be changed in place") == 1
    assert "immutability was not checked" not in text.stdout + text.stderr
    markdown = dox_diff(repo, tmp_path, "--format", "markdown")
    assert markdown.returncode == 0, markdown.stderr
    hitl = markdown.stdout.split("~ Deployment dox-asdlc/hitl-ui will be changed</summary>", 1)[1].split("</details>")[0]
    assert WORDING in hitl and markdown.stdout.count("cannot be changed in place") == 1
    json_out = dox_diff(repo, tmp_path, "--format", "json")
    immutable = {c["name"]: c["immutable"] for c in yaml.safe_load(json_out.stdout) if c["kind"] == "Deployment"}
    assert immutable == {"hitl-ui": ["spec.selector"], "orchestrator": []}


def test_a_second_diff_is_answered_from_the_cache_and_starts_no_server(repo, tmp_path):
    first = dox_diff(repo, tmp_path)
    assert first.returncode == 0 and "starting etcd" in first.stderr, first.stderr
    # a kube-apiserver that cannot run: the second diff must not need it
    second = dox_diff(repo, tmp_path, env={"DOX_KUBE_APISERVER": "/nonexistent/kube-apiserver"})
    assert_no_traceback(second)
    assert second.returncode == 0, second.stderr
    assert "starting etcd" not in second.stderr and WORDING in second.stdout


def test_no_server_says_immutability_was_not_checked_and_starts_nothing(repo, tmp_path):
    for fmt in ("text", "markdown"):
        proc = dox_diff(repo, tmp_path, "--no-server", "--format", fmt,
                        env={"DOX_KUBE_APISERVER": "/nonexistent/kube-apiserver"})
        assert_no_traceback(proc)
        assert proc.returncode == 0, proc.stderr
        assert "immutability was not checked (--no-server)" in proc.stdout
        assert "cannot be changed in place" not in proc.stdout
        assert "spec.selector.matchLabels.tier" in proc.stdout  # still shown, as an ordinary change


def test_a_server_that_cannot_start_is_exit_3_with_the_hint(repo, tmp_path):
    # etcd reads ETCD_<FLAG> variables as flags: an unparsable one makes the real, pinned etcd refuse to start
    # with its own message (a fake binary would not pass the pinned build's check).
    (tmp_path / "tmp").mkdir()
    proc = dox_diff(repo, tmp_path, env={"ETCD_QUOTA_BACKEND_BYTES": "planted-failure", "TMPDIR": str(tmp_path / "tmp")})
    assert_no_traceback(proc)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "could not start" in proc.stderr and "planted-failure" in proc.stderr
    assert "./dox diff --no-server" in proc.stderr


def test_the_readme_plan_holds_with_the_real_server(tmp_path, pool, monkeypatch):
    """The README's example (four changes in prod), rendered and diffed with the real verdict, not a stand-in."""
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("## Reviewing a change: `./dox diff`", 1)[1]
    expected = section.split("```\n", 2)[1].split("```", 1)[0]
    assert WORDING in expected
    repo = copy_repo(tmp_path / "repo")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "base")
    kustomization = repo / "environments/prod/kustomization.yaml"
    kustomization.write_text(kustomization.read_text() + SELECTOR_PATCH)
    edits = {"environments/prod/values.yaml": ('requests: {cpu: 500m, memory: 1Gi}\n    limits: {cpu: "2", memory: 4Gi}',
                                               'requests: {cpu: 500m, memory: 1024Mi}\n    limits: {cpu: 2000m, memory: 4096Mi}'),
             "helm/dox-asdlc/charts/orchestrator/values.yaml": ("logLevel: INFO", "logLevel: DEBUG")}
    for rel, (old, new) in edits.items():
        path = repo / rel
        assert old in path.read_text(), rel
        path.write_text(path.read_text().replace(old, new, 1))
    (repo / "helm/dox-asdlc/charts/hitl-ui/templates/networkpolicy.yaml").unlink()
    proc = run_dox(repo, "render")
    assert proc.returncode == 0, proc.stderr
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "the README's example")
    monkeypatch.setenv("DOX_CACHE_DIR", str(hermetic_cache(tmp_path)))
    check = server.ImmutableCheck(pool=pool, cache=server.ResultCache(tmp_path / "verdicts"), progress=lambda m: None)
    changes = d.run_diff("HEAD~1", "HEAD", env="prod", root=repo, immutable=check, progress=lambda m: None)
    assert d.to_text(changes) == expected
    assert check.asked >= 2  # hitl-ui and the orchestrator's Deployment and ConfigMap went to the server
    markdown = "".join(d.to_markdown(changes))  # and the README's markdown example, line by line
    for line in section.split("```\n", 4)[3].split("```", 1)[0].splitlines():
        if line.strip() not in ("...", "") and "(...)" not in line:
            assert line.strip() in markdown, line
