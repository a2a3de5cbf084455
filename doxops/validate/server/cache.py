"""What decides an answer (the pinned server, etcd and CRD sources, this package's code) and where answers are kept."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ...paths import cache_dir


@functools.lru_cache(maxsize=4)
def code_digest(without: tuple[str, ...] = ()) -> str:
    """The modules of this package (but ``without``): a change to how the stage asks or reads answers is another
    answer. The validate stage leaves out ``immutable.py``, which it never runs."""
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).resolve().parent.glob("*.py")):
        if path.name not in without:
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class ServerSpec:
    """What answers: the pinned server and etcd versions and the pinned CRD sources."""

    kubernetes: str
    etcd: str
    crds: str

    @property
    def minor(self) -> str:
        from ...schemas import minor_of  # noqa: PLC0415

        return minor_of(self.kubernetes)


def server_spec() -> ServerSpec:
    from ...cluster import binaries  # noqa: PLC0415
    from ...toolchain import load_config  # noqa: PLC0415

    specs = binaries.load_specs()
    crds = json.dumps(load_config().get("crds", {}), sort_keys=True)
    return ServerSpec(specs["kubernetes"].version, specs["etcd"].version,
                      hashlib.sha256(crds.encode()).hexdigest()[:16])


def content_key(*parts) -> str:
    """A cache key of everything given (JSON, keys sorted)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def write_json(path: Path, data) -> None:
    """``data`` as JSON at ``path``, atomically (a reader sees the old file or the new one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, default=str)
    os.replace(tmp, path)


class ResultCache:
    """One JSON file per answered object, ``<root>/<key[:2]>/<key>.json``, written atomically."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root else cache_dir() / "apiserver"

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> list | None:
        try:
            data = json.loads(self._path(key).read_text())
        except (OSError, ValueError):
            return None
        return data.get("findings") if isinstance(data, dict) and isinstance(data.get("findings"), list) else None

    def put(self, key: str, findings: list) -> None:
        write_json(self._path(key), {"findings": findings})
