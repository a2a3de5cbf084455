"""Validate rendered environments (or any directory): schema, policy and API-server stages, side by side."""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from ..environments import Environment
from ..errors import UsageError
from ..paths import REPO_ROOT, relative
from . import diagnostics as diag
from . import engine, kubeconform
from .cache import cache_key, cached_report, store
from .manifests import Manifest, load_directory
from .report import FORMATS, Progress, Report, _stderr, emit

if TYPE_CHECKING:  # the API-server stage is imported only when a run uses it
    from . import server as server_mod

__all__ = ["DEFAULT_KUBERNETES", "FORMATS", "Report", "cache_key", "cached_report", "emit", "server_stage",
           "source_credentials", "validate_env", "validate_env_cached", "validate_envs", "validate_manifests",
           "validate_path"]
DEFAULT_KUBERNETES = "1.36"


def validate_manifests(name: str, manifests: list[Manifest], kubernetes_version: str, *, env: str | None,
                       namespace: str | None, config: engine.PolicyConfig | None = None) -> Report:
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=1) as pool:  # kubeconform runs while Python checks policies
        schema_future = pool.submit(kubeconform.run, manifests, kubernetes_version)
        policy = engine.run(manifests, env=env, namespace=namespace, config=config)
        schema = schema_future.result()
    return Report(name, len(manifests), sorted(schema + policy), time.monotonic() - started)


def validate_env_cached(env: Environment, root: Path = REPO_ROOT, progress: Progress = _stderr,
                        stage: server_mod.Stage | None = None, key: str | None = None,
                        looked_up: bool = False, schema: kubeconform.Batch | None = None) -> Report:
    """``validate_env``, answered from .dox/validate-cache when nothing it depends on changed (``key``: the
    cache key the caller took already; ``looked_up``: it found no cached report, so only validate and store)."""
    key = key or cache_key(env, root)  # taken before validating: a file changed meanwhile is not stored as seen
    found = None if looked_up else cached_report(env, root, stage is not None, progress, key)
    if found is not None:
        return found
    report = validate_env(env, root, stage=stage, schema=schema)
    store(env, root, stage is not None, key, report)
    return report


def server_stage(server: bool, progress: Progress = _stderr) -> server_mod.Stage | None:
    """The run's API-server stage (servers started on first need), or None after saying what is lost."""
    if server:
        from .server import Stage  # noqa: PLC0415

        return Stage(progress=progress)
    progress("validate: --no-server: the API-server stage is skipped, so validation is weaker: no server-side "
             "validation, admission (Pod Security), size limits, server warnings or stored-as-written checks")
    return None


def validate_envs(envs: list[Environment], root: Path = REPO_ROOT, use_cache: bool = True,
                  server: bool = True) -> list[Report]:
    """Every environment in parallel (kubeconform, the policies and the API-server dry-runs of each overlap)."""
    def one(env: Environment, root: Path, stage: server_mod.Stage | None) -> Report:
        if use_cache:  # not answered from the cache below: validate and store under the key taken there
            return validate_env_cached(env, root, stage=stage, key=keys[env.name], looked_up=True, schema=schema)
        return validate_env(env, root, stage=stage, schema=schema)

    # A warm no-op is answered from the cache before anything costly starts (the credential pre-scan, the
    # stage's message): only the environments that must be validated again go further.
    keys = {e.name: cache_key(e, root) for e in envs} if use_cache else {}
    done = {e.name: r for e in envs
            if use_cache and (r := cached_report(e, root, server, key=keys[e.name])) is not None}
    todo = [e for e in envs if e.name not in done]
    if not todo:
        return [done[e.name] for e in envs]
    schema = _schema_in_background(todo, root)  # first: kubeconform is the longest of the stages here
    try:
        scanning = _scan_in_background(todo, root)
        stage = server_stage(server)
    except BaseException:
        schema.close()
        raise
    pool = ThreadPoolExecutor(max_workers=max(1, min(len(todo), os.cpu_count() or 2)))
    try:
        fresh = dict(zip((e.name for e in todo), pool.map(lambda e: one(e, root, stage), todo)))
        return [done.get(e.name) or fresh[e.name] for e in envs]
    except BaseException:
        if stage is not None:
            stage.close()  # an interrupted run: stop the servers first, so no environment waits on them
        raise
    finally:
        pool.shutdown(wait=True)
        if stage is not None:
            stage.close()
        schema.close()  # never leave kubeconform running at exit
        if scanning is not None:
            scanning.join()  # never leave gitleaks running (or its scratch directory half-removed) at exit


