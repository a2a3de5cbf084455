"""``python -m doxops`` == ``./dox``: a warm no-op is answered from the caches (:mod:`.noop`), the plain
render/validate forms run without invoke (:mod:`.direct`), everything else goes to the CLI (:mod:`.cli`)."""

import os
import signal
import sys

if os.environ.get("DOX_PYCACHE"):  # ./dox gave this process a bytecode directory in its cache (see ./dox)
    sys.pycache_prefix = os.environ.pop("DOX_PYCACHE")  # for what is imported from here on; not inherited
    sys.dont_write_bytecode = False

from .noop import answer  # noqa: E402


def _terminate(signum, frame):
    raise KeyboardInterrupt  # as the full CLI: SIGTERM ends like Ctrl-C


signal.signal(signal.SIGTERM, _terminate)
code = answer(sys.argv[1:])
if code is None:
    from .direct import run  # the plain render/validate forms, without invoke

    code = run(sys.argv[1:])
if code is not None:
    sys.exit(code)

from .cli import main  # noqa: E402 - only when the caches could not answer

main()
