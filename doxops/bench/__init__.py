"""``./dox bench``: the project's speed against the bare tools, measured in one run on one machine.

Each row's figure measures exactly what its label says, in scratch copies of the repository (the clone is
never touched) with their own cache directories: built tools, schemas and virtualenvs are shared, none of
the pipeline's caches are. Ratios divide medians of the pipeline's runs by medians of the bare tools' runs
taken alternately with them in the same loop, so both see the same load. Cold runs start from cleared
caches and prove it (every environment rendered, none answered from a cache); the warm no-op row proves it
is a render-cache hit (every environment reported cached, nothing under rendered/ or the caches written).
Scaling uses generated environments that each label everything they render with their own name.

One module per concern: :mod:`.procs` (scratch copies, timed ``./dox`` runs, the memory sampler),
:mod:`.bare` (the denominators), :mod:`.generate` (generated environments and resources),
:mod:`.sample` (one policy-engine or credential-scan sample in a fresh process), :mod:`.report` (rows,
table, JSON, plot).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

from ..progress import Progress, stderr as _stderr
from .. import environments, toolchain
from ..paths import REPO_ROOT
from . import bare, generate
from .procs import SAMPLE_EVERY, SHARED, BenchError, Run, Scratch, snapshot
from .report import Row, as_dicts, median, ratio_row, seconds_row, table, write

__all__ = ["BenchError", "run", "table", "DEFAULT_SCALES", "DEFAULT_RESOURCES"]

DEFAULT_SCALES = (5, 50)
DEFAULT_RESOURCES = 10_000


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


_RENDERED = re.compile(r"^render (\S+): (unchanged \(cached\)|\d+ files)", re.MULTILINE)
_VALIDATED = re.compile(r"^validate (\S+): .*\((unchanged since the last validation|[\d.]+ s)\)$", re.MULTILINE)


def states(stderr: str) -> tuple[dict[str, bool], dict[str, bool]]:
    """From a ``./dox render validate`` run's messages: {env: answered from the render cache},
    {env: answered from the validation cache}."""
    rendered = {m.group(1): m.group(2).startswith("unchanged") for m in _RENDERED.finditer(stderr)}
    validated = {m.group(1): m.group(2).startswith("unchanged") for m in _VALIDATED.finditer(stderr)}
    return rendered, validated


def require_cold(run: Run, names: list[str], what: str) -> None:
    rendered, validated = states(run.stderr)
    if sorted(rendered) != sorted(names) or any(rendered.values()) or sorted(validated) != sorted(names) \
            or any(validated.values()):
        raise BenchError(f"{what}: not a cold run (render: {rendered}, validate: {validated}):\n{run.stderr[-1500:]}")


def warm_proof(run: Run, names: list[str], before: dict, after: dict) -> str:
    """'' when the run was a cache hit (every environment cached by render and validate, no file written
    under rendered/ or the render and validation caches), else what was not."""
    rendered, validated = states(run.stderr)
    problems = []
    if sorted(rendered) != sorted(names) or not all(rendered.values()):
        problems.append(f"render did not answer every environment from its cache: {rendered}")
    if sorted(validated) != sorted(names) or not all(validated.values()):
        problems.append(f"validate did not answer every environment from its cache: {validated}")
    if before != after:
        changed = sorted(set(before.items()) ^ set(after.items()))
        problems.append(f"{len(changed)} files written, e.g. {changed[0][0]}")
    return "; ".join(problems)


def distinct_outputs(root: Path) -> tuple[int, int]:
    """(files under rendered/, distinct contents among them): equal when no two environments share a file."""
    digests = [hashlib.sha256(p.read_bytes()).hexdigest() for p in (root / "rendered").rglob("*.yaml")]
    return len(digests), len(set(digests))


def _compile(root: Path) -> None:
    """Byte-compile the copy's code beside it once, for the samples run with ``python -m`` (``./dox`` keeps its
    own bytecode in the cache directory, filled by the unmeasured warm-up run): not measured."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(root / "doxops"), str(root / "tasks.py")],
                   check=True, capture_output=True)


