"""The API-server stage on the pinned kube-apiserver: the issue's cases end in located findings.

One etcd + kube-apiserver serves the whole test session (the ``pool`` fixture of tests/conftest.py); each test has its own
result cache in a temporary directory, so nothing is answered from another run's cache.
"""

from __future__ import annotations

import io
import stat
from pathlib import Path

import pytest
import yaml

from doxops.errors import Findings
from doxops.paths import REPO_ROOT, cache_dir
from doxops.validate import runner
from doxops.validate import server
from tests.conftest import assert_no_traceback, run_dox

pytestmark = pytest.mark.slow

PROD = REPO_ROOT / "rendered" / "prod" / "workloads"
FILES = sorted(p.name for p in PROD.glob("*.yaml"))  # prod's workloads: clean for every stage as committed



@pytest.fixture
def stage(pool, tmp_path):
    return server.Stage(pool=pool, cache=server.ResultCache(tmp_path / "results"), progress=lambda message: None)


def case(tmp_path: Path, change=None) -> Path:
    """rendered/prod/workloads in a directory of its own, after ``change(docs)``."""
    directory = tmp_path / "case"
    directory.mkdir()
    docs = {name: yaml.safe_load((PROD / name).read_text()) for name in FILES}
    if change:
        change(docs)
    for name, doc in docs.items():
        (directory / name).write_text(yaml.safe_dump(doc, sort_keys=False))
    return directory


def run(directory: Path, stage) -> tuple[list, runner.Report]:
    report = runner.validate_path(directory, "1.36", "dox-asdlc", stage=stage)
    return [d for d in report.diagnostics if d.rule in (server.RULE, server.STORED_RULE)], report


def line_of(path: str, line: int) -> str:
    return Path(path).read_text().splitlines()[line - 1] if Path(path).is_absolute() else \
        (REPO_ROOT / path).read_text().splitlines()[line - 1]


def exits_with_findings(report: runner.Report) -> bool:
    """Whether ``./dox validate`` would exit 1 on this report (every stage's diagnostics)."""
    try:
        runner.emit([report], "text", out=io.StringIO(), progress=lambda message: None)
    except Findings:
        return True
    return False


def test_unchanged_objects_pass(tmp_path, stage):
    found, report = run(case(tmp_path), stage)
    assert found == []
    assert stage.sent == len(FILES)
    assert not exits_with_findings(report)  # so exit 1 in the cases below is the server stage's doing


def test_selector_not_matching_the_template_is_rejected_with_the_servers_message(tmp_path, stage):
    def change(docs):
        docs["deployment-hitl-ui.yaml"]["spec"]["selector"]["matchLabels"]["tier"] = "frontend"

    found, report = run(case(tmp_path, change), stage)
    errors = [d for d in found if d.level == "error"]
    assert errors, found
    d = errors[0]
    assert d.path.endswith("deployment-hitl-ui.yaml") and d.rule == "api-server"
    assert "`selector` does not match template `labels`" in d.message
    assert 'Deployment.apps "hitl-ui" is invalid: spec.template.metadata.labels' in d.message
    assert line_of(d.path, d.line).strip().startswith("labels:")  # located at the template's labels
    assert exits_with_findings(report)


def test_string_target_port_is_rejected(tmp_path, stage):
    def change(docs):
        docs["service-hitl-ui.yaml"]["spec"]["ports"][0]["targetPort"] = "3000"

    found, report = run(case(tmp_path, change), stage)
    d = next(d for d in found if d.level == "error")
    assert d.path.endswith("service-hitl-ui.yaml")
    assert "spec.ports[0].targetPort" in d.message and "Invalid value" in d.message
    assert "targetPort" in line_of(d.path, d.line)
    assert exits_with_findings(report)


def test_configmap_over_the_size_limits_is_rejected(tmp_path, stage):
    def change(docs):
        docs["configmap-hitl-ui.yaml"]["data"]["prompts.txt"] = "x" * 1_200_000

    found, report = run(case(tmp_path, change), stage)
    errors = [d for d in found if d.level == "error" and d.path.endswith("configmap-hitl-ui.yaml")]
    assert errors, found
    assert any("Too long" in d.message for d in errors)
    # client-side apply: the last-applied annotation alone is over the 256 KiB annotation limit
    assert any("metadata.annotations" in d.message for d in errors)
    assert exits_with_findings(report)


