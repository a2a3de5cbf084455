"""``python -m doxops`` == ``./dox``: a warm no-op is answered from the caches (:mod:`.noop`), else the CLI runs."""

import sys

from .noop import answer

code = answer(sys.argv[1:])
if code is not None:
    sys.exit(code)

from .cli import main  # noqa: E402 - only when the caches could not answer

main()
