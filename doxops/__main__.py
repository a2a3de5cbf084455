"""``python -m doxops`` == ``./dox``: a warm no-op is answered from the caches (:mod:`.noop`), the plain
render/validate forms run without invoke (:mod:`.direct`), everything else goes to the CLI (:mod:`.cli`)."""

import os
import signal
import sys

if "DOX_DONTWRITEBYTECODE" in os.environ:  # ./dox emptied PYTHONDONTWRITEBYTECODE for this process only
    original = os.environ.pop("DOX_DONTWRITEBYTECODE")
    if original:
        os.environ["PYTHONDONTWRITEBYTECODE"] = original  # the processes this one starts get the user's value
    else:
        os.environ.pop("PYTHONDONTWRITEBYTECODE", None)

from .noop import answer  # noqa: E402


def _terminate(signum, frame):
    raise KeyboardInterrupt  # as the full CLI: SIGTERM ends like Ctrl-C


signal.signal(signal.SIGTERM, _terminate)
code = answer(sys.argv[1:])
if code is None:
    from .direct import run  # the plain render/validate forms, without invoke

    code = run(sys.argv[1:])
if code is not None:
    # The command is over: its objects need no collection. Freezing them lets the interpreter's exit skip the
    # full collection it would run over every one of them (25-35 ms of a 0.8 s cold render and validation,
    # measured); exit handlers, thread joins and stream flushes still run as usual.
    import gc

    gc.freeze()
    sys.exit(code)

from .cli import main  # noqa: E402 - only when the caches could not answer

main()
