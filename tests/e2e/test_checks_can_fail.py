"""Every e2e check can fail: each is shown failing on a bad timeline, store, socket table or report (no cluster).

These run in the default suite (no ``e2e`` marker): they need neither the pinned binaries nor a
control plane, only the checks' own code, fed what a broken run would have seen.
"""

from __future__ import annotations

import ast
import copy
import json
import os
import socket
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from doxops import environments, operate
from doxops.cluster import sockets as sockets_mod
from doxops.cluster.api import ApiError
from doxops.cluster.process import Process
from doxops.cluster.report import Check, EnvReport, attempt
from doxops.cluster.scenarios import Scenario
from doxops.cluster.simulators import ExternalSecretsSimulator, store_definition
from doxops.cluster.sockets import SocketSampler, non_loopback_sockets, parse_table
from doxops.cluster.values import environment_values, hpa_bounds
from doxops.cluster.watch import STOPPED, Event, PodWatch, max_at_once, never_two, overlap_seen
from doxops.paths import REPO_ROOT

CLUSTER_SOURCES = sorted((REPO_ROOT / "doxops" / "cluster").rglob("*.py"))
WHOLE_KEY_PROPERTIES = {name: [k for k in keys if k] for name, keys in operate.MINIKUBE_SECRETS.items()}


# ---------------------------------------------------------------------- the pod watch and "never two pods"


RECREATE = [Event(0.4, "terminating", "old"), Event(2.1, "gone", "old"), Event(2.2, "created", "new")]


def test_never_two_holds_only_on_a_full_recreate_timeline():
    ok, detail = never_two(["old"], RECREATE, STOPPED)
    assert ok, detail
    assert "at most 1 pod(s)" in detail and "gone old" in detail and "created new" in detail


@pytest.mark.parametrize("timeline, ended, reason", [
    ([], "reading the watch failed: OSError: reset", "the watch ended before the harness stopped it"),
    ([], STOPPED, "the timeline shows no new pod created"),
    (RECREATE[:2], STOPPED, "the timeline shows no new pod created"),
    ([Event(1.0, "created", "new")], STOPPED, "does not show old gone"),
    ([Event(1.0, "created", "new"), Event(2.0, "gone", "old")], STOPPED, "2 pods at once"),
    (RECREATE, "the API server closed the stream", "the watch ended before the harness stopped it"),
    (RECREATE, "the API server sent an ERROR event: 410 Expired too old", "ERROR event"),
])
def test_never_two_fails_on_a_watch_that_saw_too_little_or_too_much(timeline, ended, reason):
    ok, detail = never_two(["old"], timeline, ended)
    assert not ok and reason in detail, detail


def test_never_two_needs_exactly_one_pod_at_the_start():
    assert not never_two([], [Event(1.0, "created", "new")], STOPPED)[0]
    assert not never_two(["a", "b"], RECREATE, STOPPED)[0]


def test_the_test_of_the_test_fails_without_an_overlap_or_on_a_dead_watch():
    surge = [Event(0.5, "created", "new"), Event(1.5, "terminating", "old"), Event(3.0, "gone", "old")]
    assert max_at_once(["old"], surge) == 2
    assert overlap_seen(["old"], surge, STOPPED)[0]
    assert not overlap_seen(["old"], RECREATE, STOPPED)[0]
    assert not overlap_seen(["old"], surge, "reading the watch failed: OSError")[0]


class _Stream:
    """A watch response: the given lines, then ``end`` raised, or (None) a quiet open stream until the watch
    is ended the way :func:`doxops.cluster.api.end_watch` ends a real one: its socket shut down."""

    def __init__(self, lines: list[bytes], end: BaseException | None = None) -> None:
        self.lines, self.end = list(lines), end
        self._ours, self._peer = socket.socketpair()
        self.fp = SimpleNamespace(raw=SimpleNamespace(_sock=self._ours))

    def readline(self) -> bytes:
        if self.lines:
            return self.lines.pop(0)
        if self.end is not None:
            raise self.end
        return self._ours.recv(1)  # b"" once shut down

    def close(self) -> None:
        self._ours.close()
        self._peer.close()


class _WatchApi:
    def __init__(self, stream: _Stream) -> None:
        self.stream = stream

    def get(self, path, **query):
        return {"metadata": {"resourceVersion": "7"}, "items": [{"metadata": {"name": "old"}}]}

    def open_watch(self, path, resource_version, **query):
        assert resource_version == "7"  # watched from the listing: no event falls in between
        return self.stream


