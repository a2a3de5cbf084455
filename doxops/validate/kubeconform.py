"""The schema stage: kubeconform, strict and offline, reported as diagnostics."""

from __future__ import annotations

import json
import os
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .. import gotools, schemas, toolchain
from ..errors import ToolError
from ..paths import relative
from .diagnostics import Diagnostic
from .manifests import Manifest, locate

RULE = "schema"
_EXTRA = re.compile(r"additional propert(?:y|ies) '([^']+)'")
_AT = re.compile(r"at '(?P<pointer>[^']*)': (?P<message>.*?)(?= - at '|$)")


#: Below this many files one kubeconform worker: each extra worker compiles again the schemas the first one is
#: compiling, which costs more CPU than it saves time on a small set. Measured on 2 cores with the rendered
#: environments copied (median of 5): 288 files 0.19 s wall / 0.23 s CPU with one worker against 0.21 s / 0.38 s
#: with two; 576 files 0.33 s / 0.40 s against 0.24 s / 0.42 s; 1,800 files 0.67 s / 0.83 s against 0.47 s / 0.78 s.
ONE_WORKER_BELOW = 500


def workers(files: int) -> int:
    """kubeconform's ``-n`` for a run over ``files`` files: 1 below :data:`ONE_WORKER_BELOW`, else one per core."""
    return 1 if files < ONE_WORKER_BELOW else max(2, os.cpu_count() or 2)


def command(kubeconform: Path, schema_set: schemas.SchemaSet, kubernetes_version: str, files: list[Path],
            jobs: int | None = None) -> list[str]:
    """The kubeconform command line the pipeline (and the benchmark's bare run) uses; ``jobs`` workers (default
    :func:`workers` of ``len(files)``)."""
    version = kubernetes_version.lstrip("v")
    version += ".0" * (2 - version.count("."))  # kubeconform takes only x.y.z: "1.36" (--path's default) is 1.36.0
    cmd = [str(kubeconform), "-strict", "-output", "json", "-n", str(jobs or workers(len(files))),
           "-kubernetes-version", version]
    for location in schema_set.locations:
        cmd += ["-schema-location", location]
    return cmd + [str(f) for f in files]


def _messages(result: dict) -> list[tuple[str, str]]:
    """(JSON pointer, message) pairs from one kubeconform result."""
    errors = result.get("validationErrors") or []
    pairs = [(e.get("path", ""), e.get("msg", "")) for e in errors if e.get("msg") != "validation failed"]
    msg = result.get("msg", "")
    for match in _AT.finditer(msg):
        pair = (match["pointer"], match["message"].strip())
        if pair not in pairs and not any(p == pair[0] and pair[1] in m for p, m in pairs):
            pairs.append(pair)
    return pairs or [("", msg)]


def results(files: list[Path], kubernetes_version: str) -> list[dict]:
    """One kubeconform run over ``files``: its JSON report's ``resources`` (each a dict with ``filename`` as
    given, ``kind``, ``name``, ``version``, ``status``, ``msg``, ``validationErrors``).

    Raises ToolError when kubeconform prints no report (no report is a failure, never "no findings") or exits
    other than 0 (all valid) or 1 (some invalid)."""
    tool = toolchain.resolve("kubeconform")
    schema_set = schemas.schema_set(kubernetes_version)
    env = gotools.run_env({**os.environ, "HOME": os.environ.get("HOME", "/tmp")})  # GOGC: gotools.RUN_GOGC
    proc = subprocess.run(command(tool.path, schema_set, kubernetes_version, files), capture_output=True, text=True,
                          env=env)
    try:
        report = json.loads(proc.stdout)
    except ValueError:
        report = None
    if not isinstance(report, dict) or "resources" not in report:
        raise ToolError(f"kubeconform printed no report (exit {proc.returncode}): {proc.stderr.strip()[:500]}")
    if proc.returncode not in (0, 1):
        raise ToolError(f"kubeconform failed (exit {proc.returncode}): {proc.stderr.strip()[:500]}")
    return report.get("resources") or []


def run(manifests: list[Manifest], kubernetes_version: str) -> list[Diagnostic]:
    """Validate the files holding ``manifests``; one diagnostic per schema problem (ToolError as :func:`results`)."""
    if not manifests:
        return []
    return diagnostics(results(sorted({m.path for m in manifests}), kubernetes_version), manifests)


def diagnostics(found: list[dict], manifests: list[Manifest]) -> list[Diagnostic]:
    """kubeconform's ``found`` results as diagnostics at the lines of ``manifests`` (the objects of the files it
    checked); valid and skipped resources say nothing."""
    by_key: dict[tuple[str, str, str], list[Manifest]] = {}
    for m in manifests:
        by_key.setdefault((str(m.path), m.kind, m.name), []).append(m)
    out: list[Diagnostic] = []
    for result in found:
        status = result.get("status")
        if status not in ("statusInvalid", "statusError"):
            continue
        key = (result.get("filename", ""), result.get("kind", ""), result.get("name", ""))
        candidates = by_key.get(key) or by_key.get((key[0], key[1], "")) or []
        manifest = candidates[0] if candidates else None
        path = relative(Path(key[0]))
        source = manifest.template if manifest else ""
        if status == "statusError" and "could not find schema" in result.get("msg", ""):
            line = manifest.line if manifest else 1
            out.append(Diagnostic(
                path, line, 1, "error",
                f"no schema for kind {result.get('kind')} ({result.get('version')}): add its CRD to tools.toml "
                "[crds] or fix apiVersion/kind (a kind with no schema is an error, not a skip)",
                RULE, source))
            continue
        for pointer, message in _messages(result):
            extra = _EXTRA.search(message)
            target = f"{pointer}/{extra.group(1)}" if extra else pointer  # point at the unknown key itself
            line, col = locate(manifest, target) if manifest else (1, 1)
            where = f" at {pointer}" if pointer else ""
            out.append(Diagnostic(path, line, col, "error",
                                  f"{result.get('kind')} {result.get('name')}{where}: {message}", RULE, source))
    return sorted(out)


class Batch:
    """One kubeconform run per Kubernetes version over the files of every environment a validation checks,
    started at once in the background; each environment's schema stage takes its files' results from it.

    kubeconform compiles a schema once per run, and compiling is most of its work on a few hundred files:
    measured on 2 cores, both rendered environments (72 files) in one run with one worker cost 0.15 s of CPU,
    one environment alone 0.25 s with two workers. The results are the same as separate runs': the same
    command line over the same files, each result keyed by its file.

    ``files``: {Kubernetes version: files}. :meth:`close` (or leaving it as a context manager) waits for the runs."""

    def __init__(self, files: dict[str, list[Path]]) -> None:
        self._files = {version: {str(p) for p in paths} for version, paths in files.items() if paths}
        self._pool = ThreadPoolExecutor(max_workers=max(1, len(self._files)), thread_name_prefix="kubeconform")
        self._runs = {version: self._pool.submit(results, sorted(paths, key=str), version)
                      for version, paths in files.items() if paths}

    def run(self, manifests: list[Manifest], kubernetes_version: str) -> list[Diagnostic]:
        """:func:`run`'s answer for ``manifests``, from the shared run when it checked all their files (else
        their own run: a file the batch did not see is never reported as valid)."""
        if not manifests:
            return []
        files = {str(m.path) for m in manifests}
        shared = self._runs.get(kubernetes_version)
        if shared is None or not files <= self._files[kubernetes_version]:
            return run(manifests, kubernetes_version)
        return diagnostics([r for r in shared.result() if r.get("filename") in files], manifests)

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def __enter__(self) -> Batch:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
