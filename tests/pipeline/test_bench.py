"""``./dox bench`` measures what its rows say: the mechanics, on a tiny scale (no timing is asserted).

Hermetic: a cache directory for the module (tools, schemas, virtualenvs linked in from the user's cache), the
results in a temporary directory.
"""

from __future__ import annotations

import json
import sys

import pytest

from doxops import bench, environments, yamlio
from doxops.bench import generate, procs
from doxops.paths import REPO_ROOT, cache_dir
from doxops.validate.manifests import load_directory

from ..conftest import copy_repo, run_dox

ROWS = {"cold_static", "cold_server", "warm_noop", "policy_added", "policy_whole", "scan_cold", "scaling", "memory"}
RATIO_ROWS = {"cold_static", "cold_server", "warm_noop", "policy_added", "scaling"}


@pytest.fixture(scope="module")
def own_cache(tmp_path_factory):
    real = cache_dir()
    mine = tmp_path_factory.mktemp("dox-cache")
    for name in procs.SHARED:
        if (real / name).exists():
            (mine / name).symlink_to(real / name, target_is_directory=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DOX_CACHE_DIR", str(mine))
        yield mine


@pytest.fixture(scope="module")
def results(own_cache, tmp_path_factory):
    out = tmp_path_factory.mktemp("bench-out")
    bench.run(repeat=1, scales=(1, 2), resources=120, out=out, progress=lambda message: None)
    return json.loads((out / "results.json").read_text())


def test_results_json_has_every_row_with_its_target_ratio_and_met(results):
    rows = {r["id"]: r for r in results["rows"]}
    assert set(rows) == ROWS
    for row in rows.values():
        assert row["label"] and row["figure"] and row["target"], row
        assert row["met"] in ("yes", "no"), row
        assert (row["ratio"] is not None) == (row["id"] in RATIO_ROWS), row
    for key in ("cold_static", "cold_server", "warm_noop"):
        samples = rows[key]["samples"]
        assert len(samples["pipeline_s"]) == len(samples["bare_s"]) == 1
    assert results["cores"] and results["load_start"] and results["load_end"] and results["command"]


def test_the_warm_row_is_a_proved_cache_hit(results):
    warm = next(r for r in results["rows"] if r["id"] == "warm_noop")
    assert warm["met"] != "invalid", warm["note"]
    assert "cache hit proved" in warm["note"]


def test_generated_environments_share_no_rendered_file(results):
    for scale in results["scaling"]:
        assert scale["rendered_files"] > 30 * scale["environments"]
        assert scale["distinct_files"] == scale["rendered_files"], scale


def test_the_scan_starts_from_an_empty_cache_outside_the_users(results, own_cache):
    assert not (own_cache / "secret-scan").exists()  # every scratch run had its own cache directory


def test_warm_proof_names_what_was_not_a_cache_hit():
    hit = ("render a: unchanged (cached) -> rendered/a (0.0 s)\n"
           "validate a: 0 errors, 0 warnings in 40 resources (unchanged since the last validation)\n")
    run = procs.Run(0.1, 0, hit)
    assert bench.warm_proof(run, ["a"], {"f": (1, 2)}, {"f": (1, 2)}) == ""
    assert "files written" in bench.warm_proof(run, ["a"], {"f": (1, 2)}, {"f": (1, 3)})
    rendered = procs.Run(0.1, 0, hit.replace("unchanged (cached)", "40 files"))
    assert "render did not answer" in bench.warm_proof(rendered, ["a"], {}, {})
    validated = procs.Run(0.1, 0, hit.replace("unchanged since the last validation", "0.52 s"))
    assert "validate did not answer" in bench.warm_proof(validated, ["a"], {}, {})
    with pytest.raises(bench.BenchError):
        bench.require_cold(run, ["a"], "cold")
    bench.require_cold(procs.Run(0.1, 0, rendered.stderr.replace("unchanged since the last validation", "1.0 s")),
                       ["a"], "cold")


def test_add_environments_labels_each_with_its_own_name(tmp_path):
    repo = copy_repo(tmp_path / "repo")
    names = generate.add_environments(repo, 3)
    assert [e.name for e in environments.discover(repo)] == names == ["env-001", "env-002", "env-003"]
    for name in names:
        for kustomization in (repo / "environments" / name).rglob("kustomization.yaml"):
            assert f"{generate.LABEL}: {name}\n" in kustomization.read_text()
        assert f"environment: {name}" in (repo / "environments" / name / "argocd" / "settings.yaml").read_text()


def test_generated_resources_are_valid_copies_one_per_file_each_in_its_namespace(tmp_path):
    source = REPO_ROOT / "rendered" / "prod" / "workloads"
    per_copy = sum(len(yamlio.load_all(p)) for p in source.glob("*.yaml"))
    count = per_copy + 5
    assert generate.generated_resources(source, tmp_path / "gen", count) == count
    manifests = load_directory(tmp_path / "gen")
    assert len(manifests) == count == len(list((tmp_path / "gen").rglob("*.yaml")))
    second = [m for m in manifests if "copy-0001" in m.path.parts]
    assert second and all(m.namespace in (None, "dox-asdlc-0001") for m in second)
    assert {m.name for m in second if m.kind == "Namespace"} <= {"dox-asdlc-0001"}


def test_memory_counts_the_pipelines_python_processes_only(tmp_path):
    touch = "import time; x = bytearray(80 << 20); x[::4096] = b'1' * len(x[::4096]); time.sleep(0.5)"
    python = procs.timed([sys.executable, "-c", touch], cwd=tmp_path, env={}, sample=True)
    assert python.peak_single_mb >= 80 and python.peak_total_mb >= 80
    other = procs.timed(["bash", "-c", "sleep 0.5"], cwd=tmp_path, env={}, sample=True)
    assert other.peak_total_mb == other.peak_single_mb == 0


def test_bench_refuses_fewer_than_two_scales():
    proc = run_dox(REPO_ROOT, "bench", "--scales", "5")
    assert proc.returncode == 2 and "two or more" in proc.stderr


def test_the_readme_table_is_written_from_the_results(results):
    from doxops.bench.report import markdown

    table = markdown(results)
    for row in results["rows"]:
        assert f"| {row['label']} | {row['target']} | {row['figure']} | {row['met']} |" in table
    # the figures depend on which gitleaks build scanned: the results and the table say it
    assert results["scanner"] == bench._scanner() and f"Credential scanner: {results['scanner']}." in table


def test_a_scan_sample_starts_with_no_answers_but_with_the_built_scanner(own_cache, tmp_path):
    """The credential-scan row runs gitleaks: its empty cache directory links the built tools, as the scratch
    copy's does, so the measure never includes building the scanner."""
    scratch = procs.Scratch(tmp_path, "copy")
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    (manifests / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: demo}\n"
                                       "data:\n  GITHUB_TOKEN: ghp_q8Rk2mVx7LpT4nWz9cYb3HsJ6dFg1AeU5oNi\n")
    sample = bench._sample("scan", scratch, manifests, cache=tmp_path / "scan-cache")
    assert sample["findings"] == 1
    assert (tmp_path / "scan-cache" / "tools").is_symlink()
    assert (tmp_path / "scan-cache" / "secret-scan" / "answers.sqlite").is_file()