def _schema_in_background(envs: list[Environment], root: Path) -> kubeconform.Batch:
    """Start one kubeconform run per Kubernetes version over the rendered files of ``envs`` (see
    :class:`kubeconform.Batch`); an environment not rendered yet is left to its own validation's error."""
    from .manifests import yaml_files  # noqa: PLC0415

    files: dict[str, list[Path]] = {}
    for env in envs:
        directory = root / "rendered" / env.name
        if directory.is_dir():
            files.setdefault(env.kubernetes_version, []).extend(yaml_files(directory))
    return kubeconform.Batch(files)


def _source_files(env: Environment, root: Path) -> set[Path]:
    """Every file the environment's render reads, and every file of its directory."""
    from ..render import input_files  # noqa: PLC0415

    sources = env.path.resolve().parent.parent  # the repository the environment belongs to
    # Normalised, not resolved (no system call per file): the containment check already refused every
    # symlink that leaves the repository; one inside it is at worst scanned under both names.
    files = {Path(os.path.normpath(p)) for p in input_files(env, sources)}
    files.update(Path(os.path.normpath(p)) for p in env.path.resolve().rglob("*") if p.is_file())
    return files


def _scan_in_background(envs: list[Environment], root: Path) -> threading.Thread | None:
    """Start one credential scan of everything the environments' validations will scan (their sources and their
    rendered files) beside them: each environment's no-credentials checks then answer from it, instead of
    starting gitleaks once per source set and per group of objects (each run costs about 0.4 s of start-up)."""
    from .manifests import yaml_files  # noqa: PLC0415
    from .rules import REGISTRY  # noqa: PLC0415

    module = REGISTRY.get("no-credentials")
    if module is None:
        return None
    config = engine.load_config(root / "policy.yaml", known_rules=REGISTRY)
    groups: dict[tuple, set[Path]] = {}
    for env in envs:
        level, conf = config.rule_settings(module.ID, module.LEVEL, getattr(module, "CONF", {}), env.name)
        if level == "off":
            continue
        settings = (tuple(conf["disableRules"]), tuple(conf.get("ignoreKeys", ())))
        groups.setdefault(settings, set()).update(_source_files(env, root))
        rendered = root / "rendered" / env.name
        if rendered.is_dir():
            groups[settings].update(yaml_files(rendered))
    if len(groups) == 1:  # the usual case; several settings are left to each environment's own scan
        (disable, ignore), files = next(iter(groups.items()))
        return module.scan_in_background(sorted(files), list(disable), list(ignore))
    return None


def validate_env(env: Environment, root: Path = REPO_ROOT, config: engine.PolicyConfig | None = None,
                 stage: server_mod.Stage | None = None, schema: kubeconform.Batch | None = None) -> Report:
    """Every stage over ``rendered/<env>``; ``schema``: a kubeconform run shared with other environments (else
    its own). Raises UsageError when the environment is not rendered or a file is not Kubernetes objects."""
    directory = root / "rendered" / env.name
    if not directory.is_dir():
        raise UsageError(f"{relative(directory)}: not rendered yet; run `./dox render --env {env.name}` first")
    started = time.monotonic()
    manifests = load_directory(directory)
    with ThreadPoolExecutor(max_workers=1) as pool:  # the dry-runs run beside kubeconform and the policies
        server_future = pool.submit(stage.check, manifests, env.kubernetes_version, directory, env.namespace,
                                    env.name, config=config, env=env.name) if stage is not None else None
        report = _validate_env_manifests(env, root, config, directory, manifests, schema)
        if server_future is not None:
            report.diagnostics = sorted(report.diagnostics + server_future.result())
    report.seconds = time.monotonic() - started
    return report


