"""The local remote: a bare git repository on disk that Argo CD reads, and the copy pull requests are made in.

:class:`GitRemote` commits a scratch copy of this repository, pushes it to a bare repository
(``file://``), points the environment's ``argocd/settings.yaml`` at it (:func:`point_settings`)
and re-renders; :func:`set_value` edits a values file as a pull request would (comments kept);
:func:`meaning_differences` proves the pointed render keeps the committed one's meaning.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

from ...environments import Environment
from ...errors import ToolError
from ...paths import REPO_ROOT, copy_working_tree
from ..harness import Progress
from .install import git_binary

#: The destination every environment's Applications get here: Argo CD's in-cluster cluster. With
#: ARGOCD_FAKE_IN_CLUSTER its connection is the kubeconfig's (127.0.0.1); the URL is never dialled.
IN_CLUSTER = "https://kubernetes.default.svc"
GIT_IDENTITY = {"GIT_AUTHOR_NAME": "dox e2e", "GIT_AUTHOR_EMAIL": "e2e@dox-asdlc.invalid",
                "GIT_COMMITTER_NAME": "dox e2e", "GIT_COMMITTER_EMAIL": "e2e@dox-asdlc.invalid"}


def point_settings(text: str, repo_url: str, server: str) -> str:
    """The settings file's text with ``spec.repoURL`` and ``spec.destination.server`` replaced (comments kept)."""
    new, count = re.subn(r"(?m)^(\s+repoURL:\s*)\S.*$", lambda m: m.group(1) + repo_url, text)
    new, count2 = re.subn(r"(?m)^(\s+server:\s*)\S.*$", lambda m: m.group(1) + server, new)
    data = yaml.safe_load(new)
    if count != 1 or count2 != 1 or data["spec"]["repoURL"] != repo_url or \
            data["spec"]["destination"]["server"] != server:
        raise ToolError("the environment's argocd/settings.yaml does not have one spec.repoURL and one "
                        "spec.destination.server line; the Argo CD e2e cannot point it at the local remote")
    return new


def set_value(text: str, top: str, key: str, value) -> str:
    """A values file's text with ``top.key`` set to ``value`` (a two-level key), comments kept."""
    scalar = yaml.safe_dump(value, default_flow_style=True).splitlines()[0]
    lines = text.splitlines(keepends=True)
    header = next((i for i, line in enumerate(lines) if re.match(rf"^{re.escape(top)}:\s*(#.*)?$", line)), None)
    if header is None:
        if any(re.match(rf"^{re.escape(top)}:", line) for line in lines):
            raise ToolError(f"values: `{top}:` is written inline; the e2e edits block mappings only")
        out = text + ("" if text.endswith("\n") or not text else "\n") + f"{top}:\n  {key}: {scalar}\n"
    else:
        end = next((i for i in range(header + 1, len(lines)) if re.match(r"^[^\s#]", lines[i])), len(lines))
        children = [i for i in range(header + 1, end) if re.match(r"^\s+[^\s#]", lines[i])]
        indent = re.match(r"^(\s+)", lines[children[0]]).group(1) if children else "  "
        found = next((i for i in children if re.match(rf"^{indent}{re.escape(key)}:", lines[i])), None)
        line = f"{indent}{key}: {scalar}\n"
        if found is None:
            lines.insert(header + 1, line)
        else:
            lines[found] = line
        out = "".join(lines)
    if (yaml.safe_load(out) or {}).get(top, {}).get(key) != value:
        raise ToolError(f"values: could not set {top}.{key} to {value!r}")
    return out


def _leaf_differences(old, new, path: str = "") -> list[tuple[str, object, object]]:
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new), key=str):
            out += _leaf_differences(old.get(key), new.get(key), f"{path}.{key}")
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [d for i, (a, b) in enumerate(zip(old, new)) for d in _leaf_differences(a, b, f"{path}[{i}]")]
    return [] if old == new else [(path, old, new)]


