"""The validation cache: an environment whose inputs did not change is not validated again.

``.dox/validate-cache/<env>[.no-server].json`` keeps the report and the key it was made under: a hash
of the rendered tree, of every file that shaped it (:func:`doxops.render.sources.shaping_digest`, the
render cache's own digest), of the validation code, the policy, the pinned tools and libraries.
Light to import: a warm no-op answers from here without loading the validation stages.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from pathlib import Path

from ..environments import Environment
from ..paths import REPO_ROOT
from ..render.cache import tree_hash
from ..render.sources import shaping_digest
from ..render.write import STATE_DIR
from . import diagnostics as diag
from .report import Progress, Report, _stderr


def cache_key(env: Environment, root: Path = REPO_ROOT) -> str:
    """Everything a validation result depends on (hex SHA-256): the rendered tree; every file that shaped it, as
    the render cache's :func:`shaping_digest` hashes them (the environment's sources and directory, with its
    policy.yaml, the render code, the pinned tools and libraries), taken once per command; the validation code
    (:func:`_code_digest`); the repository's policy.yaml, diff.yaml (the masking settings no-credentials and the
    API-server stage share), tools.toml and requirements.lock."""
    digest = hashlib.sha256()
    digest.update((tree_hash(root / "rendered" / env.name) or "").encode() + b"\0")
    sources = env.path.resolve().parent.parent  # the repository the environment belongs to
    digest.update(shaping_digest(sources, env).encode() + b"\0" + _code_digest().encode() + b"\0")
    for path in (root / "policy.yaml", root / "diff.yaml", root / "tools.toml", root / "requirements.lock"):
        if path.is_file():
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


@functools.lru_cache(maxsize=1)
def _code_digest() -> str:
    """The validation code this process runs, read once: the validate package and its data (the credential
    scanner's gitleaks.toml), the diff's masking rule and settings code, and the schema conversion."""
    package = Path(__file__).resolve().parent.parent
    files = sorted(p for p in (package / "validate").rglob("*") if p.suffix in (".py", ".toml") and p.is_file())
    files += [package / "diff" / "mask.py", package / "diff" / "settings.py", package / "schemas.py"]
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def cache_file(env: Environment, root: Path, server: bool) -> Path:
    suffix = "" if server else ".no-server"  # a report without the server stage is another report
    return root / STATE_DIR / "validate-cache" / f"{env.name}{suffix}.json"


def cached_report(env: Environment, root: Path = REPO_ROOT, server: bool = True,
                  progress: Progress = _stderr, key: str | None = None) -> Report | None:
    """The report in .dox/validate-cache when nothing it depends on changed (``key``, default
    :func:`cache_key`), else None. A corrupt cache file is said and ignored."""
    try:
        data = json.loads(cache_file(env, root, server).read_text())
        if data.get("key") == (key or cache_key(env, root)):
            return Report(env.name, data["resources"], [diag.Diagnostic(**d) for d in data["diagnostics"]],
                          0.0, cached=True)
    except FileNotFoundError:
        pass
    except (ValueError, KeyError, TypeError):
        progress(f"validate {env.name}: validation cache is corrupt; validating afresh")
    return None


def store(env: Environment, root: Path, server: bool, key: str, report: Report) -> None:
    """Keep ``report`` under ``key`` (written to a temporary file, then renamed: never half-written)."""
    path = cache_file(env, root, server)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"key": key, "resources": report.resources,
                               "diagnostics": [dataclasses.asdict(d) for d in report.diagnostics]}))
    tmp.replace(path)