def _validate_env_manifests(env: Environment, root: Path, config: engine.PolicyConfig | None, directory: Path,
                            manifests: list[Manifest], schema: kubeconform.Batch | None = None) -> Report:
    """kubeconform over every file (``schema``: a run shared with other environments, else its own), beside the
    policies: the workloads (in the environment's namespace), the Argo CD objects (namespace not checked) and the
    credential scan of the sources."""
    from .rules import REGISTRY  # noqa: PLC0415

    rules = config or engine.load_config(known_rules=REGISTRY)  # what engine.run reads by default, read once
    workloads = [m for m in manifests if "argocd" not in m.path.relative_to(directory).parts[:1]]
    taken = {id(m) for m in workloads}
    others = [m for m in manifests if id(m) not in taken]
    # Side by side: each part's no-credentials answers wait for the one gitleaks run (last in each, see
    # engine.run), so the parts' other work is done by the time it ends, not after it.
    with ThreadPoolExecutor(max_workers=3) as pool:
        parts = [pool.submit(schema.run if schema is not None else kubeconform.run, manifests, env.kubernetes_version),
                 pool.submit(source_credentials, env, root, config)]
        if others:
            parts.append(pool.submit(engine.run, others, env=env.name, namespace=None, config=rules))
        found = engine.run(workloads, env=env.name, namespace=env.namespace, config=rules)
        for part in parts:
            found += part.result()
    return Report(env.name, len(manifests), sorted(found))


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
    found = module.scan(sorted(_source_files(env, root)), conf["disableRules"], conf.get("ignoreKeys", ()))
    return [diag.Diagnostic(relative(path, root), line, 1, level,
                            f"{kind} in a source file; never commit credentials: reference a Secret by name, "
                            "remove the value from git history and rotate it", module.ID)
            for path, line, kind in found]


def _rule_ids() -> list[str]:
    from .rules import REGISTRY  # noqa: PLC0415

    return list(REGISTRY)


def validate_path(directory: Path, kubernetes_version: str = DEFAULT_KUBERNETES, namespace: str | None = None,
                  config: engine.PolicyConfig | None = None, policy: Path | None = None,
                  stage: server_mod.Stage | None = None) -> Report:
    """Any directory of manifests; ``policy`` (--policy) is a file in the format of environments/<env>/policy.yaml,
    merged over the repository's policy.yaml (levels, options, providedSecrets, roles by label selector)."""
    started = time.monotonic()
    if policy is not None and config is None:
        config = engine.load_config(known_rules=_rule_ids(), extra=Path(policy))
    manifests = load_directory(directory)
    if not manifests:
        raise UsageError(f"{relative(directory)}: no YAML manifests found")
    if len(manifests) >= 1000:  # long runs say what they are doing
        _stderr(f"validate {relative(directory)}: {len(manifests)} resources parsed in "
                f"{time.monotonic() - started:.1f} s; running kubeconform and {len(_rule_ids())} policy rules...")
    pool = ThreadPoolExecutor(max_workers=1)  # the dry-runs run beside kubeconform and the policies
    try:
        server_future = pool.submit(stage.check, manifests, kubernetes_version, directory, namespace or "default",
                                    relative(directory), config=config) if stage is not None else None
        report = validate_manifests(relative(directory), manifests, kubernetes_version, env=None,
                                    namespace=namespace, config=config)
        if server_future is not None:
            report.diagnostics = sorted(report.diagnostics + server_future.result())
    except BaseException:
        if stage is not None:
            stage.close()  # interrupted or failed: stop the server before waiting for the stage's thread
        raise
    finally:
        pool.shutdown(wait=True)
    report.seconds = time.monotonic() - started
    return report


