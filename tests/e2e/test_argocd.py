"""Argo CD in the loop: each environment synced by the real Argo CD from a local git remote.

One test per environment directory, asserting the report of :func:`doxops.cluster.argocd.run_env`
(the runs are one module fixture: every selected environment at once, side by side). The first
tests check, without running anything, what the run configures: every address Argo CD and its
Redis are given is 127.0.0.1, and the loopback check lets through exactly one socket, the
application controller's metrics listener, which Argo CD binds on every interface.
"""

from __future__ import annotations

import ipaddress
import re
import sys
import urllib.parse
from pathlib import Path

import pytest
import yaml

from doxops.cluster import argocd as argocd_mod
from doxops.cluster.argocd import install as install_mod
from doxops.cluster.argocd import (CONTROLLER, IN_CLUSTER, REDIS, REPO_SERVER, ArgoCD, non_loopback, point_settings,
                                   run_reports, set_value)
from doxops.errors import ToolError
from doxops.paths import REPO_ROOT

from .conftest import ENV_NAMES

pytestmark = pytest.mark.e2e

IPV4 = re.compile(r"(?<![\d.])(\d{1,3}(?:\.\d{1,3}){3})(?![\d.])")

#: Checks every environment's report must contain (by the start of their names).
REQUIRED = (
    "local remote file://",
    "Secrets created by `./dox minikube-secrets`",  # minikube only; prod: the External Secrets store
    "`./dox argocd-bootstrap --env",
    "sync revision became the merged commit",
    "HPA workers: maxReplicas",
    "ConfigMap orchestrator: LOG_LEVEL",
    "orchestrator (reads ConfigMap orchestrator) rolled to a new ReplicaSet",
    "Deployments that do not read orchestrator did not roll",
    "prune: ",
    "self-heal: orchestrator scaled to 2 by hand is back to 1 replica",
    "steady state: Synced and Healthy",
    "loopback only: every TCP/UDP socket of the control plane and Argo CD, in every state",
    "Argo CD looked up no name",
    "Applications read file://",
    "teardown: every process stopped",
)
#: Milestones every report must have observed (not checks: had the wait failed, the wait is a failed check).
OBSERVED = ("Argo CD started", "first sync:", "workloads Running on simulated node")


@pytest.fixture
def planned(tmp_path):
    argocd = ArgoCD(tmp_path / "argocd", tmp_path / "admin.kubeconfig", "/bin/argocd", "/usr/bin/redis-server",
                    taken={6443}, progress=lambda m: None)
    return argocd, {c.name: c for c in argocd.plan()}


def _flag(argv: list[str], name: str) -> str:
    values = [a.split("=", 1)[1] for a in argv if a.startswith(name + "=")]
    assert len(values) == 1, f"{name}: {values}"
    return values[0]


def test_every_address_argocd_is_given_is_loopback(planned):
    argocd, components = planned
    assert list(components) == [REDIS, REPO_SERVER, CONTROLLER]
    ports = argocd.ports
    assert len(set(vars(ports).values())) == len(vars(ports)) and 6443 not in vars(ports).values()
    for component in components.values():
        for text in component.argv[1:] + [f"{k}={v}" for k, v in component.env.items()]:
            for match in IPV4.finditer(text):
                assert ipaddress.ip_address(match.group(1)).is_loopback, (component.name, text)
            assert "0.0.0.0" not in text and "[::]" not in text, (component.name, text)
        assert not {k for k in component.env if "proxy" in k.lower()}, component.name
    redis = components[REDIS].argv
    assert redis[redis.index("--bind") + 1] == "127.0.0.1" and redis[redis.index("--port") + 1] == str(ports.redis)
    assert redis[redis.index("--save") + 1] == "" and redis[redis.index("--appendonly") + 1] == "no"
    repo = components[REPO_SERVER].argv
    assert _flag(repo, "--address") == "127.0.0.1" and _flag(repo, "--metrics-address") == "127.0.0.1"
    assert _flag(repo, "--redis") == f"127.0.0.1:{ports.redis}"
    controller = components[CONTROLLER]
    assert _flag(controller.argv, "--repo-server") == f"127.0.0.1:{ports.repo_server}"
    assert _flag(controller.argv, "--commit-server") == f"127.0.0.1:{ports.commit_server}"
    assert _flag(controller.argv, "--redis") == f"127.0.0.1:{ports.redis}"
    assert _flag(controller.argv, "--metrics-port") == str(ports.controller_metrics)
    assert controller.env["ARGOCD_FAKE_IN_CLUSTER"] == "true"
    assert controller.env["KUBECONFIG"] == str(argocd.kubeconfig)
    for component in (components[REPO_SERVER], controller):
        assert component.env["ARGOCD_BINARY_NAME"] == component.name
        assert component.env["ARGOCD_GPG_ENABLED"] == "false"
        for key in ("HOME", "TMPDIR", "ARGOCD_ASK_PASS_SOCK", "ARGOCD_PLUGINSOCKFILEPATH", "ARGOCD_GNUPGHOME"):
            assert component.env[key].startswith(str(argocd.workdir)), key


def test_the_configuration_objects_are_argocds_and_labelled():
    objects = ArgoCD(Path("/nonexistent"), Path("/k"), "a", "r").config_objects()
    names = {o["metadata"]["name"] for o in objects if o["kind"] in ("ConfigMap", "Secret")}
    assert names == {"argocd-cm", "argocd-secret", "argocd-rbac-cm", "argocd-cmd-params-cm", "argocd-tls-certs-cm",
                     "argocd-ssh-known-hosts-cm", "argocd-gpg-keys-cm"}
    assert all(o["metadata"]["namespace"] == "argocd" and o["metadata"]["labels"]["app.kubernetes.io/part-of"] ==
               "argocd" for o in objects)
    assert any(o["kind"] == "AppProject" and o["metadata"]["name"] == "default" for o in objects)
    secret = next(o for o in objects if o["kind"] == "Secret")
    assert set(secret["data"]) == {"server.secretkey"}  # generated per run; nothing secret is in the file


