"""Programs of the operating system that the test suite needs, installed from Debian's packages when missing.

``./dox test`` runs everything, the e2e control planes included, and those need a few programs that are not
Go tools or Python packages: ``git`` (the Argo CD run's local remote), ``openssl`` (the clusters'
certificates), ``setpriv`` (util-linux: no process outlives its harness) and ``redis-server`` (Argo CD's
cache). :func:`ensure` finds each on ``PATH``; what is missing is installed with ``apt-get install``:

* directly when running as root;
* through ``sudo -n`` when passwordless sudo works (a hosted CI runner: a normal user, passwordless sudo);
* otherwise nothing is run and the error (exit 3) names the one command to run, as it does on a machine
  without ``apt-get``.

Nothing else is installed, nothing is started (``redis-server`` is only a binary that the Argo CD run
starts itself, on 127.0.0.1), and a machine that has everything runs no command at all.
"""

from __future__ import annotations

import os
import shutil
import subprocess

from .errors import ToolError
from .progress import Progress


#: program -> (Debian package, what needs it)
NEEDED: dict[str, tuple[str, str]] = {
    "git": ("git", "the Argo CD run's local git remote"),
    "openssl": ("openssl", "the e2e clusters' certificates"),
    "setpriv": ("util-linux", "the e2e harness's process cleanup"),
    "redis-server": ("redis-server", "Argo CD's cache in the Argo CD e2e run"),
}

_APT_ENV = {"DEBIAN_FRONTEND": "noninteractive", "NEEDRESTART_MODE": "a"}
_APT_OPTS = ["-y", "-qq", "--no-install-recommends", "-o", "DPkg::Lock::Timeout=300"]


def missing(programs=None, path: str | None = None) -> dict[str, str]:
    """``{program: package}`` of the programs not found on ``path`` (default ``$PATH``)."""
    return {p: NEEDED[p][0] for p in programs or NEEDED if not shutil.which(p, path=path)}


def _sudo_works(path: str | None) -> list[str] | None:
    """``["sudo", "-n"]`` if passwordless sudo works here, else None."""
    sudo = shutil.which("sudo", path=path)
    if not sudo:
        return None
    try:
        ok = subprocess.run([sudo, "-n", "true"], capture_output=True, stdin=subprocess.DEVNULL, timeout=30,
                            env=_env(path)).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    return [sudo, "-n"] if ok else None


def _env(path: str | None) -> dict[str, str]:
    return {**os.environ, **({"PATH": path} if path is not None else {}), **_APT_ENV}


def _run(argv: list[str], path: str | None) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, env=_env(path))


def ensure(programs=None, *, path: str | None = None, euid: int | None = None,
           progress: Progress = lambda message: None) -> list[str]:
    """Install the Debian packages of the missing programs; returns the packages installed (none: all there).

    Raises :class:`ToolError` (exit 3) with the one command to run when they cannot be installed from here.
    """
    absent = missing(programs, path)
    if not absent:
        return []
    packages = sorted(set(absent.values()))
    why = "; ".join(f"{p} ({NEEDED[p][1]})" for p in sorted(absent))
    command = f"sudo apt-get install {' '.join(packages)}"
    apt = shutil.which("apt-get", path=path)
    if not apt:
        raise ToolError(f"not found on PATH: {why}. This machine has no apt-get: install them with its package "
                        f"manager (on Debian or Ubuntu: `{command}`) and run again.")
    root = (os.geteuid() if euid is None else euid) == 0
    runner = [] if root else _sudo_works(path)
    if runner is None:
        raise ToolError(f"not found on PATH: {why}. Install them with `{command}` and run again "
                        "(not root, and sudo asks for a password, so ./dox cannot do it for you).")
    how = "apt-get" if root else "sudo -n apt-get"
    progress(f"installing Debian packages {', '.join(packages)} with {how} (missing: {why})...")
    # sudo resets the environment: apt-get is told through env(1) that nobody answers questions.
    through = [*runner, shutil.which("env", path=path) or "/usr/bin/env", *(f"{k}={v}" for k, v in _APT_ENV.items())]
    install = [*(through if runner else []), apt, "install", *_APT_OPTS, *packages]
    proc = _run(install, path)
    if proc.returncode != 0:  # most often stale or absent package lists: update them once and try again
        update = _run([*(through if runner else []), apt, "update", "-qq", "-o", "DPkg::Lock::Timeout=300"], path)
        proc = _run(install, path) if update.returncode == 0 else update
    still = missing(list(absent), path)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-8:])
        raise ToolError(f"`{how} install {' '.join(packages)}` failed (exit {proc.returncode}):\n{tail}\n"
                        f"Install them with `{command}` and run again.")
    if still:
        raise ToolError(f"`{how} install {' '.join(packages)}` worked, but {', '.join(still)} is still not on "
                        f"PATH ({path or os.environ.get('PATH', '')}); add the directory it was installed to.")
    progress(f"installed {', '.join(packages)}")
    return packages
