"""Progress messages: one line on stderr per call, whole even when parallel environments report at once."""

from __future__ import annotations

import sys
from typing import Callable

Progress = Callable[[str], None]


def stderr(message: str) -> None:
    """Write ``message`` and its newline in one call (``print`` writes them apart, so two threads'
    lines could run together), then flush."""
    sys.stderr.write(f"{message}\n")
    sys.stderr.flush()
