"""One timed sample of the policy engine or the credential scan, in a fresh process (no warm memo survives).

``python -m doxops.bench.sample policy DIR`` prints ``{"parse_s", "rules_s"}``: parsing DIR with validate's
parser, then every rule but no-credentials (it has its own row) over what was parsed, in one process.
``python -m doxops.bench.sample scan DIR`` prints the same for the no-credentials rule alone; run it with an
empty ``$DOX_CACHE_DIR`` for a cold scan.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from ..validate import engine
from ..validate.manifests import load_directory
from ..validate.rules import REGISTRY

SCANNER = "no-credentials"


def sample(what: str, directory: Path) -> dict:
    started = time.perf_counter()
    manifests = load_directory(directory)
    parsed = time.perf_counter()
    only = [SCANNER] if what == "scan" else [r for r in REGISTRY if r != SCANNER]
    found = engine.run(manifests, only=only)
    done = time.perf_counter()
    return {"parse_s": parsed - started, "rules_s": done - parsed, "resources": len(manifests),
            "rules": len(only), "findings": len(found)}


if __name__ == "__main__":
    print(json.dumps(sample(sys.argv[1], Path(sys.argv[2]))))