def _event(kind: str, name: str, **meta) -> bytes:
    return json.dumps({"type": kind, "object": {"metadata": {"name": name, **meta}}}).encode() + b"\n"


def _wait_ended(watch: PodWatch) -> None:
    deadline = time.monotonic() + 5
    while watch.ended is None and time.monotonic() < deadline:
        time.sleep(0.01)


def test_a_watch_that_dies_at_once_says_why_and_fails_the_rollout_check():
    """The old harness counted from 1 and swallowed the error: max 1 pod, 'never two' passed vacuously."""
    watch = PodWatch(_WatchApi(_Stream([], ConnectionResetError("connection reset by peer"))), "ns", "app=x")
    _wait_ended(watch)
    assert watch.max_present == 1  # what the old check asserted
    watch.stop()
    assert watch.ended.startswith("reading the watch failed: ConnectionResetError")
    ok, detail = watch.never_two()
    assert not ok and "connection reset by peer" in detail


def test_an_error_event_ends_the_watch_and_is_reported():
    error = json.dumps({"type": "ERROR", "object": {"code": 410, "reason": "Expired", "message": "too old"}})
    watch = PodWatch(_WatchApi(_Stream([error.encode() + b"\n"])), "ns", "app=x")
    _wait_ended(watch)
    watch.stop()
    assert watch.ended == "the API server sent an ERROR event: 410 Expired too old"
    assert not watch.never_two()[0]


def test_a_watch_stopped_after_a_full_recreate_passes():
    lines = [_event("MODIFIED", "old", deletionTimestamp="t"), _event("DELETED", "old"), _event("ADDED", "new")]
    watch = PodWatch(_WatchApi(_Stream(lines)), "ns", "app=x")
    deadline = time.monotonic() + 5
    while len(watch.timeline) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    watch.stop()
    assert [(e.what, e.pod) for e in watch.timeline] == [("terminating", "old"), ("gone", "old"), ("created", "new")]
    assert watch.ended == STOPPED
    assert watch.never_two()[0], watch.never_two()[1]


# ---------------------------------------------------------------------- the report: checks are assertions


def test_a_report_with_no_check_or_one_failed_check_fails():
    assert not EnvReport("x").ok
    assert not EnvReport("x", observations=["Argo CD started"]).ok  # observations are not checks
    assert not EnvReport("x", checks=[Check("a", True), Check("b", False)]).ok
    assert EnvReport("x", checks=[Check("a", True)]).ok


def test_a_step_that_raises_becomes_a_failed_check():
    report = EnvReport("x")

    def first_sync() -> None:
        raise KeyError("status")

    assert not attempt(report, first_sync)
    assert report.checks == [Check("first sync ran to the end", False, "KeyError: 'status'")]


def _constant_true_checks(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Call):
            continue
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        verdict = node.args[1] if len(node.args) >= 2 else next((k.value for k in node.keywords if k.arg == "ok"), None)
        # A constant False records a failure (an error caught, a wait timed out); a constant True asserts nothing.
        if name in ("check", "require", "Check") and isinstance(verdict, ast.Constant) and verdict.value is not False:
            found.append(f"{path}:{node.lineno}")
    return found


def test_no_check_in_the_harness_is_a_constant():
    """A milestone after a wait is an observation; a check's verdict is always computed."""
    assert CLUSTER_SOURCES and not [f for p in CLUSTER_SOURCES for f in _constant_true_checks(p)]


def test_the_constant_check_finder_finds_one(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f(self):\n    self.check('Argo CD started', True, 'after the wait')\n"
                   "    self.check('computed', ok)\n")
    assert _constant_true_checks(bad) == [f"{bad}:2"]


# ---------------------------------------------------------------------- the External Secrets store


