"""Where things live: the repository root and the per-user cache outside it."""

from __future__ import annotations

import os
from pathlib import Path

#: The repository root (the directory holding tasks.py).
REPO_ROOT = Path(__file__).resolve().parent.parent


def cache_dir() -> Path:
    """The per-user cache shared by every clone on this machine.

    ``$DOX_CACHE_DIR`` wins; otherwise ``$XDG_CACHE_HOME/dox-asdlc`` or
    ``~/.cache/dox-asdlc``. Tools and schemas are keyed by name and version
    inside it, so two clones (and CI on the same machine) reuse one build.
    """
    explicit = os.environ.get("DOX_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser().resolve()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return (base / "dox-asdlc").resolve()


def relative(path: Path, root: Path = REPO_ROOT) -> str:
    """``path`` relative to ``root`` when inside it, else absolute (for messages)."""
    try:
        return str(Path(path).resolve().relative_to(root))
    except ValueError:
        return str(path)


#: What a working copy needs to render, validate (gobuild/: the API-server stage's pinned server) and diff
#: (no .git, no .venv, no caches).
WORKING_COPY = ("helm", "apps", "environments", "argocd", "doxops", "rendered", "gobuild", "tasks.py", "tools.toml",
                "requirements.lock", "policy.yaml", "pyproject.toml", "diff.yaml", ".gitignore")


def copy_working_tree(target: Path, root: Path = REPO_ROOT) -> Path:
    """A scratch copy of the repository's working files (for tests and the benchmark)."""
    import shutil  # noqa: PLC0415

    target.mkdir(parents=True, exist_ok=True)
    for name in WORKING_COPY:
        source = root / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=shutil.ignore_patterns("__pycache__", ".dox", ".*.tmp"))
        elif source.exists():
            shutil.copy2(source, target / name)
    return target
