"""Offline, strict JSON schemas for kubeconform, produced locally and cached.

Two sources, both pinned:

* Kubernetes: the schemas that the PyPI package ``kubernetes-validate``
  (pinned in requirements.lock) ships per minor version, in their strict
  variant (draft 2020-12, every object closed with ``additionalProperties:
  false``). They point at a shared ``_definitions.json``; each resource schema
  is made standalone here by copying in exactly the definitions it reaches.
* Custom resources: the CRD manifests inside pinned Go modules (Argo CD,
  External Secrets; ``[crds.*]`` in tools.toml), fetched with ``go mod
  download`` and converted from ``openAPIV3Schema``. Strictness closes every
  object that declares properties, except ``metadata`` and nodes marked
  ``x-kubernetes-preserve-unknown-fields``.

Only these local locations are given to kubeconform, so a kind with no schema
is an error and validation never touches the network.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from .errors import ToolError, UsageError
from .paths import cache_dir
from .gotools import go_binary, lock
from .toolchain import load_config

_DEFS_PREFIX = "/api/_definitions.json#/$defs/"
FORMAT_VERSION = "1"  # bump when the conversion below changes


@dataclass(frozen=True)
class SchemaSet:
    """The kubeconform ``-schema-location`` templates for one Kubernetes minor."""

    kubernetes_dir: Path
    crd_dir: Path

    @property
    def locations(self) -> list[str]:
        return [
            str(self.kubernetes_dir / "{{ .ResourceKind }}{{ .KindSuffix }}.json"),
            str(self.crd_dir / "{{ .Group }}" / "{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json"),
        ]


def minor_of(kubernetes_version: str) -> str:
    """``"1.36.1"`` or ``"v1.36"`` -> ``"1.36"``; anything else is a usage error."""
    parts = kubernetes_version.lstrip("v").split(".")
    if len(parts) < 2 or not all(p.isdigit() for p in parts[:2]):
        raise UsageError(f"kubernetes version {kubernetes_version!r} is not of the form 1.36 or 1.36.1")
    return f"{parts[0]}.{parts[1]}"


def _atomic_dir(final: Path, fill) -> Path:
    """Build a directory with ``fill(tmp)`` and rename it into place (crash-safe)."""
    if (final / ".complete").exists():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    with lock(f"schemas-{final.name}"):
        if (final / ".complete").exists():
            return final
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
        try:
            fill(tmp)
            (tmp / ".complete").write_text("ok\n")
            if final.exists():
                shutil.rmtree(final)
            os.rename(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return final


# --------------------------------------------------------------------------- Kubernetes


def installed_version(package_dir: Path, project: str) -> str:
    """The version of the installed ``project`` (a distribution name) whose import package is ``package_dir``.

    Read from the name of its ``<name>-<version>.dist-info`` directory beside the package, which the PyPA's
    "Recording installed projects" specification fixes (the name normalised: runs of ``-_.`` as one ``_``, lower case); with none or more
    than one such directory, from :mod:`importlib.metadata`, whose import alone costs about 18 ms of start-up
    (tests/pipeline/test_schemas.py compares the two). Raises ToolError when the project is not installed."""
    prefix = re.sub(r"[-_.]+", "_", project).lower() + "-"
    found = [p.name[len(prefix):-len(".dist-info")] for p in package_dir.parent.glob("*.dist-info")
             if p.name.lower().startswith(prefix) and p.is_dir()]
    if len(found) == 1:
        return found[0]
    import importlib.metadata  # noqa: PLC0415

    try:
        return importlib.metadata.version(project)
    except importlib.metadata.PackageNotFoundError:
        raise ToolError(f"{project} is not installed; run ./dox to create the venv from requirements.lock") from None


def _package_schema_root(minor: str) -> tuple[Path, str]:
    found = importlib.util.find_spec("kubernetes_validate")  # located, not imported: it is data here
    if found is None or not found.submodule_search_locations:
        raise ToolError("kubernetes-validate is not installed; run ./dox to create the venv from requirements.lock")
    package_dir = Path(next(iter(found.submodule_search_locations)))
    version = installed_version(package_dir, "kubernetes-validate")
    root = package_dir / "kubernetes-json-schema" / f"v{minor}.0-local-strict"
    if not root.is_dir():
        available = sorted(
            p.name.removesuffix(".0-local-strict")
            for p in root.parent.glob("v*-local-strict")
        )
        raise UsageError(
            f"no Kubernetes schemas for {minor} in kubernetes-validate {version} "
            f"(it has {', '.join(available)}); target one of those or bump the package in requirements.lock"
        )
    return root, version


def _rewrite_refs(node, needed: set[str]):
    """Point ``/api/_definitions.json#/$defs/X`` refs at the local ``#/$defs/X``."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                name = value.split("#/$defs/", 1)[-1]
                needed.add(name)
                out[key] = f"#/$defs/{name}"
            else:
                out[key] = _rewrite_refs(value, needed)
        return out
    if isinstance(node, list):
        return [_rewrite_refs(v, needed) for v in node]
    return node


