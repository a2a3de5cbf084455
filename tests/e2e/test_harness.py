"""The harness itself: pinned builds, clear start-up failures, and no process outliving its cluster."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from doxops.cluster import binaries
from doxops.cluster.cluster import Cluster, ClusterError
from doxops.paths import REPO_ROOT

pytestmark = pytest.mark.e2e


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")


def test_every_cluster_table_is_pinned_consistently():
    specs = binaries.load_specs()
    assert {"kubernetes", "etcd", "kwok", "metrics-server"} <= set(specs)
    assert specs["kubernetes"].version == "v1.36.1"
    for spec in specs.values():
        if spec.gobuild:
            binaries.pinned_modules(spec, REPO_ROOT)  # go.mod requires the version tools.toml pins
            assert (REPO_ROOT / spec.gobuild / "go.sum").exists(), spec.gobuild
    flags = specs["kubernetes"].rendered_ldflags
    for variable in ("k8s.io/component-base/version.gitVersion=v1.36.1",
                     "k8s.io/client-go/pkg/version.gitVersion=v1.36.1",
                     "k8s.io/component-base/version.gitMajor=1", "k8s.io/component-base/version.gitMinor=36"):
        assert variable in flags


def test_the_built_binaries_report_their_pinned_versions(cluster_binaries):
    specs = binaries.load_specs()
    for spec in specs.values():
        for name in spec.binaries:
            assert binaries.check(spec, cluster_binaries[name]) is None, name  # the Go build info
            got = binaries.reported_version(spec, cluster_binaries[name], name)
            assert binaries.same_version(got, spec.version), (name, got)
    resolved = binaries.ensure(build_missing=False)
    assert resolved.built == {}  # cached: nothing was rebuilt


def test_a_component_that_dies_at_start_is_reported_with_its_log(tmp_path):
    fake = tmp_path / "etcd"
    fake.write_text("#!/bin/sh\necho 'etcd: simulated start-up failure: address already in use' >&2\nexit 1\n")
    fake.chmod(0o755)
    cluster = Cluster(tmp_path / "c", components=[], binaries={"etcd": fake, "kube-apiserver": fake},
                      progress=lambda m: None)
    with pytest.raises(ClusterError) as info:
        with cluster:
            pass
    message = str(info.value)
    assert "etcd exited (code 1)" in message and "simulated start-up failure" in message
    assert f"work directory kept: {tmp_path / 'c'}" in message
    assert (tmp_path / "c" / "logs" / "etcd.log").exists()
    assert all(not p.alive for p in cluster.processes)


def test_a_failing_block_stops_every_process_and_keeps_the_logs(cluster_binaries, tmp_path):
    pids = []
    with pytest.raises(RuntimeError, match="a failing test"):
        with Cluster(tmp_path / "c", components=[], binaries=cluster_binaries, progress=lambda m: None) as cluster:
            pids = [p.pid for p in cluster.processes]
            raise RuntimeError("a failing test")
    assert len(pids) == 2 and all(_gone(pid) for pid in pids)
    assert (tmp_path / "c" / "logs" / "kube-apiserver.log").exists()


@pytest.mark.parametrize("ending", ["return", "sigkill"])
def test_no_process_outlives_the_interpreter(cluster_binaries, tmp_path, ending):
    """A script that never stops its cluster: atexit stops it on exit; PDEATHSIG when the script is killed."""
    pid_file = tmp_path / "pids"
    script = textwrap.dedent(f"""
        import os, signal
        from pathlib import Path
        from doxops.cluster import binaries
        from doxops.cluster.cluster import Cluster
        cluster = Cluster(Path({str(tmp_path / 'c')!r}), components=[],
                          binaries=binaries.ensure(build_missing=False).paths, progress=lambda m: None)
        cluster.start()
        Path({str(pid_file)!r}).write_text(" ".join(str(p.pid) for p in cluster.processes))
        if {ending!r} == "sigkill":
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, timeout=120,
                   env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    pids = [int(p) for p in pid_file.read_text().split()]
    assert len(pids) == 2
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not all(_gone(pid) for pid in pids):
        time.sleep(0.1)
    assert all(_gone(pid) for pid in pids), pids
