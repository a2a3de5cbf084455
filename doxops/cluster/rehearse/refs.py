"""The two commits a rehearsal replays, and the remote that carries them to Argo CD.

:func:`resolve` turns ``--base`` / ``--head`` into commits (base: the merge base with ``main``, else
``origin/main``), refusing uncommitted changes; :class:`RefRemote` is the Argo CD run's
:class:`~doxops.cluster.argocd.GitRemote` whose working copy holds a commit's tree (``git archive``)
instead of the working tree, with the environment's settings pointed at the local remote and
re-rendered exactly as the Argo CD run does.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
from pathlib import Path

from ...errors import ToolError, UsageError
from ...paths import WORKING_COPY
from ..argocd import IN_CLUSTER, GitRemote, meaning_differences, point_settings


def _git(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=60)


def commit_of(ref: str, root: Path) -> str:
    proc = _git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    if proc.returncode != 0:
        raise UsageError(f"{ref}: not a commit in {root}; give an existing ref (`git fetch` it if it is remote)")
    return proc.stdout.strip()


def resolve(root: Path, base: str | None, head: str | None) -> tuple[str, str]:
    """``(base commit, head commit)``; refuses a dirty working tree (it would not be what is rehearsed)."""
    if _git(root, "rev-parse", "--git-dir").returncode != 0:
        raise UsageError(f"{root}: not a git repository; rehearse replays commits")
    dirty = _git(root, "status", "--porcelain", "--untracked-files=no").stdout.strip()
    if dirty:
        raise UsageError("uncommitted changes: rehearse replays commits, not the working tree. Commit or stash "
                         f"them first:\n{dirty[:800]}")
    head_commit = commit_of(head or "HEAD", root)
    if base:
        return commit_of(base, root), head_commit
    for candidate in ("main", "origin/main"):
        if _git(root, "rev-parse", "--verify", "--quiet", f"{candidate}^{{commit}}").returncode == 0:
            proc = _git(root, "merge-base", candidate, head_commit)
            if proc.returncode == 0:
                return proc.stdout.strip(), head_commit
    raise UsageError("no base: neither `main` nor `origin/main` exists here (a shallow CI checkout?) or neither "
                     "shares history with the head. Give --base REF, or `git fetch origin main` (with enough "
                     "depth for the merge base)")


def tree_files(root: Path, commit: str, prefix: str) -> dict[str, bytes]:
    """Every file under ``prefix`` in ``commit``, ``{path relative to prefix: bytes}``."""
    proc = subprocess.run(["git", "archive", "--format=tar", commit, prefix], cwd=root, capture_output=True,
                          timeout=60)
    if proc.returncode != 0:
        raise UsageError(f"{commit[:7]} has no {prefix}: {proc.stderr.decode(errors='replace').strip()[:300]}")
    out = {}
    with tarfile.open(fileobj=io.BytesIO(proc.stdout)) as tar:
        for member in tar.getmembers():
            if member.isfile():
                out[member.name[len(prefix):].lstrip("/")] = tar.extractfile(member).read()
    return out


class RefRemote(GitRemote):
    """The local remote, its working copy filled from commits of ``root`` (never the working tree)."""

    def __init__(self, directory: Path, env, root: Path, progress=print) -> None:
        super().__init__(directory, env, progress)
        self.root = root
        self.original_settings = ""

    def _fill(self, commit: str) -> None:
        """Replace the copy's files (not its .git) with ``commit``'s tree."""
        self.work.mkdir(parents=True, exist_ok=True)
        for entry in self.work.iterdir():
            if entry.name == ".git":
                continue
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
        proc = subprocess.run(["git", "archive", "--format=tar", commit, *[n for n in WORKING_COPY if
                                                                           self._exists(commit, n)]],
                              cwd=self.root, capture_output=True, timeout=60)
        if proc.returncode != 0:
            raise ToolError(f"git archive {commit[:7]} failed: {proc.stderr.decode(errors='replace')[:300]}")
        with tarfile.open(fileobj=io.BytesIO(proc.stdout)) as tar:
            tar.extractall(self.work, filter="data")

    def _exists(self, commit: str, name: str) -> bool:
        return _git(self.root, "cat-file", "-e", f"{commit}:{name}").returncode == 0

    def _pointed(self, commit: str) -> list[str]:
        """Point the settings at this remote, re-render the environment; how it differs from the commit's."""
        self.original_settings = self.settings_file.read_text()
        import yaml  # noqa: PLC0415

        original = yaml.safe_load(self.original_settings)
        self.settings_file.write_text(point_settings(self.original_settings, self.url, IN_CLUSTER))
        self.render()
        committed = self.directory / f"committed-{commit[:12]}"
        if committed.exists():
            shutil.rmtree(committed)
        for rel, data in tree_files(self.root, commit, f"rendered/{self.env.name}").items():
            (committed / rel).parent.mkdir(parents=True, exist_ok=True)
            (committed / rel).write_bytes(data)
        return meaning_differences(committed, self.rendered, {
            (original["spec"]["repoURL"], self.url), (original["spec"]["destination"]["server"], IN_CLUSTER)})

    def create_at(self, commit: str) -> tuple[str, list[str]]:
        """The remote at ``commit`` (pointed and re-rendered); returns (pushed head, meaning problems)."""
        self.home.mkdir(parents=True, exist_ok=True)
        self._fill(commit)
        self.git("init", "-q", "-b", "main", str(self.work), cwd=self.directory)
        self.git("init", "-q", "--bare", "-b", "main", str(self.bare), cwd=self.directory)
        self.git("remote", "add", "origin", self.url)
        problems = self._pointed(commit)
        return self.commit(f"rehearse base {commit[:12]}, pointed at the local remote"), problems

    def move_to(self, commit: str) -> tuple[str, list[str]]:
        """Push ``commit``'s tree (pointed and re-rendered) as the next commit: the merge."""
        self._fill(commit)
        problems = self._pointed(commit)
        return self.commit(f"rehearse head {commit[:12]}, pointed at the local remote"), problems