def _standalone(schema: dict, definitions: dict) -> dict:
    needed: set[str] = set()
    body = _rewrite_refs({k: v for k, v in schema.items() if k not in ("$id",)}, needed)
    defs: dict[str, dict] = {}
    queue = list(needed)
    while queue:
        name = queue.pop()
        if name in defs:
            continue
        if name not in definitions:
            raise ToolError(f"kubernetes schemas: definition {name} is referenced but missing")
        found: set[str] = set()
        defs[name] = _rewrite_refs(definitions[name], found)
        queue.extend(found - defs.keys())
    body["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    body["$defs"] = dict(sorted(defs.items()))
    return body


def kubernetes_schemas(kubernetes_version: str) -> Path:
    """Standalone strict schemas for every resource kind of that minor version."""
    minor = minor_of(kubernetes_version)
    source, package_version = _package_schema_root(minor)
    final = cache_dir() / "schemas" / f"kubernetes-v{minor}-kv{package_version}-f{FORMAT_VERSION}"

    def fill(tmp: Path) -> None:
        definitions = json.loads((source / "_definitions.json").read_text())["$defs"]
        for path in sorted(source.glob("*.json")):
            if path.name in ("_definitions.json", "all.json"):
                continue
            schema = json.loads(path.read_text())
            kind = schema.get("properties", {}).get("kind", {})
            if "enum" not in kind:
                continue  # a sub-structure (Affinity, PodSpec...), not a resource kind
            (tmp / path.name).write_text(json.dumps(_standalone(schema, definitions), separators=(",", ":")))

    return _atomic_dir(final, fill)


# --------------------------------------------------------------------------- CRDs


def _go_module_dir(module: str, version: str) -> Path:
    go = go_binary()
    proc = subprocess.run(
        [go, "mod", "download", "-json", f"{module}@{version}"],
        capture_output=True, text=True, env={**os.environ, "GOFLAGS": "-mod=mod"},
    )
    try:
        info = json.loads(proc.stdout)
    except ValueError:
        info = {}
    if proc.returncode != 0 or "Dir" not in info:
        detail = info.get("Error") or proc.stderr.strip() or f"exit {proc.returncode}"
        raise ToolError(f"go mod download {module}@{version} failed: {detail}; check GOPROXY and tools.toml [crds]")
    return Path(info["Dir"])


def _strict(node, *, top: bool = False):
    """Close every object that lists properties, except preserved/unknown-field nodes."""
    if isinstance(node, list):
        return [_strict(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key == "properties" and isinstance(value, dict):
            out[key] = {
                name: (sub if (top and name == "metadata") else _strict(sub))
                for name, sub in value.items()
            }
        elif key in ("items", "additionalProperties", "not") and isinstance(value, dict):
            out[key] = _strict(value)
        elif key in ("allOf", "anyOf", "oneOf") and isinstance(value, list):
            out[key] = [_strict(v) for v in value]
        else:
            out[key] = value
    if out.get("nullable") is True and "type" in out:
        out["type"] = [out["type"], "null"] if isinstance(out["type"], str) else [*out["type"], "null"]
    preserve = out.get("x-kubernetes-preserve-unknown-fields") is True
    if "properties" in out and "additionalProperties" not in out and not preserve:
        out["additionalProperties"] = False
    return out


def crd_to_schemas(crd: dict) -> dict[tuple[str, str, str], dict]:
    """``{(group, kind_lower, version): schema}`` for every served version of a CRD."""
    spec = crd.get("spec", {})
    group, kind = spec.get("group"), spec.get("names", {}).get("kind")
    out = {}
    for version in spec.get("versions", []):
        if not version.get("served", True):
            continue
        raw = version.get("schema", {}).get("openAPIV3Schema")
        if not raw:
            continue
        schema = _strict(copy.deepcopy(raw), top=True)
        props = schema.setdefault("properties", {})
        props["apiVersion"] = {"type": "string", "enum": [f"{group}/{version['name']}"]}
        props["kind"] = {"type": "string", "enum": [kind]}
        props.setdefault("metadata", {"type": "object"})
        schema.setdefault("required", [])
        for field_name in ("apiVersion", "kind"):
            if field_name not in schema["required"]:
                schema["required"].append(field_name)
        schema["$schema"] = "http://json-schema.org/draft-07/schema#"
        out[(group, kind.lower(), version["name"])] = schema
    return out


def crd_schemas() -> Path:
    """Strict schemas for every CRD named in tools.toml's ``[crds.*]`` tables."""
    sources = load_config().get("crds", {})
    key = hashlib.sha256(json.dumps(sources, sort_keys=True).encode()).hexdigest()[:12]
    final = cache_dir() / "schemas" / f"crds-{key}-f{FORMAT_VERSION}"

    def fill(tmp: Path) -> None:
        for name, table in sorted(sources.items()):
            root = _go_module_dir(table["module"], table["version"])
            for rel in table.get("paths", []):
                path = root / rel
                if not path.exists():
                    raise UsageError(f"tools.toml [crds.{name}]: {rel} is not in {table['module']}@{table['version']}")
                for document in yaml.safe_load_all(path.read_text()):
                    if not document or document.get("kind") != "CustomResourceDefinition":
                        continue
                    for (group, kind, version), schema in crd_to_schemas(document).items():
                        target = tmp / group / f"{kind}_{version}.json"
                        target.parent.mkdir(parents=True, exist_ok=True)
                        target.write_text(json.dumps(schema, separators=(",", ":"), sort_keys=True))

    return _atomic_dir(final, fill)


def crd_manifests() -> list[Path]:
    """The CRD manifest files themselves (the cluster harness applies them)."""
    out = []
    for table in load_config().get("crds", {}).values():
        root = _go_module_dir(table["module"], table["version"])
        out.extend(root / rel for rel in table.get("paths", []))
    return out


def schema_set(kubernetes_version: str) -> SchemaSet:
    """Both schema trees for one Kubernetes version, produced on first use."""
    return SchemaSet(kubernetes_schemas(kubernetes_version), crd_schemas())
