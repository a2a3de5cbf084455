"""The API-server stage's pure parts: apply modes, field paths, stored-as-written, masking, cache keys."""

from __future__ import annotations

import shutil

import pytest

from doxops.paths import REPO_ROOT
from doxops.validate import server
from doxops.validate.manifests import load_directory


def test_apply_mode_follows_the_application_that_syncs_the_file():
    directory = REPO_ROOT / "rendered" / "prod"
    manifests = load_directory(directory)
    mode_of = server.apply_modes(manifests, directory)
    deployment = next(m for m in manifests if m.kind == "Deployment")
    app = next(m for m in manifests if m.kind == "Application" and m.name == "dox-asdlc-prod")
    assert mode_of(deployment) == server.Mode(False, True, "dox-asdlc-prod", "dox-asdlc")
    assert mode_of(app).application == "dox-asdlc-prod-root"  # the root syncs rendered/prod/argocd


def test_server_side_apply_from_sync_options_and_annotation(tmp_path):
    repo = tmp_path / "repo"
    shutil.copytree(REPO_ROOT / "rendered" / "prod", repo / "rendered" / "prod")
    app_file = repo / "rendered/prod/argocd/application-dox-asdlc-prod.yaml"
    app_file.write_text(app_file.read_text().replace("- PruneLast=true", "- PruneLast=true\n    - ServerSideApply=true"))
    hpa = repo / "rendered/prod/workloads/horizontalpodautoscaler-workers.yaml"
    hpa.write_text(hpa.read_text().replace("  annotations:\n", "  annotations:\n    argocd.argoproj.io/sync-options: "
                                           "ServerSideApply=false,Validate=false\n", 1))
    manifests = load_directory(repo / "rendered" / "prod")
    mode_of = server.apply_modes(manifests, repo / "rendered" / "prod")
    deployment = next(m for m in manifests if m.kind == "Deployment")
    autoscaler = next(m for m in manifests if m.kind == "HorizontalPodAutoscaler")
    assert mode_of(deployment).server_side is True
    assert mode_of(autoscaler).server_side is False and mode_of(autoscaler).validate is False


def test_a_file_no_application_syncs_is_client_side(tmp_path):
    (tmp_path / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    manifests = load_directory(tmp_path)
    assert server.apply_modes(manifests, tmp_path)(manifests[0]) == server.Mode()


@pytest.mark.parametrize("path, pointer", [
    ("spec.template.spec.containers[0].env[1]", "/spec/template/spec/containers/0/env/1"),
    ("metadata.annotations", "/metadata/annotations"),
    ("data[a/b]", "/data/a~1b"),
    ("[]", ""),
    ("", ""),
])
def test_field_paths_become_pointers(path, pointer):
    assert server.field_pointer(path) == pointer


def test_stored_differences_name_only_what_the_manifest_sets():
    written = {"spec": {"replicas": 1, "resources": {"limits": {"memory": "1024Mi", "cpu": 2}},
                        "env": [], "note": None, "ports": [{"port": 80}]}}
    stored = {"spec": {"replicas": 1, "resources": {"limits": {"memory": "1Gi", "cpu": "2"}},
                       "ports": [{"port": 80, "protocol": "TCP"}], "defaulted": True}}
    assert server.stored_differences(written, stored) == [("/spec/resources/limits/memory", "1024Mi", "1Gi")]
    assert server.stored_differences({"a": "x"}, {}) == [("/a", "x", None)]
    assert server.stored_differences({"a": True}, {"a": 1}) == [("/a", True, 1)]
    assert server.stored_differences({"a": [1, 2]}, {"a": [1]}) == [("/a", [1, 2], [1])]


def test_secret_values_are_hidden_in_free_text():
    data = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
            "data": {"token": "c2VjcmV0LXZhbHVlLTEyMw=="}, "stringData": {"password": "hunter2-planted"}}
    secrets = server.secret_strings(data)
    text = server.hide('Invalid value: "hunter2-planted" and "secret-value-123" and c2VjcmV0LXZhbHVlLTEyMw==',
                       secrets)
    assert "hunter2" not in text and "secret-value-123" not in text and "c2VjcmV0" not in text
    assert text.count("(masked)") == 3


def test_server_warning_headers_are_unquoted():
    header = '299 - "spec.template.spec.containers[0].env[1]: hides previous definition of \\"HOME\\""'
    assert server.warning_text(header) == 'spec.template.spec.containers[0].env[1]: hides previous definition of "HOME"'


def test_cache_round_trip_and_corruption(tmp_path):
    cache = server.ResultCache(tmp_path)
    assert cache.get("ab" * 32) is None
    cache.put("ab" * 32, [{"pointer": "", "level": "error", "message": "m", "rule": "api-server"}])
    assert cache.get("ab" * 32)[0]["message"] == "m"
    (tmp_path / "ab" / f"{'ab' * 32}.json").write_text("{corrupt")
    assert cache.get("ab" * 32) is None  # a corrupt entry is a miss, never an answer
