"""``./dox bench``: the project's speed, measured against the bare tools on the same machine.

Every measure runs in a scratch copy of the repository (the clone is never touched), ``repeat``
times, and reports the median. "Cold" clears the pipeline's own caches (render cache, credential-
scan cache, diff cache); tool builds and schemas stay. Results: JSON in ``.dox/bench/results.json``,
a table on the terminal, and an SVG plot of time against the number of environments.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

from . import environments, render, schemas, toolchain, yamlio
from .paths import REPO_ROOT, cache_dir, copy_working_tree
from .validate import kubeconform

Progress = Callable[[str], None]
TARGETS = {
    "cold_ratio": 1.0, "validate_uncached_s": 2.0, "warm_noop_s": 1.0, "diff_committed_s": 1.0,
    "diff_rerender_cold_s": 10.0, "diff_rerender_warm_s": 3.0, "policy_10000_s": 2.0,
    "per_env_growth": 0.25, "peak_memory_mb": 500.0,
    "server_cold_s": 5.0, "server_cold_ratio": 1.0, "server_warm_ms": 50.0,
}


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Scratch:
    """A repository copy with its own per-user cache for the pipeline's caches (tools shared)."""

    def __init__(self, base: Path, name: str) -> None:
        self.root = copy_working_tree(base / name)
        self.cache = base / f"{name}-cache"
        # Share the built tools and schemas, not the pipeline's caches.
        self.cache.mkdir()
        for shared in ("tools", "schemas", "locks"):
            if (cache_dir() / shared).exists():
                (self.cache / shared).symlink_to(cache_dir() / shared)

    def env(self) -> dict[str, str]:
        return {**os.environ, "PYTHONPATH": str(self.root), "DOX_CACHE_DIR": str(self.cache)}

    def clear(self) -> None:
        shutil.rmtree(self.root / render.STATE_DIR, ignore_errors=True)
        shutil.rmtree(self.cache / "secret-scan", ignore_errors=True)
        for answers in (self.cache / "apiserver").glob("??"):  # the API-server stage's answers (not parsed CRDs)
            shutil.rmtree(answers, ignore_errors=True)

    def dox(self, *args: str) -> tuple[float, int]:
        """Run ./dox's Python entry with ARGS; (seconds, peak RSS in MB of the largest process)."""
        code = ("import resource, subprocess, sys, time; s=time.monotonic(); "
                "r=subprocess.run([sys.executable, '-m', 'doxops', *sys.argv[1:]], stdout=subprocess.DEVNULL); "
                "t=time.monotonic()-s; print(t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, r.returncode)")
        proc = subprocess.run([sys.executable, "-c", code, *args], cwd=self.root, env=self.env(),
                              capture_output=True, text=True)
        seconds, rss_kb, rc = proc.stdout.split()
        if int(rc) not in (0, 1):
            raise RuntimeError(f"./dox {' '.join(args)} failed in the benchmark (exit {rc}): {proc.stderr[-800:]}")
        return float(seconds), int(rss_kb) // 1024


def median(samples: list[float]) -> float:
    return round(statistics.median(samples), 3)


def bare_script(root: Path, envs: list[environments.Environment]) -> str:
    """The same kustomize and kubeconform commands, one environment after another, in plain shell."""
    specs = toolchain.load_specs()
    kz, helm, kc = (toolchain.resolve(n, specs=specs).path for n in ("kustomize", "helm", "kubeconform"))
    lines = ["set -e", "out=$(mktemp -d)"]
    for env in envs:
        for sub, directory in render.targets(env):
            command = " ".join(f"'{c}'" for c in render.kustomize_command(kz, helm, directory))
            lines.append(f"{command} > \"$out/{env.name}-{sub}.yaml\"")
        schema_set = schemas.schema_set(env.kubernetes_version)
        kc_cmd = kubeconform.command(kc, schema_set, env.kubernetes_version, [])
        flags = " ".join(f"'{c}'" for c in kc_cmd)
        lines.append(f"{flags} \"$out\"/{env.name}-*.yaml > /dev/null")
    lines.append('rm -rf "$out"')
    return "\n".join(lines)


def time_bare(root: Path, envs, repeat: int) -> float:
    script = bare_script(root, envs)
    samples = []
    for _ in range(repeat):
        started = time.monotonic()
        subprocess.run(["bash", "-c", script], cwd=root, check=True, env={**os.environ, "TZ": "UTC"})
        samples.append(time.monotonic() - started)
    return median(samples)