def test_only_the_controllers_metrics_listener_may_leave_loopback():
    report = [
        (CONTROLLER, "tcp", "LISTEN", "[::]:40001 -> [::]:0"),
        (CONTROLLER, "tcp", "ESTABLISHED", "127.0.0.1:5000 -> 127.0.0.1:6443"),
        (REDIS, "tcp", "LISTEN", "127.0.0.1:40002 -> 0.0.0.0:0"),
        (REPO_SERVER, "udp", "UNCONNECTED", "127.0.0.1:0 -> 0.0.0.0:0"),
    ]
    assert non_loopback(report, 40001) == []
    assert non_loopback(report, 40009) == [f"{CONTROLLER}: tcp LISTEN [::]:40001 -> [::]:0"]
    assert non_loopback([(REPO_SERVER, "tcp", "LISTEN", "0.0.0.0:40001 -> 0.0.0.0:0")], 40001)
    assert non_loopback([(CONTROLLER, "udp", "ESTABLISHED", "10.0.0.5:5353 -> 10.0.0.1:53")], 40001)
    assert non_loopback([(CONTROLLER, "tcp", "SYN_SENT", "127.0.0.1:5000 -> 140.82.121.3:443")], 40001)


@pytest.mark.parametrize("env_name", ENV_NAMES)
def test_the_settings_file_is_pointed_with_its_comments_kept(env_name):
    text = (REPO_ROOT / "environments" / env_name / "argocd" / "settings.yaml").read_text()
    pointed = point_settings(text, "file:///tmp/x/remote.git", IN_CLUSTER)
    data = yaml.safe_load(pointed)
    assert data["spec"]["repoURL"] == "file:///tmp/x/remote.git"
    assert data["spec"]["destination"]["server"] == IN_CLUSTER
    original = yaml.safe_load(text)
    for key in ("environment", "targetRevision", "prune"):
        assert data["spec"][key] == original["spec"][key]
    assert [line for line in pointed.splitlines() if line.lstrip().startswith("#")] == \
        [line for line in text.splitlines() if line.lstrip().startswith("#")]


@pytest.mark.parametrize("env_name", ENV_NAMES)
def test_the_pull_requests_values_edit_keeps_everything_else(env_name):
    text = (REPO_ROOT / "environments" / env_name / "values.yaml").read_text()
    edited = set_value(set_value(text, "workers", "maxReplicas", 8), "orchestrator", "logLevel", "DEBUG")
    before, after = yaml.safe_load(text), yaml.safe_load(edited)
    assert after["workers"]["maxReplicas"] == 8 and after["orchestrator"]["logLevel"] == "DEBUG"
    after["workers"].pop("maxReplicas")
    after["orchestrator"].pop("logLevel")
    before["workers"].pop("maxReplicas", None)
    assert after == before
    assert sum(1 for line in edited.splitlines() if line.lstrip().startswith("#")) == \
        sum(1 for line in text.splitlines() if line.lstrip().startswith("#"))


def test_a_missing_redis_server_names_the_package(monkeypatch):
    monkeypatch.setattr(install_mod.shutil, "which", lambda name: None)
    monkeypatch.setattr(install_mod.os, "access", lambda path, mode: False)
    with pytest.raises(ToolError, match=r"apt-get install redis-server"):
        argocd_mod.redis_server()


def test_the_pruned_template_exists():
    assert (REPO_ROOT / argocd_mod.PRUNED_TEMPLATE).is_file()


# ---------------------------------------------------------------------- the runs


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@pytest.fixture(scope="module")
def argocd_reports(request, cluster_binaries) -> dict:
    """``{environment: report}`` for the environments whose Argo CD test is selected, run side by side."""
    selected = sorted({item.callspec.params["argocd_env"] for item in request.session.items
                       if hasattr(item, "callspec") and "argocd_env" in item.callspec.params})
    reports = run_reports(selected, progress=_progress, parallel=True, paths=cluster_binaries)
    return {r.env: r for r in reports}


@pytest.mark.parametrize("argocd_env", ENV_NAMES)
def test_argocd_syncs_merges_prunes_heals_and_stays_synced(argocd_env, argocd_reports):
    report = argocd_reports[argocd_env]
    assert report.ok, report.text()
    names = [c.name for c in report.checks]
    external = any(n.startswith("ExternalSecret") for n in names) or any("External Secrets" in o
                                                                        for o in report.observations)
    required = [r for r in REQUIRED if not (external and r.startswith("Secrets created by"))]
    missing = [r for r in required if not any(n.startswith(r) for n in names)]
    assert not missing, f"checks that did not run: {missing}\n{report.text()}"
    unseen = [o for o in OBSERVED if not any(seen.startswith(o) for seen in report.observations)]
    assert not unseen, f"milestones not observed: {unseen}\n{report.text()}"
    settings = yaml.safe_load((REPO_ROOT / "environments" / argocd_env / "argocd" / "settings.yaml").read_text())
    if settings["spec"]["prune"]:
        assert any(n.startswith("prune: true:") for n in names), f"the prune check did not run\n{report.text()}"
    else:
        assert any(n.startswith("prune: false:") and "still in the cluster" in n for n in names), report.text()
        assert any(o.startswith("prune: false: an operator's sync with prune") for o in report.observations), \
            f"the operator's prune was not observed\n{report.text()}"
    remote = next(n for n in names if n.startswith("local remote file://"))
    assert urllib.parse.urlsplit(remote.split()[2].rstrip(":")).scheme == "file"
