"""Offline, strict kubeconform with locally produced schemas (foundation issue)."""

from __future__ import annotations

import textwrap

import pytest

from doxops.validate import kubeconform
from doxops.validate.manifests import load_directory

DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: demo
  annotations:
    unknown.example.com/anything: "annotations are free-form"
spec:
  {replicas_field}: 1
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers: [{{name: web, image: "web:1.0.0"}}]
"""

APPLICATION = """
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: web, namespace: argocd}
spec:
  project: web
  source: {repoURL: "file:///repo", path: rendered/x, targetRevision: main}
  destination: {server: "https://kubernetes.default.svc", namespace: demo}
  %s
"""

EXTERNAL_SECRET = """
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: creds, namespace: demo}
spec:
  secretStoreRef: {kind: ClusterSecretStore, name: store}
  target: {name: creds}
  data:
    - secretKey: password
      remoteRef: {key: app/creds, property: password}
  %s
"""


def validate(tmp_path, text: str):
    (tmp_path / "m.yaml").write_text(textwrap.dedent(text))
    return kubeconform.run(load_directory(tmp_path), "1.36.1")


def test_valid_deployment_with_unknown_annotation_passes(tmp_path):
    assert validate(tmp_path, DEPLOYMENT.format(replicas_field="replicas")) == []


def test_misspelled_field_fails_under_strict_with_its_line(tmp_path):
    found = validate(tmp_path, DEPLOYMENT.format(replicas_field="replica"))
    assert len(found) == 1
    assert "'replica' not allowed" in found[0].message
    assert (found[0].path.endswith("m.yaml"), found[0].line, found[0].rule) == (True, 10, "schema")


@pytest.mark.parametrize("text", [APPLICATION, EXTERNAL_SECRET], ids=["Application", "ExternalSecret"])
def test_custom_resources_pass_and_fail_on_an_unknown_field(tmp_path, text):
    assert validate(tmp_path, text % "") == []
    found = validate(tmp_path, text % "bogusField: 1")
    assert [d.rule for d in found] == ["schema"]
    assert "'bogusField' not allowed" in found[0].message


def test_kind_without_schema_is_an_error_naming_the_kind(tmp_path):
    found = validate(tmp_path, "apiVersion: widgets.example.com/v1\nkind: Widget\nmetadata: {name: w}\n")
    assert len(found) == 1 and found[0].level == "error"
    assert "no schema for kind Widget (widgets.example.com/v1)" in found[0].message


def test_crd_metadata_and_preserved_fields_stay_open(tmp_path):
    # Application.spec.source.helm.valuesObject is x-kubernetes-preserve-unknown-fields
    text = APPLICATION % "" + textwrap.dedent("""\
    ---
    apiVersion: argoproj.io/v1alpha1
    kind: Application
    metadata: {name: two, namespace: argocd, labels: {any: thing}, finalizers: [resources-finalizer.argocd.argoproj.io/foreground]}
    spec:
      project: web
      source:
        repoURL: "file:///repo"
        chart: c
        targetRevision: 1.0.0
        helm: {valuesObject: {whatever: {nested: true}}}
      destination: {server: "https://kubernetes.default.svc", namespace: demo}
    """)
    assert validate(tmp_path, text) == []


def _env_dir(root, name: str, replicas_field: str):
    directory = root / name
    directory.mkdir()
    (directory / "m.yaml").write_text(textwrap.dedent(DEPLOYMENT.format(replicas_field=replicas_field)))
    (directory / "p.yaml").write_text(textwrap.dedent(EXTERNAL_SECRET % ""))
    return load_directory(directory)


def test_one_shared_run_answers_each_environment_as_its_own_run_would(tmp_path):
    good, bad = _env_dir(tmp_path, "good", "replicas"), _env_dir(tmp_path, "bad", "replica")
    alone = {"good": kubeconform.run(good, "1.36.1"), "bad": kubeconform.run(bad, "1.36.1")}
    assert alone["good"] == [] and [d.rule for d in alone["bad"]] == ["schema"]  # the planted error is seen
    with kubeconform.Batch({"1.36.1": [m.path for m in good + bad]}) as batch:
        shared = {"good": batch.run(good, "1.36.1"), "bad": batch.run(bad, "1.36.1")}
    assert shared == alone  # the bad file's error goes to its environment only, at the same line


def test_a_file_the_shared_run_did_not_check_gets_its_own_run(tmp_path):
    good, bad = _env_dir(tmp_path, "good", "replicas"), _env_dir(tmp_path, "bad", "replica")
    with kubeconform.Batch({"1.36.1": [m.path for m in good]}) as batch:  # bad's files are not in it
        assert [d.rule for d in batch.run(bad, "1.36.1")] == ["schema"]
        assert [d.rule for d in batch.run(good, "1.36.0")] == []  # nor that version: its own run, which passes


def test_one_worker_for_a_few_hundred_files_then_one_per_core():
    assert kubeconform.workers(72) == 1 and kubeconform.workers(kubeconform.ONE_WORKER_BELOW - 1) == 1
    assert kubeconform.workers(kubeconform.ONE_WORKER_BELOW) >= 2
