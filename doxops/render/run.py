"""The render itself: every environment in parallel, each swapped into rendered/ atomically."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from .. import toolchain
from ..environments import Environment
from ..errors import Findings, ToolError, UsageError
from ..paths import REPO_ROOT, relative
from .cache import cache_write, tree_hash, up_to_date
from .serialise import file_names, file_text, normalise
from .sources import check_containment, forget_digests, shaping_digest, targets
from .tools import build_stream, check_patches_applied, preflight
from .write import (RENDERED, Progress, checkpoint, cleanup_stale, orphans, render_lock, replace_dir, result_line, stderr_progress,
                    write_tree)


@dataclass
class EnvResult:
    env: Environment
    files: dict[str, str]
    seconds: float
    cached: bool = False


def render_target(subdir: str, directory: Path, tools: dict[str, Path], home: Path, root: Path) -> dict[str, str]:
    """One kustomization (an environment's workloads, or its Argo CD objects) as ``{path: text}``."""
    inputs = check_containment(directory, root)
    preflight(directory, root)
    origin = relative(directory, root)
    target_home = home / subdir
    target_home.mkdir(parents=True, exist_ok=True)
    stream = build_stream(directory, tools, target_home, root)
    check_patches_applied(directory, stream, tools, target_home, root, inputs)
    resources = normalise(stream, origin, directory)
    if not resources:
        raise UsageError(f"{origin}: kustomize produced no resources; check its resources and helmCharts")
    return {f"{subdir}/{name}": file_text(resource, origin)
            for resource, name in zip(resources, file_names(resources, origin))}


def render_env(env: Environment, tools: dict[str, Path], home: Path, root: Path = REPO_ROOT) -> dict[str, str]:
    """``{relative path under rendered/<env>: text}`` for one environment; its targets in parallel."""
    files: dict[str, str] = {}
    parts = targets(env)
    if len(parts) == 1:
        return render_target(*parts[0], tools, home, root)
    with ThreadPoolExecutor(max_workers=len(parts)) as pool:
        for part in pool.map(lambda t: render_target(t[0], t[1], tools, home, root), parts):
            files.update(part)
    return files


def _tools(progress: Progress) -> dict[str, toolchain.Tool]:
    specs = toolchain.load_specs()
    return {n: toolchain.resolve(n, progress=progress, specs=specs) for n in ("helm", "kustomize")}


def render_all(envs: list[Environment], *, root: Path = REPO_ROOT, write: bool = True, use_cache: bool = True,
               jobs: int | None = None, progress: Progress = stderr_progress) -> list[EnvResult]:
    """Render ``envs`` in parallel (bounded pool); with ``write`` swap them into ``rendered/``."""
    tools = _tools(progress)
    paths = {n: t.path for n, t in tools.items()}
    rendered = root / RENDERED
    jobs = max(1, min(jobs or os.cpu_count() or 2, len(envs)))

    def one(env: Environment, home: Path) -> EnvResult:
        started = time.monotonic()
        inputs = shaping_digest(root, env) if write and use_cache else None
        if inputs and up_to_date(root, env, inputs, progress):
            return EnvResult(env, {}, time.monotonic() - started, cached=True)
        env_home = home / env.name
        env_home.mkdir()
        files = render_env(env, paths, env_home, root)
        checkpoint("after-build")
        if write:
            new = Path(tempfile.mkdtemp(prefix=f".{env.name}.new-", dir=rendered))
            try:
                write_tree(new, files)
                replace_dir(new, rendered / env.name)
            except OSError as exc:
                raise ToolError(f"{relative(rendered / env.name, root)}: could not write the new output "
                                f"({exc.strerror or exc}); the previous output is intact. Free space or fix "
                                "permissions and render again") from None
            finally:
                if new.exists():
                    shutil.rmtree(new, ignore_errors=True)
            if inputs:
                cache_write(root, env, inputs, tree_hash(rendered / env.name))
        return EnvResult(env, files, time.monotonic() - started)

    with contextlib.ExitStack() as stack:
        if write and stack.enter_context(render_lock(root, progress)):
            forget_digests()  # another render ran while this one waited: read the sources again
        if write:
            rendered.mkdir(exist_ok=True)
            cleanup_stale(rendered)
        home = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="dox-render-")))
        results: list[EnvResult] = []
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            futures = [pool.submit(one, env, home) for env in envs]
            errors_seen = []
            for env, future in zip(envs, futures):
                try:
                    result = future.result()
                except (UsageError, ToolError) as exc:
                    errors_seen.append(exc)
                    progress(f"render {env.name}: FAILED")
                    continue
                results.append(result)
                progress(result_line(env.name, None if result.cached else len(result.files), root, result.seconds))
        if errors_seen:
            if len(errors_seen) == 1:
                raise errors_seen[0]
            code = max(e.code for e in errors_seen)
            kind = ToolError if code == ToolError.code else UsageError
            raise kind("\n".join(e.message for e in errors_seen), code=code)
    return results


def stale_files(env: Environment, files: dict[str, str], root: Path = REPO_ROOT) -> list[str]:
    """Paths under rendered/<env> that differ from a fresh render (added, removed, changed)."""
    directory = root / RENDERED / env.name
    have = {str(p.relative_to(directory)): p for p in directory.rglob("*") if p.is_file()} if directory.is_dir() else {}
    problems = []
    for rel in sorted(set(have) | set(files)):
        shown = f"{RENDERED}/{env.name}/{rel}"
        if rel not in have:
            problems.append(f"{shown}: missing (a fresh render creates it)")
        elif rel not in files:
            problems.append(f"{shown}: extra (a fresh render no longer produces it)")
        elif have[rel].read_bytes() != files[rel].encode("utf-8"):
            problems.append(f"{shown}: differs from a fresh render")
    return problems


def remove_orphans(envs: list[Environment], root: Path = REPO_ROOT, progress: Progress = stderr_progress) -> None:
    """After rendering every environment: drop output whose environment no longer exists."""
    for directory in orphans(envs, root):
        shutil.rmtree(directory)
        progress(f"render: removed {relative(directory, root)}: no environments/{directory.name} any more")


def check(envs: list[Environment], root: Path = REPO_ROOT, progress: Progress = stderr_progress,
          every: bool = False) -> None:
    """Render afresh (never from cache) and raise Findings naming every stale file.

    With ``every`` (all environments were selected), output of removed environments is stale too.
    """
    results = render_all(envs, root=root, write=False, use_cache=False, progress=progress)
    problems = [p for r in results for p in stale_files(r.env, r.files, root)]
    if every:
        problems += [f"{relative(d, root)}/: extra (no environments/{d.name} renders it)" for d in orphans(envs, root)]
    if problems:
        raise Findings(
            "rendered/ is stale:\n  " + "\n  ".join(problems) + "\nrun `./dox render` and commit the result"
        )
    progress(f"render --check: rendered/ matches a fresh render for {', '.join(e.name for e in envs)}")
