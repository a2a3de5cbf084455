"""The two sides of a diff: committed ``rendered/`` trees read from git, or fresh renders.

A committed side is read with one ``git cat-file --batch``; the working tree is rendered in
memory; a commit rendered from its sources (``--rerender``) is rendered in a temporary
worktree under ``.dox/worktrees/`` and cached by commit in ``.dox/diff-cache/``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from .. import environments
from ..errors import ToolError, UsageError
from ..paths import REPO_ROOT
from ..progress import Progress
from .resources import RENDERED

#: Everything that shapes rendered output, for the ``--rerender`` cache key (besides the commit).


#: Per-clone state (render cache, lock, diff cache); git-ignored. The same directory as render's STATE_DIR.
STATE_DIR = ".dox"


def _render():
    """The render stage, imported only when a side must be rendered (it costs time a committed diff saves)."""
    from .. import render  # noqa: PLC0415

    return render


def _fault_point(name: str) -> None:
    """The crash tests' fault injection (``DOX_FAULT_POINT=diff-worktree``, ``DOX_FAULT_SIGNAL``)."""
    if os.environ.get("DOX_FAULT_POINT") == name:
        signum = getattr(signal, "SIG" + os.environ.get("DOX_FAULT_SIGNAL", "KILL"))
        os.kill(os.getpid(), signum)
        if signum != signal.SIGKILL:
            time.sleep(2)  # let the handler run in the main thread, as a real signal would


def git(*args: str, root: Path = REPO_ROOT, check: bool = True) -> str:
    proc = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise ToolError(f"git {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout


def resolve_ref(ref: str, root: Path = REPO_ROOT) -> str:
    proc = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], cwd=root,
                          capture_output=True, text=True)
    if proc.returncode == 0:
        return proc.stdout.strip()
    shallow = git("rev-parse", "--is-shallow-repository", root=root, check=False).strip() == "true"
    hint = ("this clone is shallow and may lack it: run `git fetch --unshallow` (or `git fetch --depth=50 origin "
            f"{ref}`)") if shallow else f"fetch it first: `git fetch origin {ref}`, or check the spelling"
    raise UsageError(f"unknown git ref {ref!r}; {hint}")


def committed_files(commit: str, root: Path = REPO_ROOT) -> dict[str, str]:
    """``{path under rendered/: text}`` at ``commit``, read with one git process."""
    names = [n for n in git("ls-tree", "-r", "--name-only", commit, "--", RENDERED, root=root).splitlines()
             if n.endswith((".yaml", ".yml"))]
    if not names:
        return {}
    proc = subprocess.run(["git", "cat-file", "--batch"], cwd=root, input="".join(f"{commit}:{n}\n" for n in names).encode(),
                          capture_output=True)
    if proc.returncode != 0:
        raise ToolError(f"git cat-file failed: {proc.stderr.decode(errors='replace').strip()}")
    out, data, pos = {}, proc.stdout, 0
    for name in names:
        header_end = data.index(b"\n", pos)
        size = int(data[pos:header_end].split()[2])
        out[name[len(RENDERED) + 1:]] = data[header_end + 1:header_end + 1 + size].decode("utf-8")
        pos = header_end + 1 + size + 1
    return out


def file_at(commit: str | None, rel: str, root: Path = REPO_ROOT) -> str | None:
    """A file's text at ``commit`` (the working tree when None), or None where it does not exist."""
    if commit is None:
        path = root / rel
        return path.read_text() if path.is_file() else None
    proc = subprocess.run(["git", "show", f"{commit}:{rel}"], cwd=root, capture_output=True, text=True)
    return proc.stdout if proc.returncode == 0 else None


def cleanup_worktrees(root: Path) -> None:
    """Remove base worktrees that a killed ``diff --rerender`` left behind (their process is gone)."""
    worktrees = root / STATE_DIR / "worktrees"
    if not worktrees.is_dir():
        return
    for leftover in worktrees.iterdir():
        pid = leftover.name.split("-", 1)[0]
        if pid.isdigit() and Path(f"/proc/{pid}").exists() and int(pid) != os.getpid():
            continue  # another diff is running
        git("worktree", "remove", "--force", str(leftover / "tree"), root=root, check=False)
        shutil.rmtree(leftover, ignore_errors=True)
    git("worktree", "prune", root=root, check=False)


def _code_hash(root: Path) -> str:
    """The render code, pinned tools and lock: the one definition in render.sources (a commit fixes the rest)."""
    return _render().shaping_digest(root)[:12]


def rendered_side(commit: str | None, root: Path, rerender: bool, progress: Progress,
                  only: set[str] | None = None) -> dict[str, str]:
    """Files under rendered/ for one side: committed (``commit``), or a render (working tree or commit).

    ``only`` limits a render of the working tree to those environments (a base rendered from a commit
    is rendered whole, as it is cached by commit for every later diff)."""
    if commit and not rerender:
        return committed_files(commit, root)
    if commit is None:
        envs = [e for e in environments.discover(root) if only is None or e.name in only]
        results = _render().render_all(envs, root=root, write=False, use_cache=False, progress=progress)
        return {f"{r.env.name}/{rel}": text for r in results for rel, text in r.files.items()}
    cache = root / STATE_DIR / "diff-cache" / f"{commit}-{_code_hash(root)}.json"
    if cache.exists():
        try:
            return json.loads(cache.read_text())
        except ValueError:
            cache.unlink()
    worktrees = root / STATE_DIR / "worktrees"
    cleanup_worktrees(root)
    worktrees.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=worktrees))
    try:
        git("worktree", "add", "--detach", "--quiet", str(work / "tree"), commit, root=root)
        _fault_point("diff-worktree")
        try:
            tree = work / "tree"
            envs = environments.discover(tree)
            results = _render().render_all(envs, root=tree, write=False, use_cache=False, progress=progress)
            files = {f"{r.env.name}/{rel}": text for r in results for rel, text in r.files.items()}
        finally:
            git("worktree", "remove", "--force", str(work / "tree"), root=root, check=False)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        git("worktree", "prune", root=root, check=False)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp")
    tmp.write_text(json.dumps(files))
    tmp.replace(cache)
    return files
