"""Scratch copies of the repository and ``./dox`` runs in them, timed, with the pipeline's memory sampled."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ..paths import REPO_ROOT, cache_dir, copy_working_tree

#: What a scratch cache shares with the user's: built tools, schemas, virtualenvs, build locks. Nothing the
#: pipeline caches (render, validation, credential-scan and API-server answers) is shared.
SHARED = ("tools", "schemas", "venvs", "locks")
#: How often the memory sampler reads /proc (seconds).
SAMPLE_EVERY = 0.05


class BenchError(RuntimeError):
    """A measure could not be taken as its label says (a command failed, a cache did not hit)."""


@dataclass
class Run:
    seconds: float
    code: int
    stderr: str
    peak_total_mb: float = 0.0  # the largest sum of RSS of the pipeline's Python processes at one sample
    peak_single_mb: float = 0.0  # the largest high-water mark (VmHWM) of any one of them


class Scratch:
    """A copy of the working tree, with ``./dox`` and its own cache directory (tools shared, caches not)."""

    def __init__(self, base: Path, name: str, source: Path = REPO_ROOT) -> None:
        self.root = copy_working_tree(base / name, source)
        shutil.copy2(source / "dox", self.root / "dox")
        self.cache = base / f"{name}-cache"
        self.cache.mkdir()
        for shared in SHARED:
            if (cache_dir() / shared).exists():
                (self.cache / shared).symlink_to(cache_dir() / shared, target_is_directory=True)

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("DOX_ENV", "PYTHONPATH")}
        return {**env, "DOX_CACHE_DIR": str(self.cache), "TZ": "UTC"}

    def clear(self) -> None:
        """Make the next run cold: no render, validation, diff, credential-scan or API-server answers.
        (The API server's parsed CRD sources stay, like the schemas the bare kubeconform reads; so do what the
        tools' set-up keeps once per binary, as the built tools do: their check stamps, helm's recorded answer
        to kustomize's version question (``helm-answers/``), and the compiled bytecode.)"""
        shutil.rmtree(self.root / ".dox", ignore_errors=True)
        shutil.rmtree(self.cache / "secret-scan", ignore_errors=True)
        for answers in (self.cache / "apiserver").glob("??"):
            shutil.rmtree(answers, ignore_errors=True)

    def dox(self, *args: str, sample: bool = False) -> Run:
        """``./dox ARGS`` in the copy, as a user runs it (its shell wrapper included); exit 0 or 1 expected."""
        return timed(["./dox", *args], cwd=self.root, env=self.env(), sample=sample)


def timed(argv: list[str], cwd: Path, env: dict[str, str], sample: bool = False) -> Run:
    sampler = None
    started = time.monotonic()
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if sample:
        sampler = MemorySampler(proc.pid)
        sampler.start()
    _, stderr = proc.communicate()
    seconds = time.monotonic() - started
    if sampler is not None:
        sampler.stop()
    if proc.returncode not in (0, 1):
        raise BenchError(f"{' '.join(argv)} failed in {cwd} (exit {proc.returncode}): {stderr[-1500:]}")
    run = Run(seconds, proc.returncode, stderr)
    if sampler is not None:
        run.peak_total_mb, run.peak_single_mb = sampler.peak_total_mb, sampler.peak_single_mb
    return run


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except (OSError, ValueError):
        return []


def _status_kb(pid: int) -> tuple[int, int] | None:
    """(VmRSS, VmHWM) in kB of a Python process, None for any other (kustomize, helm, kubeconform...)."""
    try:
        if "python" not in os.path.basename(os.readlink(f"/proc/{pid}/exe")):
            return None
        fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                      if ":" in line)
        return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])
    except (OSError, KeyError, ValueError):
        return None


class MemorySampler(threading.Thread):
    """Every SAMPLE_EVERY s: the Python processes under ``pid`` (the pipeline's own; the Go tools it runs are
    not counted), the sum of their RSS and each one's high-water mark."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak_total_mb = 0.0
        self.peak_single_mb = 0.0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            total = 0
            todo = [self.pid]
            while todo:
                pid = todo.pop()
                todo.extend(_children(pid))
                status = _status_kb(pid)
                if status is not None:
                    total += status[0]
                    self.peak_single_mb = max(self.peak_single_mb, status[1] / 1024)
            self.peak_total_mb = max(self.peak_total_mb, total / 1024)
            self._halt.wait(SAMPLE_EVERY)

    def stop(self) -> None:
        self._halt.set()
        self.join()


def snapshot(*directories: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``directories``: (size, mtime in ns); equal snapshots mean nothing was written."""
    found = {}
    for directory in directories:
        for path in sorted(directory.rglob("*")) if directory.is_dir() else []:
            if path.is_file():
                stat = path.stat()
                found[str(path)] = (stat.st_size, stat.st_mtime_ns)
    return found
