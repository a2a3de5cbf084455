"""The schema stage: kubeconform, strict and offline, reported as diagnostics."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

from .. import schemas, toolchain
from ..errors import ToolError
from ..paths import relative
from .diagnostics import Diagnostic
from .manifests import Manifest, locate

RULE = "schema"
_EXTRA = re.compile(r"additional propert(?:y|ies) '([^']+)'")
_AT = re.compile(r"at '(?P<pointer>[^']*)': (?P<message>.*?)(?= - at '|$)")


def command(kubeconform: Path, schema_set: schemas.SchemaSet, kubernetes_version: str, files: list[Path]) -> list[str]:
    """The kubeconform command line the pipeline (and the benchmark's bare run) uses."""
    version = kubernetes_version.lstrip("v")
    version += ".0" * (2 - version.count("."))  # kubeconform takes only x.y.z: "1.36" (--path's default) is 1.36.0
    cmd = [str(kubeconform), "-strict", "-output", "json", "-n", str(max(2, os.cpu_count() or 2)),
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


def run(manifests: list[Manifest], kubernetes_version: str) -> list[Diagnostic]:
    """Validate the files holding ``manifests``; one diagnostic per schema problem."""
    if not manifests:
        return []
    tool = toolchain.resolve("kubeconform")
    schema_set = schemas.schema_set(kubernetes_version)
    files = sorted({m.path for m in manifests})
    proc = subprocess.run(command(tool.path, schema_set, kubernetes_version, files),
                          capture_output=True, text=True, env={**os.environ, "HOME": os.environ.get("HOME", "/tmp")})
    try:
        report = json.loads(proc.stdout)
    except ValueError:
        report = None
    if not isinstance(report, dict) or "resources" not in report:  # no report is a failure, never "no findings"
        raise ToolError(f"kubeconform printed no report (exit {proc.returncode}): {proc.stderr.strip()[:500]}")
    by_key: dict[tuple[str, str, str], list[Manifest]] = {}
    for m in manifests:
        by_key.setdefault((str(m.path), m.kind, m.name), []).append(m)
    out: list[Diagnostic] = []
    for result in report.get("resources") or []:
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
    if proc.returncode not in (0, 1):
        raise ToolError(f"kubeconform failed (exit {proc.returncode}): {proc.stderr.strip()[:500]}")
    return sorted(out)
