"""Fixtures of the e2e tests: the pinned cluster binaries, the environment runs, a light cluster.

The environment runs are one session fixture: every environment whose test is selected runs at
once, side by side, each on its own control plane (most of a run is waiting for controllers), and
each test then asserts its environment's report. Select these tests alone with ``-m e2e``.
"""

from __future__ import annotations

import sys

import pytest

from doxops import environments
from doxops.cluster import binaries
from doxops.cluster.cluster import Cluster
from doxops.cluster.e2e import run_reports

ENV_NAMES = [e.name for e in environments.discover()]


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "e2e: applies rendered environments to a real local control plane (select with -m e2e)")


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@pytest.fixture(scope="session")
def cluster_binaries(request) -> dict:
    """Every harness binary (built into ~/.cache/dox-asdlc/tools on the first run only, said on the terminal)."""
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")

    def say(message: str) -> None:  # a first build takes minutes: show it even while output is captured
        if reporter is not None:
            reporter.write_line(message)
        else:
            _progress(message)

    return binaries.ensure(progress=say).paths


@pytest.fixture(scope="session")
def e2e_reports(request, cluster_binaries) -> dict:
    """``{environment: EnvReport}`` for the environments whose e2e test is selected."""
    selected = sorted({item.callspec.params["env_name"] for item in request.session.items
                       if hasattr(item, "callspec") and "env_name" in item.callspec.params
                       and item.get_closest_marker("e2e")})
    reports = run_reports(selected, progress=_progress, parallel=True, paths=cluster_binaries)
    return {r.env: r for r in reports}


@pytest.fixture(scope="session")
def light_cluster(cluster_binaries, tmp_path_factory):
    """etcd, API server and controller manager only: enough for admission and controller failures."""
    with Cluster(tmp_path_factory.mktemp("light-cluster"), components=["kube-controller-manager"],
                 binaries=cluster_binaries, progress=_progress, name="light") as cluster:
        yield cluster