def meaning_differences(committed: Path, pointed: Path, allowed: set[tuple[str, str]]) -> list[str]:
    """How ``pointed`` (a render with the settings pointed elsewhere) differs from ``committed`` in more than
    the ``allowed`` value replacements ``(old, new)``: workloads must be identical bytes."""
    problems = []
    files = {str(p.relative_to(committed)) for p in committed.rglob("*.yaml")} | \
        {str(p.relative_to(pointed)) for p in pointed.rglob("*.yaml")}
    for rel in sorted(files):
        a, b = committed / rel, pointed / rel
        if not a.exists() or not b.exists():
            problems.append(f"{rel}: only in {'the pointed render' if b.exists() else 'rendered/'}")
        elif rel.startswith("workloads/"):
            if a.read_bytes() != b.read_bytes():
                problems.append(f"{rel}: differs from a fresh render (is rendered/ stale? run ./dox render)")
        else:
            for where, old, new in _leaf_differences(yaml.safe_load(a.read_text()), yaml.safe_load(b.read_text())):
                if (old, new) not in allowed:
                    problems.append(f"{rel}{where}: {old!r} -> {new!r}")
    return problems


class GitRemote:
    """A bare repository on disk (the remote Argo CD reads) and the working copy pull requests are made in."""

    def __init__(self, directory: Path, env: Environment, progress: Progress = print) -> None:
        self.directory = Path(directory)
        self.env = env
        self.bare = self.directory / "remote.git"
        self.work = self.directory / "work"
        self.home = self.directory / "home"
        self.progress = progress
        self.git_path = git_binary()

    @property
    def url(self) -> str:
        return "file://" + str(self.bare)

    @property
    def settings_file(self) -> Path:
        return self.work / "environments" / self.env.name / "argocd" / "settings.yaml"

    @property
    def rendered(self) -> Path:
        return self.work / "rendered" / self.env.name

    def _git_env(self) -> dict[str, str]:
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.home), "LANG": "C.UTF-8",
                "GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0", **GIT_IDENTITY}

    def git(self, *args: str, cwd: Path | None = None) -> str:
        proc = subprocess.run([self.git_path, *args], cwd=cwd or self.work, env=self._git_env(),
                              capture_output=True, text=True, timeout=60)
        if proc.returncode != 0:
            raise ToolError(f"git {' '.join(args)} failed (exit {proc.returncode}): {proc.stderr.strip()[:400]}")
        return proc.stdout.strip()

    def dox(self, *args: str, env: dict[str, str] | None = None, timeout: float = 180) -> str:
        """``./dox ARGS`` run inside the working copy (its own tasks and pipeline), as a user would."""
        environ = {k: v for k, v in os.environ.items() if k not in ("DOX_ENV", "KUBECONFIG", "PYTHONPATH")}
        environ.update({"PYTHONPATH": str(self.work), **(env or {})})
        proc = subprocess.run([sys.executable, "-m", "doxops", *args], cwd=self.work, env=environ,
                              capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            raise ToolError(f"./dox {' '.join(args)} (in the scratch copy) failed with exit {proc.returncode}:\n"
                            f"{(proc.stderr or proc.stdout).strip()[-1500:]}")
        return proc.stdout + proc.stderr

    def render(self) -> None:
        self.dox("render", "--env", self.env.name)

    def head(self) -> str:
        return self.git("rev-parse", "refs/heads/main", cwd=self.bare)

    def create(self) -> tuple[str, str]:
        """The copy committed and pushed, then the settings pointed here in a second commit.

        Returns ``(first commit, head)``."""
        self.home.mkdir(parents=True, exist_ok=True)
        copy_working_tree(self.work)
        source = "unknown"
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            source = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                                    text=True, timeout=10).stdout.strip() or "unknown"
        self.git("init", "-q", "-b", "main", str(self.work), cwd=self.directory)
        self.git("add", "-A")
        self.git("commit", "-q", "-m", f"dox-asdlc-gitops working tree of {source}")
        first = self.git("rev-parse", "HEAD")
        self.git("init", "-q", "--bare", "-b", "main", str(self.bare), cwd=self.directory)
        self.git("remote", "add", "origin", self.url)
        self.git("push", "-q", "origin", "main")
        self.settings_file.write_text(point_settings(self.settings_file.read_text(), self.url, IN_CLUSTER))
        self.render()
        return first, self.commit(f"{self.env.name}: Argo CD reads the local remote and deploys in-cluster")

    def commit(self, message: str) -> str:
        """Commit everything changed in the working copy and push it to main: a merged pull request."""
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)
        self.git("push", "-q", "origin", "main")
        return self.head()

    def changed_files(self) -> list[str]:
        return [line[3:] for line in self.git("status", "--porcelain").splitlines()]

