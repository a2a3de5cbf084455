"""Mutations of a copy of the real rendered output each yield exactly the expected rule id."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from doxops import environments, yamlio
from doxops.paths import REPO_ROOT
from doxops.validate import runner


def mutate(tmp_path: Path, env: str, file: str, change) -> list[str]:
    root = tmp_path / "repo"
    shutil.copytree(REPO_ROOT / "rendered" / env, root / "rendered" / env)
    if change is not None:
        path = root / "rendered" / env / "workloads" / file
        if change == "delete":
            path.unlink()
        else:
            header, body = path.read_text().split("---\n", 1)
            doc = yaml.safe_load(body)
            change(doc)
            path.write_text(header + "---\n" + yamlio.dump(doc))
    target = next(e for e in environments.discover() if e.name == env)
    report = runner.validate_env(target, root=root)
    return sorted({d.rule for d in report.diagnostics if d.level == "error"})


def pod(doc):
    return doc["spec"]["template"]["spec"]


def redis_host_to_nowhere(doc):
    doc["data"]["REDIS_HOST"] = "redis-missing.dox-asdlc.svc.cluster.local"


def git_credentials_in_workers(doc):
    pod(doc).setdefault("volumes", []).append({"name": "git", "secret": {"secretName": "git-credentials"}})
    pod(doc)["containers"][0].setdefault("volumeMounts", []).append(
        {"name": "git", "mountPath": "/etc/git", "readOnly": True})


def duplicate_home(doc):
    """issue 16 case 4: two env entries named HOME in one container."""
    env = pod(doc)["containers"][0].setdefault("env", [])
    env += [{"name": "HOME", "value": "/tmp"}, {"name": "HOME", "value": "/home/app"}]


def unlabelled_workers_with_replicas(doc):
    """An HPA's target sets spec.replicas and carries no role label: Argo CD would still fight the HPA."""
    del doc["metadata"]["labels"]["dox-asdlc.io/role"]
    doc["spec"]["replicas"] = 2


@pytest.mark.parametrize("env", ["minikube", "prod"])
@pytest.mark.parametrize("file, change, expected", [
    ("deployment-orchestrator.yaml", lambda d: d["spec"].update(replicas=2), ["singleton"]),
    ("horizontalpodautoscaler-workers.yaml", "delete", ["autoscaled-pool"]),
    ("deployment-workers.yaml", lambda d: d["spec"].update(replicas=3), ["autoscaled-pool"]),
    ("configmap-workers.yaml", redis_host_to_nowhere, ["service-address"]),
    ("deployment-workers.yaml", git_credentials_in_workers, ["git-credentials"]),
    ("deployment-orchestrator.yaml", duplicate_home, ["pod-references"]),
    ("deployment-workers.yaml", unlabelled_workers_with_replicas, ["autoscaled-pool"]),
], ids=["orchestrator-replicas-2", "hpa-removed", "workers-replicas", "redis-host-missing", "git-creds-in-workers",
        "duplicate-home", "hpa-target-without-role-sets-replicas"])
def test_each_mutation_yields_exactly_its_rule(tmp_path, env, file, change, expected):
    assert mutate(tmp_path, env, None, None) == []
    assert mutate(tmp_path / "m", env, file, change) == expected


def test_other_chart_with_other_names_triggers_the_same_rules():
    """--path on manifests whose objects have other names; roles come from labels only."""
    report = runner.validate_path(Path(__file__).parent / "fixtures" / "other-chart", namespace="shop")
    found = sorted({(d.rule, Path(d.path).name) for d in report.diagnostics})
    assert found == [
        ("autoscaled-pool", "pool.yaml"),
        ("git-credentials", "pool.yaml"),
        ("service-address", "leader.yaml"),
        ("singleton", "leader.yaml"),
    ]