def server_stage_times(root: Path, envs, repeat: int) -> dict:
    """The API-server stage over every environment (cold: a new result cache, the server started) against
    the bare equivalent in the same run: etcd and kube-apiserver started, the namespaces and the CRDs the
    output uses created, ``kubectl apply --dry-run=server -R -f`` of each environment; then the stage
    answered entirely from its cache (no server)."""
    import yaml  # noqa: PLC0415
    from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415

    from .cluster import binaries  # noqa: PLC0415
    from .cluster.cluster import Cluster  # noqa: PLC0415
    from .validate import server  # noqa: PLC0415
    from .validate.manifests import load_directory  # noqa: PLC0415

    quiet = lambda message: None  # noqa: E731
    paths = binaries.ensure(["kubernetes", "etcd"]).paths
    loaded = {e.name: load_directory(root / "rendered" / e.name) for e in envs}
    used = {(m.group, m.kind) for ms in loaded.values() for m in ms}
    crds = [d for p in schemas.crd_manifests() for d in yaml.safe_load_all(Path(p).read_text())
            if d and (d["spec"]["group"], d["spec"]["names"]["kind"]) in used]
    namespaces = {m.namespace for ms in loaded.values() for m in ms if m.namespace}
    rendered_ns = [m.data for ms in loaded.values() for m in ms if m.kind == "Namespace"][:1]
    ns_docs = rendered_ns + [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}}
                             for n in sorted(namespaces - {d["metadata"]["name"] for d in rendered_ns})]
    cold, bare, warm = [], [], []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory(prefix="dox-bench-server-") as tmp:
            started = time.monotonic()
            cluster = Cluster(components=("etcd", "kube-apiserver"), binaries=paths, progress=quiet, name="bench")
            cluster.start()
            try:
                setup = Path(tmp) / "setup.yaml"
                setup.write_text(yaml.safe_dump_all(ns_docs + crds))
                cluster.kubectl("apply", "-f", str(setup))
                if crds:
                    for _ in range(600):  # right after creation a CRD may have no conditions yet
                        if cluster.kubectl("wait", "--for=condition=Established", "crd", "--all",
                                           "--timeout=60s", check=False).returncode == 0:
                            break
                        time.sleep(0.1)
                for env in envs:
                    cluster.kubectl("apply", "--dry-run=server", "-R", "-f", str(root / "rendered" / env.name),
                                    check=False)
                bare.append(time.monotonic() - started)
            finally:
                cluster.stop()
            results = server.ResultCache(Path(tmp) / "results")
            started = time.monotonic()
            stage = server.Stage(pool=server.Pool(binaries=paths, progress=quiet), cache=results, progress=quiet)
            try:
                with ThreadPoolExecutor(max_workers=len(envs)) as pool:
                    list(pool.map(lambda e: stage.check(loaded[e.name], e.kubernetes_version,
                                                        root / "rendered" / e.name, e.namespace, e.name), envs))
                cold.append(time.monotonic() - started)
            finally:
                stage.close()
            cached = server.Stage(pool=server.Pool(binaries={}), cache=results, progress=quiet)
            started = time.monotonic()
            for env in envs:
                cached.check(loaded[env.name], env.kubernetes_version, root / "rendered" / env.name, env.namespace,
                             env.name)
            warm.append(time.monotonic() - started)
    return {"server_cold_s": median(cold), "server_bare_s": median(bare),
            "server_cold_ratio": round(median(cold) / median(bare), 2), "server_warm_ms": round(median(warm) * 1000, 1)}


def add_environments(root: Path, count: int) -> list[str]:
    """``count`` generated environments copied from minikube (env-001 ...); the originals removed."""
    base = root / "environments"
    template = base / "minikube"
    names = []
    for i in range(1, count + 1):
        name = f"env-{i:03d}"
        shutil.copytree(template, base / name)
        settings = base / name / "argocd" / "settings.yaml"
        if settings.exists():
            settings.write_text(settings.read_text().replace("environment: minikube", f"environment: {name}"))
        names.append(name)
    for original in ("minikube", "prod"):
        shutil.rmtree(base / original)
    shutil.rmtree(root / "rendered", ignore_errors=True)
    return names


def generated_manifests(target: Path, count: int) -> int:
    """``count`` valid resources, in files of 100: copies of the rendered workloads, one namespace per copy.

    Each copy keeps its names and moves, with every reference and in-cluster address, into its own
    namespace (``dox-asdlc-0001``...), so the set is as consistent as the real output.
    """
    source = [d.data for p in sorted((REPO_ROOT / "rendered" / "prod" / "workloads").glob("*.yaml"))
              for d in yamlio.load_all(p)]
    target.mkdir(parents=True)
    written, batch, index = 0, [], 0
    while written < count:
        copy = written // len(source)
        text = json.dumps(source[written % len(source)])
        if copy:
            text = (text.replace('"namespace": "dox-asdlc"', f'"namespace": "dox-asdlc-{copy:04d}"')
                    .replace(".dox-asdlc.svc", f".dox-asdlc-{copy:04d}.svc"))
        doc = json.loads(text)
        if doc["kind"] == "Namespace":
            doc["metadata"]["name"] = f"dox-asdlc-{copy:04d}" if copy else doc["metadata"]["name"]
        batch.append(doc)
        written += 1
        if len(batch) == 100 or written == count:
            (target / f"batch-{index:04d}.yaml").write_text("---\n".join(yamlio.dump(d) for d in batch))
            batch, index = [], index + 1
    return written


