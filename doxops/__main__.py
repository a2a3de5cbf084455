"""``python -m doxops`` == ``./dox``."""

from .cli import main

main()