def _sample(what: str, scratch: Scratch, directory: Path, cache: Path | None = None) -> dict:
    env = {**scratch.env(), "PYTHONPATH": str(scratch.root)}
    if cache is not None:
        cache.mkdir(parents=True)
        for shared in SHARED:  # the built tools (the scanner is gitleaks) as in the scratch copy's cache
            if (scratch.cache / shared).exists():  # a link to the user's cache, or the copy's own directory
                (cache / shared).symlink_to((scratch.cache / shared).resolve(), target_is_directory=True)
        env["DOX_CACHE_DIR"] = str(cache)  # no answers yet: the credential scanner starts cold
    proc = subprocess.run([sys.executable, "-m", "doxops.bench.sample", what, str(directory)], cwd=scratch.root,
                          env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BenchError(f"the {what} sample failed (exit {proc.returncode}): {proc.stderr[-1500:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _scanner() -> str:
    """Which gitleaks build the credential scans of this run use (the optional system-RE2 one where it was built:
    the figures depend on it)."""
    from ..validate.rules import no_credentials  # noqa: PLC0415

    small, large = no_credentials._gitleaks(1), no_credentials._gitleaks(no_credentials.RE2_FROM)
    return small.name if small.name == large.name else f"{small.name} (below {no_credentials.RE2_FROM} files), " \
        f"{large.name} (from {no_credentials.RE2_FROM})"


def run(repeat: int = 3, scales: tuple[int, ...] = DEFAULT_SCALES, resources: int = DEFAULT_RESOURCES,
        out: Path | None = None, progress: Progress = _stderr, command: str = "./dox bench") -> dict:
    from ..cluster import binaries  # noqa: PLC0415

    if len(scales) < 2:
        raise ValueError("scaling needs two numbers of environments")
    toolchain.resolve_all()
    server_binaries = binaries.ensure(["kubernetes", "etcd"]).paths
    results: dict = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                     "cores": os.cpu_count(), "load_start": _load(), "repeat": repeat, "command": command,
                     "python": sys.version.split()[0], "resources": resources, "scales": list(scales),
                     "scanner": _scanner()}
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="dox-bench-") as tmp:
        work = Path(tmp)
        main = Scratch(work, "repo")
        _compile(main.root)
        envs = environments.discover(main.root)
        names = [e.name for e in envs]
        script = bare.static_script(envs)
        setup = bare.server_setup(main.root, envs)
        progress(f"bench: warming up (one unmeasured run of each side) in {main.root}...")
        bare.run_static(main.root, script, main.env())
        main.dox("render", "validate")
        t: dict[str, list[float]] = defaultdict(list)
        problems = []
        for i in range(repeat):
            progress(f"bench 1/3: render+validate, pipeline and bare tools alternating, run {i + 1} of {repeat}...")
            t["bare_static"].append(bare.run_static(main.root, script, main.env()))
            main.clear()
            cold = main.dox("render", "validate", "--no-server")
            require_cold(cold, names, "cold --no-server")
            t["cold_static"].append(cold.seconds)
            # the same work by hand: the static tools again, then the server part, one after the other
            t["bare_server"].append(bare.run_static(main.root, script, main.env())
                                    + bare.run_server(main.root, envs, setup, server_binaries))
            main.clear()
            cold = main.dox("render", "validate")
            require_cold(cold, names, "cold")
            t["cold_server"].append(cold.seconds)
            state = (main.root / "rendered", main.root / ".dox" / "render-cache", main.root / ".dox" / "validate-cache")
            before = snapshot(*state)
            warm = main.dox("render", "validate")
            problem = warm_proof(warm, names, before, snapshot(*state))
            if problem:
                problems.append(problem)
            t["warm"].append(warm.seconds)
        every = f"{len(envs)} environments"
        rows.append(ratio_row(
            "cold_static", "cold render+validate --no-server / bare tools", t["cold_static"], t["bare_static"], 1.0,
            "<= 1.0 (stretch 0.7)", detail=f"{every}, caches cleared; bare: kustomize build per target, then "
            "kubeconform, in sequence"))
        rows.append(ratio_row(
            "cold_server", "cold render+validate, API-server stage / bare tools + server", t["cold_server"],
            t["bare_server"], 1.0, "<= 1.0", detail=f"{every}, caches cleared (API-server answers too); bare: "
            "kustomize and kubeconform as above, then etcd and kube-apiserver started as the stage starts them, "
            "namespaces and the used CRDs created, kubectl apply --dry-run=server (client-side, as the "
            "Applications sync) per environment"))
        rows.append(ratio_row(
            "warm_noop", "warm no-op render+validate (cache hit) / bare tools", t["warm"], t["bare_static"], 0.3,
            "<= 0.3", detail=f"{every}, default stages, right after a cold run; bare: as in the first row",
            **({"met": "invalid", "note": "not a cache hit: " + problems[0]} if problems else
               {"note": "cache hit proved each run: render and validate answered every environment from their "
                        "caches, no file under rendered/ or the caches written"})))

        progress(f"bench 2/3: policy engine and credential scan over {resources} generated resources...")
        source = main.root / "rendered" / ("prod" if "prod" in names else names[0]) / "workloads"
        generated = work / "resources"
        generate.generated_resources(source, generated, resources)
        policy, scan = [], []
        for i in range(repeat):
            policy.append(_sample("policy", main, generated))
            scan.append(_sample("scan", main, generated, cache=work / f"scan-cache-{i}"))
        parse = [s["parse_s"] for s in policy]
        rules = [s["rules_s"] for s in policy]
        whole = [s["parse_s"] + s["rules_s"] for s in policy]
        added = median(rules) / median(parse)
        n_rules = policy[0]["rules"]
        rows.append(Row(
            "policy_added", f"policy rules' added time / parsing, {resources:,} resources",
            f"{median(rules):.2f} s / {median(parse):.2f} s = {added:.2f}", round(added, 3), "<= 0.25", 0.25,
            ratio=round(added, 3), samples={"rules_s": [round(x, 3) for x in rules],
                                           "parse_s": [round(x, 3) for x in parse]},
            detail=f"{n_rules} rules (all but no-credentials, which has its own row) over copies of the rendered "
                   "workloads, one file per resource; parsed by validate's parser in the same fresh process"))
        rows.append(seconds_row("policy_whole", f"policy engine incl. parsing, {resources:,} resources",
                                whole, 2.0))
        rows.append(seconds_row(
            "scan_cold", f"credential scan, {resources:,} resources, empty cache",
            [s["rules_s"] for s in scan], 3.0,
            note=f"parsing excluded ({median([s['parse_s'] for s in scan]):.2f} s), every run in a new process"))

        progress(f"bench 3/3: {' and '.join(map(str, scales))} generated environments, --no-server...")
        scratches = {}
        for count in scales:
            scratches[count] = Scratch(work, f"scale-{count}")
            generate.add_environments(scratches[count].root, count)
            _compile(scratches[count].root)
        runs: dict[int, list[Run]] = defaultdict(list)
        for i in range(repeat):
            for count in scales:  # alternating, so every scale sees the same load
                scratch = scratches[count]
                scratch.clear()
                one = scratch.dox("render", "validate", "--no-server", sample=True)
                require_cold(one, [f"env-{n:03d}" for n in range(1, count + 1)], f"{count} environments")
                runs[count].append(one)
                progress(f"  {count} environments: {one.seconds:.1f} s, pipeline's Python processes peak "
                         f"{one.peak_total_mb:.0f} MB")
        scaling = []
        for count in scales:
            seconds = median([r.seconds for r in runs[count]])
            files, distinct = distinct_outputs(scratches[count].root)
            scaling.append({"environments": count, "seconds": round(seconds, 3), "per_env_s": round(seconds / count, 4),
                            "samples_s": [round(r.seconds, 3) for r in runs[count]],
                            "peak_total_mb": round(max(r.peak_total_mb for r in runs[count]), 1),
                            "peak_single_mb": round(max(r.peak_single_mb for r in runs[count]), 1),
                            "rendered_files": files, "distinct_files": distinct})
        small, large = scaling[0], scaling[-1]
        growth = large["per_env_s"] / small["per_env_s"]
        rows.append(Row(
            "scaling", f"time per environment, {large['environments']} vs {small['environments']} environments",
            f"{large['per_env_s']:.3f} s vs {small['per_env_s']:.3f} s = {growth:.2f}", round(growth, 3),
            "<= 1.15", 1.15, ratio=round(growth, 3),
            detail="cold render+validate --no-server of generated environments, medians, scales alternating",
            note="every environment labels all it renders with its own name: "
                 f"{large['distinct_files']} distinct of {large['rendered_files']} rendered files"))
        peak = max(s["peak_total_mb"] for s in scaling)
        single = max(s["peak_single_mb"] for s in scaling)
        rows.append(Row(
            "memory", f"peak memory, pipeline's own processes, {large['environments']} environments",
            f"{peak:.0f} MB (largest one {single:.0f} MB)", peak, "< 500 MB", 500.0,
            note=f"RSS sampled every {int(SAMPLE_EVERY * 1000)} ms; kustomize, helm and kubeconform not counted"))
    results["rows"] = as_dicts(rows)
    results["scaling"] = scaling
    results["load_end"] = _load()
    return write(results, out or REPO_ROOT / ".dox" / "bench")