class _FakeApi:
    """An in-memory API: enough objects for the External Secrets simulator and the scenario's check."""

    def __init__(self) -> None:
        self.objects: dict[str, dict] = {}
        self.simulator = ExternalSecretsSimulator(self)

    def create(self, path: str, body: dict, **query) -> dict:
        key = f"{path}/{body['metadata']['name']}"
        if key in self.objects:
            raise ApiError(409, "AlreadyExists", key, "POST", path)
        body = copy.deepcopy(body)
        body["metadata"].setdefault("uid", f"uid-{len(self.objects)}")
        self.objects[key] = body
        return body

    def get_or_none(self, path: str):
        return copy.deepcopy(self.objects.get(path))

    def get(self, path: str, **query):
        found = self.get_or_none(path)
        if found is None:
            raise ApiError(404, "NotFound", path, "GET", path)
        return found

    def exists(self, path: str) -> bool:
        return path in self.objects

    def items(self, path: str, **query) -> list[dict]:
        if path.endswith("/externalsecrets"):
            return [copy.deepcopy(o) for k, o in self.objects.items() if "/externalsecrets/" in k]
        return [copy.deepcopy(o) for k, o in self.objects.items() if k.rsplit("/", 1)[0] == path]

    def patch(self, path: str, body: dict, kind: str = "", **query) -> dict:
        key = path[:-len("/status")] if path.endswith("/status") else path
        target = self.objects[key]
        for field, value in body.items():
            target[field] = {**(target.get(field) or {}), **value} if isinstance(value, dict) else value
        return target

    def wait_for(self, what, check, timeout, interval=0.5):
        self.simulator.reconcile()  # the operator's loop runs between two polls
        result = check()
        if not result:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        return result


def _prod_external_secrets() -> list[dict]:
    directory = REPO_ROOT / "rendered" / "prod" / "workloads"
    return [d for p in sorted(directory.glob("externalsecret-*.yaml")) for d in yaml.safe_load_all(p.read_text()) if d]


def _prod() -> environments.Environment:
    return next(e for e in environments.discover() if e.name == "prod")


def _apply(api: _FakeApi, docs: list[dict]) -> None:
    for doc in docs:
        api.create(f"/apis/external-secrets.io/v1/namespaces/{doc['metadata']['namespace']}/externalsecrets", doc)


def test_the_store_is_what_the_environments_values_define():
    definition = store_definition(environment_values(_prod()), WHOLE_KEY_PROPERTIES)
    assert (definition.kind, definition.name) == ("ClusterSecretStore", "dox-asdlc-prod")
    assert definition.keys() == ["dox-asdlc/anthropic.api-key", "dox-asdlc/git-credentials.token",
                                 "dox-asdlc/git-credentials.username", "dox-asdlc/redis.password"]


def test_the_rendered_external_secrets_sync_from_that_store():
    api = _FakeApi()
    api.simulator.create_store(store_definition(environment_values(_prod()), WHOLE_KEY_PROPERTIES))
    docs = _prod_external_secrets()
    _apply(api, docs)
    api.simulator.reconcile()
    for doc in docs:
        es = api.get(f"/apis/external-secrets.io/v1/namespaces/dox-asdlc/externalsecrets/{doc['metadata']['name']}")
        assert es["status"]["conditions"][0]["status"] == "True", es["status"]
    secret = api.get("/api/v1/namespaces/dox-asdlc/secrets/git-credentials")
    assert sorted(secret["data"]) == ["token", "username"]


@pytest.mark.parametrize("where", ["key", "property"])
def test_a_wrong_remote_key_or_property_fails_the_scenarios_check(where, tmp_path):
    """The old store was generated from the ExternalSecrets themselves, so any remote key was 'found'."""
    docs = _prod_external_secrets()
    wrong = next(d for d in docs if d["metadata"]["name"] == "anthropic-api-key")
    wrong["spec"]["data"][0]["remoteRef"][where] += "-typo"
    manifests = tmp_path / "rendered"
    (manifests / "workloads").mkdir(parents=True)
    (manifests / "workloads" / "externalsecrets.yaml").write_text(yaml.safe_dump_all(docs))
    api = _FakeApi()
    report = EnvReport("prod")
    scenario = Scenario(_prod(), SimpleNamespace(api=api), manifests, report, lambda message: None)
    api.simulator.create_store(store_definition(environment_values(_prod()), WHOLE_KEY_PROPERTIES))
    _apply(api, docs)
    assert attempt(report, scenario.external_secrets)
    failed = {c.name: c.detail for c in report.failures}
    assert list(failed) == ["ExternalSecret anthropic-api-key: Ready, Secret anthropic-api-key created from the "
                            "environment's store"], report.text()
    assert "Ready=False SecretSyncedError" in failed[list(failed)[0]] and "typo" in failed[list(failed)[0]]
    assert sum(c.ok for c in report.checks) == 2  # the other two ExternalSecrets still pass


# ---------------------------------------------------------------------- the loopback proof


def _row(index: int, local: str, remote: str, state: str, inode: int) -> str:
    return f"   {index}: {local} {remote} {state} 00000000:00000000 00:00000000 00000000     0        0 {inode} 1"