def test_duplicate_env_name_is_a_server_warning(tmp_path, stage):
    def change(docs):
        container = docs["deployment-hitl-ui.yaml"]["spec"]["template"]["spec"]["containers"][0]
        container.setdefault("env", [])
        container["env"] += [{"name": "HOME", "value": "/tmp"}, {"name": "HOME", "value": "/home/app"}]

    found, report = run(case(tmp_path, change), stage)
    warnings = [d for d in found if d.level == "warning" and "HOME" in d.message]
    assert warnings, found
    d = warnings[0]
    assert "hides previous definition" in d.message and d.rule == "api-server"
    assert "name: HOME" in line_of(d.path, d.line) or "- name: HOME" in line_of(d.path, d.line)


def test_non_canonical_quantities_are_not_stored_as_written(tmp_path, stage):
    def change(docs):
        container = docs["deployment-hitl-ui.yaml"]["spec"]["template"]["spec"]["containers"][0]
        container["resources"] = {"requests": {"memory": "1024Mi", "cpu": "2000m"},
                                  "limits": {"memory": "4096Mi", "cpu": "2000m"}}

    found, report = run(case(tmp_path, change), stage)
    stored = [d for d in found if d.rule == "stored-as-written"]
    assert {d.level for d in stored} == {"warning"}
    text = "\n".join(d.message for d in stored)
    for written, kept in (("1024Mi", "1Gi"), ("2000m", "2"), ("4096Mi", "4Gi")):
        assert f"written '{written}' but stored '{kept}'" in text, text
    assert "resources.requests.memory" in text
    assert "perpetual diff" not in text  # Argo CD normalises built-in kinds' quantities
    assert all(line_of(d.path, d.line).strip().split(":")[0] in ("memory", "cpu") for d in stored)
    assert not exits_with_findings(report)  # warnings only: exit 0


def test_secret_values_never_reach_a_message(tmp_path, stage):
    planted = "sk-ant-PLANTED-0123456789abcdef"

    def change(docs):
        docs["secret.yaml"] = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                               "metadata": {"name": "planted", "namespace": "dox-asdlc"},
                               "stringData": {"api-key": planted}}

    def echoed(docs):
        change(docs)
        # a label value the server refuses, and echoes, under a credential-looking key: the diff masks it
        docs["configmap-hitl-ui.yaml"]["metadata"]["labels"]["dox-asdlc.io/api-token"] = planted + "!"

    found, report = run(case(tmp_path, echoed), stage)
    mine = [d for d in found if d.path.endswith("secret.yaml")]
    assert mine and all(planted not in d.message for d in mine)
    assert any("(masked)" in d.message for d in mine)  # stringData comes back as data: reported, masked
    rejected = [d for d in found if d.path.endswith("configmap-hitl-ui.yaml") and d.level == "error"]
    assert rejected and any("metadata.labels" in d.message and "(masked)" in d.message for d in rejected)
    assert all(planted not in d.message for d in found)


def test_cache_hit_starts_no_server(tmp_path, pool):
    directory = case(tmp_path, lambda docs: docs["service-hitl-ui.yaml"]["spec"]["ports"][0].update(
        targetPort="3000"))
    results = server.ResultCache(tmp_path / "results")
    first = server.Stage(pool=pool, cache=results, progress=lambda message: None)
    found_first, _ = run(directory, first)
    assert first.sent == len(FILES)
    # a pool whose binaries cannot run: any start would fail, so an answer proves nothing was started
    broken = server.Pool(binaries={"etcd": Path("/nonexistent/etcd"), "kube-apiserver": Path("/nonexistent/api")},
                         progress=lambda message: None)
    second = server.Stage(pool=broken, cache=results, progress=lambda message: None)
    found_second, _ = run(directory, second)
    assert found_second == found_first and found_first
    assert second.sent == 0 and broken.starts == 0


def test_a_server_that_cannot_start_is_exit_3_with_the_hint(tmp_path, pool):
    broken = server.Pool(binaries={**pool.binaries, "kube-apiserver": Path("/bin/false")},
                         progress=lambda message: None)
    stage = server.Stage(pool=broken, cache=server.ResultCache(tmp_path / "results"), progress=lambda m: None)
    with pytest.raises(server.StageError) as caught:
        run(case(tmp_path), stage)
    assert caught.value.code == 3
    assert "kube-apiserver" in caught.value.message and "--no-server" in caught.value.message
    broken.close()


def test_a_kubernetes_minor_without_a_server_is_exit_3_naming_it(tmp_path):
    stage = server.Stage(pool=server.Pool(binaries={}), cache=server.ResultCache(tmp_path / "r"),
                         progress=lambda m: None)
    with pytest.raises(server.StageError) as caught:
        runner.validate_path(case(tmp_path), "1.35", "dox-asdlc", stage=stage)
    assert caught.value.code == 3
    assert "1.35" in caught.value.message and "--no-server" in caught.value.message


