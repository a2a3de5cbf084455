"""The render cache: an unchanged environment is not rendered again.

``.dox/render-cache/<env>.json`` keeps the hash of every input that shapes the output
(:func:`doxops.render.sources.shaping_digest`) and the hash of the output tree, so a hand-edited
``rendered/`` is rendered again. ``--check`` and ``--force`` never use it.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from ..environments import Environment
from ..paths import relative
from .write import RENDERED, STATE_DIR, Progress


def tree_hash(directory: Path) -> str | None:
    if not directory.is_dir():
        return None
    digest = hashlib.sha256()
    for path in sorted(directory.rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(directory)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def cache_file(root: Path, env: Environment) -> Path:
    return root / STATE_DIR / "render-cache" / f"{env.name}.json"


def cache_read(root: Path, env: Environment, progress: Progress) -> dict:
    path = cache_file(root, env)
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict):
            raise ValueError("not an object")
        return data
    except ValueError:
        progress(f"render {env.name}: render cache {relative(path)} is corrupt; ignoring it and rendering afresh")
        return {}  # left in place (a render overwrites it), so a reader that says nothing changes nothing


def cache_write(root: Path, env: Environment, inputs: str, outputs: str | None) -> None:
    path = cache_file(root, env)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"inputs": inputs, "outputs": outputs}))
    os.replace(tmp, path)


def up_to_date(root: Path, env: Environment, inputs: str, progress: Progress) -> bool:
    """Whether ``rendered/<env>`` is what these inputs (:func:`doxops.render.sources.shaping_digest`) rendered
    last time, and nobody changed it since."""
    cached = cache_read(root, env, progress)
    return cached.get("inputs") == inputs and cached.get("outputs") == tree_hash(root / RENDERED / env.name)