TCP_TABLE = "\n".join([
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode",
    _row(0, "0100007F:1F90", "00000000:0000", "0A", 11),    # 127.0.0.1:8080 LISTEN
    _row(1, "0100007F:C350", "0379528C:01BB", "02", 12),    # SYN_SENT to 140.82.121.3:443
    _row(2, "0100007F:C351", "0500F40A:1F90", "08", 13),    # CLOSE_WAIT with 10.244.0.5:8080 (a pod IP)
    _row(3, "0100007F:C352", "0100007F:1F90", "05", 14),    # FIN_WAIT2 on loopback
    _row(4, "0100007F:C353", "0100007F:1F90", "0D", 15),    # a state this module has no name for
    _row(5, "0100007F:C354", "0379528C:01BB", "01", 99),    # another process's socket: not ours
])


def test_every_socket_state_is_read_and_judged():
    rows = parse_table(TCP_TABLE, "tcp", {"11", "12", "13", "14", "15"})
    assert [state for _, state, _ in rows] == ["LISTEN", "SYN_SENT", "CLOSE_WAIT", "FIN_WAIT2", "STATE_0D"]
    report = [("p", *row) for row in rows]
    assert non_loopback_sockets(report) == ["p: tcp SYN_SENT 127.0.0.1:50000 -> 140.82.121.3:443",
                                            "p: tcp CLOSE_WAIT 127.0.0.1:50001 -> 10.244.0.5:8080"]


def test_a_listener_on_every_interface_is_caught_by_the_sampler_even_after_it_closed(tmp_path):
    """No traffic: the child only listens (on every interface) for a moment, then closes and idles."""
    script = ("import socket, time\n"
              "s = socket.socket(); s.bind(('0.0.0.0', 0)); s.listen(); time.sleep(1.5); s.close()\n"
              "time.sleep(30)\n")
    process = Process("listener", [sys.executable, "-c", script], tmp_path / "listener.log")
    try:
        with SocketSampler(lambda: [process], interval=0.1) as sampler:
            time.sleep(2.5)
        assert not sampler.proved()
        assert any(b.startswith("listener: tcp LISTEN 0.0.0.0:") for b in sampler.bad), sampler.summary()
        assert sockets_mod.sockets([process]) == []  # closed now: only sampling during the run saw it
    finally:
        process.stop(grace=1)


def test_a_loopback_only_process_is_proved_and_a_sampler_without_samples_is_not(tmp_path):
    script = ("import socket, time\n"
              "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(); time.sleep(30)\n")
    process = Process("quiet", [sys.executable, "-c", script], tmp_path / "quiet.log")
    try:
        with SocketSampler(lambda: [process], interval=0.1) as sampler:
            deadline = time.monotonic() + 5
            while not sampler.states and time.monotonic() < deadline:
                time.sleep(0.05)
        assert sampler.proved() and "tcp LISTEN" in sampler.states, sampler.summary()
    finally:
        process.stop(grace=1)
    assert not SocketSampler(lambda: [process]).proved()  # never sampled
    broken = SocketSampler(lambda: [process])
    broken.samples, broken.errors = 3, ["PermissionError: /proc"]
    assert not broken.proved()


# ---------------------------------------------------------------------- expectations from the environment


@pytest.mark.parametrize("env", environments.discover(), ids=lambda e: e.name)
def test_the_hpa_bounds_the_e2e_expects_are_the_environments_values_and_its_render(env):
    low, high, target = hpa_bounds(environment_values(env))
    [hpa] = [d for p in (REPO_ROOT / "rendered" / env.name / "workloads").glob("horizontalpodautoscaler-*.yaml")
             for d in yaml.safe_load_all(p.read_text()) if d]
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (low, high)
    assert hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == target


def test_an_environments_override_changes_the_expectation(tmp_path):
    env_dir = tmp_path / "environments" / "staging"
    env_dir.mkdir(parents=True)
    prod = _prod()
    kustomization = yaml.safe_load((prod.path / environments.KUSTOMIZATION).read_text())
    kustomization["helmGlobals"]["chartHome"] = os.path.relpath(REPO_ROOT / "helm", env_dir)
    kustomization["helmCharts"][0]["valuesFile"] = os.path.relpath(REPO_ROOT / "apps/dox-asdlc/values.yaml", env_dir)
    (env_dir / environments.KUSTOMIZATION).write_text(yaml.safe_dump(kustomization))
    (env_dir / "values.yaml").write_text(yaml.safe_dump({"workers": {"minReplicas": 3, "maxReplicas": 7}}))
    env = environments.Environment("staging", env_dir, prod.kubernetes_version)
    assert hpa_bounds(environment_values(env))[:2] == (3, 7)