def _hermetic_cache(tmp_path: Path) -> Path:
    """A cache directory of its own whose built tools and schemas are the shared ones (links)."""
    cache = tmp_path / "cache"
    cache.mkdir()
    for name in ("tools", "schemas"):
        (cache / name).symlink_to(cache_dir() / name)
    return cache


def test_cli_no_server_says_validation_is_weaker_and_starts_nothing(tmp_path, repo_copy):
    directory = case(tmp_path, lambda docs: docs["service-hitl-ui.yaml"]["spec"]["ports"][0].update(
        targetPort="3000"))
    env = {"DOX_CACHE_DIR": str(_hermetic_cache(tmp_path)), "DOX_KUBE_APISERVER": "/nonexistent/kube-apiserver"}
    proc = run_dox(repo_copy, "validate", "--path", str(directory), "--no-server", env=env)
    assert_no_traceback(proc)
    assert "validation is weaker" in proc.stderr
    assert "(api-server)" not in proc.stdout  # the string targetPort passes schema and policy: only the server sees it
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_cli_server_failing_to_start_is_exit_3(tmp_path, repo_copy):
    # etcd reads ETCD_<FLAG> variables as flags: an unparsable one makes the real, pinned etcd refuse to start
    # with its own message (a fake binary would not pass the pinned build's check).
    (tmp_path / "tmp").mkdir()
    env = {"DOX_CACHE_DIR": str(_hermetic_cache(tmp_path)), "ETCD_QUOTA_BACKEND_BYTES": "planted-failure",
           "TMPDIR": str(tmp_path / "tmp")}
    proc = run_dox(repo_copy, "validate", "--path", str(case(tmp_path)), env=env)
    assert_no_traceback(proc)
    assert proc.returncode == 3, proc.stderr
    assert "could not start" in proc.stderr and "--no-server" in proc.stderr
    assert "planted-failure" in proc.stderr  # the reason: the server's own log


def test_cli_server_stage_finds_the_rejection_exit_1(tmp_path, repo_copy):
    directory = case(tmp_path, lambda docs: docs["service-hitl-ui.yaml"]["spec"]["ports"][0].update(
        targetPort="3000"))
    env = {"DOX_CACHE_DIR": str(_hermetic_cache(tmp_path))}
    proc = run_dox(repo_copy, "validate", "--path", str(directory), env=env, timeout=300)
    assert_no_traceback(proc)
    assert proc.returncode == 1, proc.stderr
    assert "service-hitl-ui.yaml:" in proc.stdout and "spec.ports[0].targetPort" in proc.stdout
    assert "(api-server)" in proc.stdout


def test_environments_sharing_a_namespace_name_get_their_own_labels(tmp_path, pool):
    """One server, two outputs naming the same namespace with different Pod Security labels, at once:
    each answer follows its own Namespace's labels (and the cache keeps them apart)."""
    def variant(name: str, level: str) -> Path:
        def change(docs):
            labels = docs["namespace-dox-asdlc.yaml"]["metadata"]["labels"]
            for mode in ("enforce", "audit", "warn"):
                labels[f"pod-security.kubernetes.io/{mode}"] = level
            pod = docs["deployment-hitl-ui.yaml"]["spec"]["template"]["spec"]
            pod["containers"][0]["securityContext"]["runAsNonRoot"] = False
        return case(tmp_path / name, change)

    (tmp_path / "strict").mkdir()
    (tmp_path / "lax").mkdir()
    strict, lax = variant("strict", "restricted"), variant("lax", "privileged")
    results = server.ResultCache(tmp_path / "results")
    from concurrent.futures import ThreadPoolExecutor

    def check(directory):
        stage = server.Stage(pool=pool, cache=results, progress=lambda message: None)
        return run(directory, stage)[0]

    for _ in range(2):  # the second round is answered from the cache: it must keep the two apart too
        with ThreadPoolExecutor(max_workers=2) as threads:
            found_strict, found_lax = threads.map(check, (strict, lax))
        assert any("PodSecurity" in d.message and d.path.endswith("deployment-hitl-ui.yaml") for d in found_strict)
        assert not any("PodSecurity" in d.message for d in found_lax)


