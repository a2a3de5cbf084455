"""The one exit-code contract (ARCHITECTURE.md, decision 10) and the errors that carry it.

Every task ends with one of four codes:

====  ==========================================================================
0     success
1     findings or changes (validation errors, stale ``rendered/``, a non-empty diff)
2     usage or input error (a bad flag, malformed YAML, an unknown environment)
3     tool or environment error (a missing Go toolchain, a failing build, an
      interrupted run)
====  ==========================================================================

Code raises a :class:`DoxError` subclass with a message that says what went
wrong, where, and what to do; the entry point prints the message (never a
traceback) and exits with the error's code.
"""

from __future__ import annotations

SUCCESS = 0
FINDINGS = 1
USAGE = 2
TOOL = 3


class DoxError(Exception):
    """An expected failure: one clear message and an exit code."""

    code = TOOL

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return self.message


class UsageError(DoxError):
    """Bad input from the user: a flag, a file, an environment (exit 2)."""

    code = USAGE


class ToolError(DoxError):
    """A tool or the machine failed us: missing Go, a failed build (exit 3)."""

    code = TOOL


class Findings(DoxError):
    """The run worked and found something: errors, stale files, changes (exit 1)."""

    code = FINDINGS


def report_internal(exc: BaseException) -> int:
    """Print an unexpected exception as one line on stderr (its traceback too when ``$DOX_DEBUG`` is set) and
    return the exit code for it (TOOL): no traceback reaches a user by default."""
    import os  # noqa: PLC0415
    import sys  # noqa: PLC0415
    import traceback  # noqa: PLC0415

    if os.environ.get("DOX_DEBUG"):
        traceback.print_exception(exc)
    print(f"dox: internal error: {type(exc).__name__}: {exc} (rerun with DOX_DEBUG=1 for details)", file=sys.stderr)
    return TOOL


def report_closed_output() -> int:
    """Standard output was closed before everything was written (``./dox validate | head``): say so on stderr,
    send what is left to /dev/null (no second error when Python flushes at exit) and return TOOL. The run's
    result is not known (the report was cut short before its findings were counted), so it is never 0."""
    import os  # noqa: PLC0415
    import sys  # noqa: PLC0415

    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    print("dox: standard output was closed before the output was complete (a pipe such as `| head`); the result "
          "is unknown: exit 3", file=sys.stderr)
    return TOOL