def policy_time(count: int, repeat: int, work: Path, with_scanner: bool) -> float:
    from .validate import engine  # noqa: PLC0415
    from .validate.manifests import load_directory  # noqa: PLC0415
    from .validate.rules import REGISTRY  # noqa: PLC0415

    directory = work / f"policy-{count}"
    if not directory.exists():
        generated_manifests(directory, count)
    rules = [r for r in REGISTRY if with_scanner or r != "no-credentials"]
    samples = []
    for _ in range(repeat):
        started = time.monotonic()
        manifests = load_directory(directory)
        engine.run(manifests, env=None, namespace=None, config=engine.PolicyConfig(path=work / "none"),
                   only=rules)
        samples.append(time.monotonic() - started)
    return median(samples)


def svg_plot(points: list[tuple[int, float]], path: Path) -> None:
    """A small line plot (no plotting dependency): seconds against the number of environments."""
    width, height, pad = 480, 300, 50
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    max_x, max_y = max(xs), max(ys) * 1.1 or 1

    def sx(x):
        return pad + (width - 2 * pad) * x / max_x

    def sy(y):
        return height - pad - (height - 2 * pad) * y / max_y

    line = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in points)
    labels = "".join(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3"/><text x="{sx(x):.1f}" y="{sy(y) - 8:.1f}" '
                     f'font-size="10" text-anchor="middle">{y:.1f}s</text>' for x, y in points)
    ticks = "".join(f'<text x="{sx(x):.1f}" y="{height - pad + 15}" font-size="10" text-anchor="middle">{x}</text>'
                    for x in xs)
    path.write_text(
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif">'
        f'<rect width="100%" height="100%" fill="white"/>'
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" stroke="black"/>'
        f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" stroke="black"/>'
        f'<polyline points="{line}" fill="none" stroke="steelblue" stroke-width="2"/>{labels}{ticks}'
        f'<text x="{width / 2}" y="{height - 10}" font-size="12" text-anchor="middle">environments</text>'
        f'<text x="15" y="{height / 2}" font-size="12" transform="rotate(-90 15 {height / 2})" '
        f'text-anchor="middle">cold render+validate (s)</text></svg>\n')