def test_ctrl_c_while_the_server_starts_stops_it_and_exits_3(tmp_path, repo_copy):
    import os
    import signal
    import subprocess
    import sys

    # The run's servers live under its own TMPDIR, so servers other runs on this machine start are not counted.
    own_tmp = tmp_path / "tmp"
    own_tmp.mkdir()

    def servers() -> set[str]:
        return set(subprocess.run(["pgrep", "-f", f"{own_tmp}/dox-validate-cluster-"], capture_output=True,
                                  text=True).stdout.split())

    before = servers()
    env = {**os.environ, "PYTHONPATH": str(repo_copy), "DOX_CACHE_DIR": str(_hermetic_cache(tmp_path)),
           "TMPDIR": str(own_tmp)}
    proc = subprocess.Popen([sys.executable, "-m", "doxops", "validate", "--force"], cwd=repo_copy, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    seen = []
    for line in proc.stderr:  # interrupt once the server is being started
        seen.append(line)
        if "starting etcd" in line:
            break
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    err = "".join(seen) + err
    assert proc.returncode == 3 and "interrupted" in err, err
    assert "Traceback" not in err
    assert not servers() - before  # etcd and kube-apiserver were stopped


# --------------------------------------------------------------------------- the stage's rules in the policy


STAGE_FIXTURES = ["api-server/pass-service.yaml", "api-server/fail-string-target-port.yaml",
                  "stored-as-written/pass-canonical-quantity.yaml",
                  "stored-as-written/fail-non-canonical-quantity.yaml"]


@pytest.mark.parametrize("fixture", STAGE_FIXTURES)
def test_stage_rule_fixtures(fixture, stage, tmp_path):
    """The fixtures of the stage's registered rules (test_rule_coverage.py), judged by the real server."""
    from doxops.validate.manifests import load_directory
    from tests.validate.helpers import FIXTURES

    rule_id, name = fixture.split("/")
    directory = tmp_path / "fixture"
    directory.mkdir()
    (directory / name).write_text((FIXTURES / rule_id / name).read_text())
    found = [d for d in stage.check(load_directory(directory), "1.36", directory, "fixtures") if d.rule == rule_id]
    if name.startswith("pass"):
        assert found == [], found
    else:
        assert found and all(d.path.endswith(name) for d in found), found


def duplicate_home(docs, exempt: bool = False):
    deployment = docs["deployment-hitl-ui.yaml"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container.setdefault("env", [])
    container["env"] += [{"name": "HOME", "value": "/tmp"}, {"name": "HOME", "value": "/home/app"}]
    if exempt:
        deployment["metadata"].setdefault("annotations", {})["exempt.dox-asdlc.io/api-server"] = \
            "the image reads the last HOME; fixed upstream in 1.5"


def test_an_exemption_suppresses_an_api_server_warning_and_is_not_an_unknown_rule(tmp_path, stage):
    (tmp_path / "plain").mkdir()
    (tmp_path / "exempt").mkdir()
    found, report = run(case(tmp_path / "plain", duplicate_home), stage)
    assert any("hides previous definition" in d.message for d in found)  # the warning the exemption must hide
    found, report = run(case(tmp_path / "exempt", lambda docs: duplicate_home(docs, exempt=True)), stage)
    assert not any("HOME" in d.message for d in found), found
    assert not [d for d in report.diagnostics if d.rule == "exemption"], report.diagnostics


def test_policy_levels_of_the_stage_rules(tmp_path, stage):
    """`--policy` (like environments/<env>/policy.yaml) sets the levels: stored-as-written as an error fails
    validation; api-server off drops even a rejection."""
    def change(docs):
        container = docs["deployment-hitl-ui.yaml"]["spec"]["template"]["spec"]["containers"][0]
        container["resources"]["limits"]["memory"] = "1024Mi"  # stored as 1Gi
        docs["service-hitl-ui.yaml"]["spec"]["ports"][0]["targetPort"] = "3000"

    (tmp_path / "d").mkdir()
    directory = case(tmp_path / "d", change)
    policy = tmp_path / "policy.yaml"
    policy.write_text("rules:\n  stored-as-written: {level: error}\n  api-server: {level: off}\n")
    report = runner.validate_path(directory, "1.36", "dox-asdlc", policy=policy, stage=stage)
    mine = [d for d in report.diagnostics if d.rule in (server.RULE, server.STORED_RULE)]
    assert [d.rule for d in mine] and {d.rule for d in mine} == {"stored-as-written"}, mine
    assert {d.level for d in mine} == {"error"} and exits_with_findings(report)
    default = runner.validate_path(directory, "1.36", "dox-asdlc", stage=stage)  # the server's own levels
    levels = {(d.rule, d.level) for d in default.diagnostics if d.rule in (server.RULE, server.STORED_RULE)}
    assert levels == {("api-server", "error"), ("stored-as-written", "warning")}, levels
