"""Child processes of the harness: started with a log file, stopped by pid, never leaked.

Every process is started in its own session with its output in ``logs/<name>.log``
and asks the kernel to SIGKILL it should the harness die (``PR_SET_PDEATHSIG``, set by
util-linux's ``setpriv --pdeathsig`` just before it execs the command: a Python
``preexec_fn`` is not safe in a threaded program).
Stopping is SIGTERM to that one pid, a grace period, then SIGKILL. Every live
process is also registered for an ``atexit`` handler, so an interpreter that exits
with the cluster still up (a failing test, Ctrl-C) stops them all.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import subprocess
import threading
import time
from typing import Callable
from pathlib import Path

_registry: dict[int, "Process"] = {}
_registry_lock = threading.Lock()


def _die_with_parent(argv: list[str]) -> list[str]:
    """``argv`` prefixed so the process gets SIGKILL when the thread that started it dies."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL", "--", *argv] if setpriv else argv


class Process:
    """One started command: ``pid``, ``log``, ``alive``, ``tail()``, ``stop()``."""

    def __init__(self, name: str, argv: list[str], log: Path, env: dict[str, str] | None = None,
                 cwd: Path | None = None) -> None:
        self.name = name
        self.argv = argv
        self.log = log
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as handle:
            handle.write(("$ " + " ".join(argv) + "\n").encode())
            handle.flush()
            self._popen = subprocess.Popen(
                _die_with_parent(argv), stdin=subprocess.DEVNULL, stdout=handle, stderr=subprocess.STDOUT,
                env=env, cwd=cwd, start_new_session=True,
            )
        self.pid = self._popen.pid
        with _registry_lock:
            _registry[self.pid] = self

    @property
    def alive(self) -> bool:
        return self._popen.poll() is None

    @property
    def returncode(self) -> int | None:
        return self._popen.poll()

    def tail(self, lines: int = 25) -> str:
        try:
            text = self.log.read_bytes()[-64_000:].decode(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM this pid, wait up to ``grace`` seconds, then SIGKILL it."""
        try:
            if self._popen.poll() is None:
                try:
                    os.kill(self.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
                try:
                    self._popen.wait(timeout=grace)
                except subprocess.TimeoutExpired:
                    try:
                        os.kill(self.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    self._popen.wait(timeout=10)
        finally:
            with _registry_lock:
                _registry.pop(self.pid, None)

    def describe(self) -> str:
        state = "running" if self.alive else f"exited with {self.returncode}"
        return f"{self.name} (pid {self.pid}, {state}); log {self.log}, last lines:\n{self.tail()}"


def stop_all(processes: list[Process], grace: float = 5.0) -> None:
    """Stop in reverse start order: SIGTERM to each, one shared grace period, SIGKILL the rest."""
    live = [p for p in reversed(processes) if p.alive]
    for process in live:
        try:
            os.kill(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace
    for process in live:
        process.stop(grace=max(0.1, deadline - time.monotonic()))
    for process in processes:
        with _registry_lock:
            _registry.pop(process.pid, None)


def _stop_registered() -> None:
    with _registry_lock:
        left = list(_registry.values())
    stop_all(left, grace=3.0)


atexit.register(_stop_registered)


def wait_until(processes: list[Process], fail: Callable[..., Exception], name: str, what: str,
               check: Callable[[], bool], timeout: float) -> None:
    """Poll ``check`` until it is true; fail at once if one of ``processes`` exits, or after ``timeout``.

    ``fail(message, *process_names)`` builds the error (with the named processes' log tails). Any
    exception from ``check`` means "not ready yet" and is shown if the wait times out.
    """
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        for process in processes:
            if not process.alive:
                raise fail(f"{process.name} exited (code {process.returncode}) while waiting for {what}", process.name)
        try:
            if check():
                return
        except Exception as exc:  # noqa: BLE001 - any failure is "not ready yet"; shown on timeout
            last = f"{type(exc).__name__}: {exc}"
        if time.monotonic() > deadline:
            raise fail(f"{name}: not ready after {timeout:.0f} s ({what}); last check: {last or 'not yet'}", name)
        time.sleep(0.25)
