"""Validate rendered environments (or any directory): schema stage, then policy stage."""

from __future__ import annotations

import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..environments import Environment
from ..errors import Findings, UsageError
from ..paths import REPO_ROOT, relative
from . import diagnostics as diag
from . import engine, kubeconform
from .manifests import Manifest, load_directory

FORMATS = ("text", "json", "junit", "sarif")
DEFAULT_KUBERNETES = "1.36"

Progress = Callable[[str], None]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class Report:
    """Diagnostics of one validation target (an environment or a directory)."""

    name: str
    resources: int
    diagnostics: list[diag.Diagnostic] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def errors(self) -> int:
        return sum(1 for d in self.diagnostics if d.level == "error")


def validate_manifests(name: str, manifests: list[Manifest], kubernetes_version: str, *, env: str | None,
                       namespace: str | None, config: engine.PolicyConfig | None = None) -> Report:
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=1) as pool:  # kubeconform runs while Python checks policies
        schema_future = pool.submit(kubeconform.run, manifests, kubernetes_version)
        policy = engine.run(manifests, env=env, namespace=namespace, config=config)
        schema = schema_future.result()
    return Report(name, len(manifests), sorted(schema + policy), time.monotonic() - started)


def validate_env(env: Environment, root: Path = REPO_ROOT, config: engine.PolicyConfig | None = None) -> Report:
    directory = root / "rendered" / env.name
    if not directory.is_dir():
        raise UsageError(f"{relative(directory)}: not rendered yet; run `./dox render --env {env.name}` first")
    manifests = load_directory(directory)
    workloads = [m for m in manifests if "argocd" not in m.path.relative_to(directory).parts[:1]]
    others = [m for m in manifests if m not in workloads]
    report = validate_manifests(env.name, workloads, env.kubernetes_version, env=env.name,
                                namespace=env.namespace, config=config)
    if others:
        extra = validate_manifests(env.name, others, env.kubernetes_version, env=env.name, namespace=None,
                                   config=config)
        report.diagnostics = sorted(report.diagnostics + extra.diagnostics)
        report.resources += extra.resources
    report.diagnostics = sorted(report.diagnostics + source_credentials(env, root, config))
    return report


def source_credentials(env: Environment, root: Path = REPO_ROOT,
                       config: engine.PolicyConfig | None = None) -> list[diag.Diagnostic]:
    """The no-credentials rule over the environment's sources: its directory, shared values, chart values."""
    from .rules import REGISTRY  # noqa: PLC0415

    module = REGISTRY.get("no-credentials")
    if module is None:
        return []
    config = config or engine.load_config(root / "policy.yaml", known_rules=REGISTRY)
    level, conf = config.rule_settings(module.ID, module.LEVEL, getattr(module, "CONF", {}), env.name)
    if level == "off":
        return []
    files = {p.resolve() for p in env.path.rglob("*.y*ml")}
    for tree in ("apps", "helm", "argocd"):
        files.update(p.resolve() for p in (root / tree).rglob("*.y*ml") if p.is_file())
    found = module.scan(sorted(files), conf["plugins"], conf.get("ignoreKeys", ()))
    return [diag.Diagnostic(relative(path, root), line, 1, level,
                            f"{kind} in a source file; never commit credentials: reference a Secret by name, "
                            "remove the value from git history and rotate it", module.ID)
            for path, line, kind in found]


def validate_path(directory: Path, kubernetes_version: str = DEFAULT_KUBERNETES, namespace: str | None = None,
                  config: engine.PolicyConfig | None = None) -> Report:
    manifests = load_directory(directory)
    if not manifests:
        raise UsageError(f"{relative(directory)}: no YAML manifests found")
    return validate_manifests(relative(directory), manifests, kubernetes_version, env=None, namespace=namespace,
                              config=config)


def emit(reports: list[Report], fmt: str, out=sys.stdout, progress: Progress = _stderr) -> None:
    """Print the reports in ``fmt``; raise Findings (exit 1) when there is any error."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    everything = [d for r in reports for d in r.diagnostics]
    resources = sum(r.resources for r in reports)
    if fmt == "text":
        for d in everything:
            print(d.text(), file=out)
        if len(everything) > 5:
            print("\n" + diag.table(everything), file=out)
        for r in reports:
            progress(f"validate {r.name}: {diag.summary(r.diagnostics, r.resources)} ({r.seconds:.2f} s)")
    elif fmt == "json":
        print(diag.to_json(everything, resources), file=out)
    elif fmt == "junit":
        print(diag.to_junit(everything, resources), file=out, end="")
    else:
        from .rules import REGISTRY  # noqa: PLC0415

        docs = {rid: (m.__doc__ or rid).strip().splitlines()[0] for rid, m in REGISTRY.items()}
        docs["schema"] = "kubeconform: strict schema validation"
        print(diag.to_sarif(everything, docs), file=out)
    errors = sum(r.errors for r in reports)
    if errors:
        raise Findings(f"validation found {errors} error{'s' if errors != 1 else ''} in {resources} resources")