def run(repeat: int = 3, scales: tuple[int, ...] = (1, 5, 20, 50), progress: Progress = _stderr) -> dict:
    toolchain.resolve_all()
    results: dict = {"cores": os.cpu_count(), "repeat": repeat, "python": sys.version.split()[0]}
    with tempfile.TemporaryDirectory(prefix="dox-bench-") as tmp:
        work = Path(tmp)
        main = Scratch(work, "repo")
        envs = environments.discover(main.root)

        progress("bench 1/5: cold render+validate against the bare tools...")
        results["bare_s"] = time_bare(main.root, envs, repeat)
        cold, warm, validate = [], [], []
        for _ in range(repeat):
            main.clear()
            cold.append(main.dox("render", "--force", "validate")[0])
            main.clear()
            validate.append(main.dox("validate")[0])
            warm.append(main.dox("render", "validate")[0])
        results["cold_s"], results["validate_uncached_s"] = median(cold), median(validate)
        results["cold_ratio"] = round(results["cold_s"] / results["bare_s"], 2)
        progress("bench 2/5: warm no-op render+validate...")
        results["warm_noop_s"] = median(warm)

        progress("bench 2b/5: the API-server stage against etcd + kube-apiserver + kubectl --dry-run=server...")
        results.update(server_stage_times(main.root, envs, repeat))

        progress("bench 3/5: diff of a one-value change...")
        git = ["git", "-c", "user.email=bench@example.com", "-c", "user.name=bench"]
        subprocess.run(["git", "init", "-q", "-b", "main"], cwd=main.root, check=True)
        subprocess.run([*git, "add", "-A"], cwd=main.root, check=True)
        subprocess.run([*git, "commit", "-qm", "base"], cwd=main.root, check=True)
        values = main.root / "environments" / "prod" / "values.yaml"
        values.write_text(values.read_text().replace("maxReplicas: 10", "maxReplicas: 9"))
        main.dox("render")
        subprocess.run([*git, "commit", "-qam", "one value"], cwd=main.root, check=True)
        committed, rerender_cold, rerender_warm = [], [], []
        for _ in range(repeat):
            committed.append(main.dox("diff", "--base", "HEAD~1", "--head", "HEAD")[0])
            shutil.rmtree(main.root / render.STATE_DIR / "diff-cache", ignore_errors=True)
            rerender_cold.append(main.dox("diff", "--base", "HEAD~1", "--rerender")[0])
            rerender_warm.append(main.dox("diff", "--base", "HEAD~1", "--rerender")[0])
        results["diff_committed_s"] = median(committed)
        results["diff_rerender_cold_s"] = median(rerender_cold)
        results["diff_rerender_warm_s"] = median(rerender_warm)

        progress("bench 4/5: policy engine on generated resources...")
        for count in (1000, 10000):
            results[f"policy_{count}_s"] = policy_time(count, repeat, work, with_scanner=False)
            results[f"policy_{count}_with_scanner_s"] = policy_time(count, 1, work, with_scanner=True)

        progress("bench 5/5: scaling with the number of environments...")
        scaling = []
        for count in scales:
            scratch = Scratch(work, f"scale-{count}")
            add_environments(scratch.root, count)
            seconds, rss = scratch.dox("render", "validate")
            scaling.append({"environments": count, "seconds": round(seconds, 2),
                            "per_env_s": round(seconds / count, 3), "peak_rss_mb": rss})
            progress(f"  {count} environments: {seconds:.1f} s, peak {rss} MB")
        results["scaling"] = scaling
        by_count = {s["environments"]: s for s in scaling}
        if 5 in by_count and 50 in by_count:
            results["per_env_growth"] = round(by_count[50]["per_env_s"] / by_count[5]["per_env_s"] - 1, 2)
        results["peak_memory_mb"] = max(s["peak_rss_mb"] for s in scaling)
    out = REPO_ROOT / render.STATE_DIR / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2))
    svg_plot([(s["environments"], s["seconds"]) for s in results["scaling"]], out / "scaling.svg")
    results["files"] = [str(out / "results.json"), str(out / "scaling.svg")]
    return results


def table(results: dict) -> str:
    rows = [
        ("cold render+validate / bare tools (ratio)", "cold_ratio", "<= 1.0"),
        ("  cold render+validate, all environments (s)", "cold_s", ""),
        ("  bare tools in sequence (s)", "bare_s", ""),
        ("validate alone, both environments, uncached (s)", "validate_uncached_s", "< 2"),
        ("warm no-op render+validate (s)", "warm_noop_s", "< 1"),
        ("API-server stage, every environment, cold (s)", "server_cold_s", "< 5"),
        ("  / bare etcd+kube-apiserver+kubectl --dry-run (ratio)", "server_cold_ratio", "<= 1.0"),
        ("  bare equivalent (s)", "server_bare_s", ""),
        ("API-server stage, all cached, added (ms)", "server_warm_ms", "< 50"),
        ("diff of committed trees, one-value change (s)", "diff_committed_s", "< 1"),
        ("diff --rerender, cold base cache (s)", "diff_rerender_cold_s", "< 10"),
        ("diff --rerender, warm base cache (s)", "diff_rerender_warm_s", "< 3"),
        ("policy engine, 1,000 resources (s)", "policy_1000_s", ""),
        ("policy engine, 10,000 resources (s)", "policy_10000_s", "< 2"),
        ("  same, with the credential scanner, cold (s)", "policy_10000_with_scanner_s", ""),
        ("time per environment, 50 vs 5 (growth)", "per_env_growth", "<= +25%"),
        ("peak memory, largest process (MB)", "peak_memory_mb", "< 500"),
    ]
    width = max(len(r[0]) for r in rows)
    lines = [f"{'measure':<{width}}  {'value':>8}  target  met", "-" * (width + 26)]
    for label, key, target in rows:
        value = results.get(key)
        met = ""
        if key in TARGETS and value is not None:
            met = "yes" if value <= TARGETS[key] else "NO"
        lines.append(f"{label:<{width}}  {value if value is not None else '-':>8}  {target:<6}  {met}")
    lines.append("")
    lines.append("environments  seconds  per env  peak MB")
    for s in results.get("scaling", []):
        lines.append(f"{s['environments']:>12}  {s['seconds']:>7}  {s['per_env_s']:>7}  {s['peak_rss_mb']:>7}")
    lines.append(f"\n{results.get('cores')} cores, {results.get('repeat')} repetitions (medians); "
                 f"JSON and plot: {', '.join(results.get('files', []))}")
    return "\n".join(lines)
