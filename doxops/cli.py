"""The ``./dox`` entry point: invoke's Program with this repository's exit codes.

Plain ``invoke`` exits 1 on a bad argument and on Ctrl-C; here a bad argument is
a usage error (2), an interruption is 3, and an unexpected exception is one
line on stderr and 3 (set ``DOX_DEBUG=1`` for the traceback). Tasks raise
:class:`doxops.errors.DoxError`, which ``tasks.py`` turns into ``Exit``.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import sys
import traceback

from invoke import Collection, Exit, ParseError, Program, UnexpectedExit

from .errors import TOOL, USAGE, DoxError, report_closed_output, report_internal
from .paths import REPO_ROOT


class DoxProgram(Program):
    """invoke's Program, mapping every ending onto the exit-code contract."""

    def run(self, argv=None, exit: bool = True) -> None:  # noqa: A002 - invoke's signature
        code = 0
        try:
            self.create_config()
            try:
                self.parse_core(argv)
                self.parse_collection()
                self.parse_tasks()
                self.parse_cleanup()
            except (ValueError, TypeError) as exc:  # invoke's type conversion: --jobs abc
                raise ParseError(f"bad option value: {exc}") from None
            self.update_config()
            self.execute()
        except ParseError as exc:
            print(f"dox: {exc} (see `./dox --list` and `./dox --help TASK`)", file=sys.stderr)
            code = USAGE
        except Exit as exc:
            if exc.message:
                print(exc.message, file=sys.stderr)
            code = exc.code
        except UnexpectedExit as exc:
            print(f"dox: command failed: {exc.result.command} (exit {exc.result.exited})", file=sys.stderr)
            code = TOOL
        except DoxError as exc:
            print(f"dox: {exc.message}", file=sys.stderr)
            code = exc.code
        except KeyboardInterrupt:
            print("dox: interrupted; nothing half-written was kept", file=sys.stderr)
            code = TOOL
        except SystemExit as exc:  # invoke's --help/--version and friends
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else USAGE)
        except BrokenPipeError:  # | head: a report cut short is no result
            code = report_closed_output()
        except Exception as exc:  # noqa: BLE001 - the last line of defence: no traceback for users
            code = report_internal(exc)
        if exit:
            sys.exit(code)


def load_namespace() -> Collection:
    """The explicit ``ns`` Collection of the repository's tasks.py."""
    spec = importlib.util.spec_from_file_location("tasks", REPO_ROOT / "tasks.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["tasks"] = module
    spec.loader.exec_module(module)
    return module.ns


def _terminate(signum, _frame):
    """SIGTERM behaves like Ctrl-C, so cleanup handlers run."""
    raise KeyboardInterrupt


def main() -> None:
    signal.signal(signal.SIGTERM, _terminate)
    try:
        namespace = load_namespace()
    except Exception as exc:  # noqa: BLE001 - a broken tasks.py must not end in a traceback either
        if os.environ.get("DOX_DEBUG"):
            traceback.print_exc()
        print(f"dox: cannot load tasks.py: {type(exc).__name__}: {exc} (rerun with DOX_DEBUG=1 for details)",
              file=sys.stderr)
        sys.exit(TOOL)
    DoxProgram(name="dox", binary="./dox", namespace=namespace, version="0.1.0").run()
