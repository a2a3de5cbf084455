"""The servers of one run: at most one per Kubernetes version, started on first need, shared, stopped together."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ...errors import DoxError, ToolError
from ...paths import cache_dir
from .apiserver import Server
from .cache import ServerSpec, server_spec, write_json
from .common import HINT, Progress, StageError, stderr_progress


class Pool:
    """The servers of one run: at most one per Kubernetes version, started on first need, shared.

    ``hint`` ends every "cannot start" message: how the command that needs the server can do without it;
    ``who`` (the command) begins every progress message."""

    def __init__(self, binaries: dict[str, Path] | None = None, progress: Progress = stderr_progress,
                 hint: str = HINT, who: str = "validate") -> None:
        self.binaries = binaries
        self.who = who
        self.progress = progress
        self.hint = hint
        self.servers: dict[str, Server] = {}
        self.starts = 0
        self._errors: dict[str, DoxError] = {}
        self._lock = threading.Lock()
        self._version_locks: dict[str, threading.Lock] = {}
        self._crd_docs: dict[tuple[str, str], dict] | None = None
        self._crd_lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._started: list[Server] = []
        self._closed = False

    def _binaries(self) -> dict[str, Path]:
        if self.binaries is not None:
            return self.binaries
        from ...cluster import binaries as binaries_mod  # noqa: PLC0415

        try:
            resolved = binaries_mod.ensure(["kubernetes", "etcd"], build_missing=False, progress=self.progress)
        except ToolError:
            self.progress(f"{self.who}: api-server: building the pinned kube-apiserver and etcd once, only what this "
                          f"stage needs (several minutes on first use; --no-server skips it)...")
            resolved = binaries_mod.ensure(["kubernetes", "etcd"], progress=self.progress)
        self.binaries = resolved.paths
        return self.binaries

    def server(self, spec: ServerSpec) -> Server:
        with self._lock:
            lock = self._version_locks.setdefault(spec.minor, threading.Lock())
        with lock:
            if spec.minor in self._errors:
                raise self._errors[spec.minor]
            if spec.minor in self.servers:
                return self.servers[spec.minor]
            if self._closed:
                raise StageError("API-server stage: stopped (the run is ending)")
            try:
                binaries = self._binaries()
                self.progress(f"{self.who}: api-server: starting etcd {spec.etcd} and kube-apiserver {spec.kubernetes} "
                              "on 127.0.0.1...")
                server = Server(spec, binaries, self.progress, self.hint, self.who)
                self.starts += 1
                with self._lock:
                    self._started.append(server)  # stopped by close() even while it is starting
                try:
                    # Started from the pool's own thread: each process dies with the thread that started it
                    # (PR_SET_PDEATHSIG), and an environment's worker thread ends before the run does.
                    self._starter().submit(server.start).result()
                except BaseException:
                    server.stop()
                    raise
            except (DoxError, OSError) as exc:
                reason = exc.message if isinstance(exc, DoxError) else f"{type(exc).__name__}: {exc}"
                error = StageError(f"API-server stage: kube-apiserver {spec.kubernetes} could not start: "
                                   f"{reason}\n{self.hint}")
                self._errors[spec.minor] = error
                raise error from None
            self.servers[spec.minor] = server
            return server

    def crd_documents(self) -> dict[tuple[str, str], dict]:
        """``{(group, kind): CRD}`` from the pinned modules of ``[crds]`` (as doxops.schemas reads them).

        Parsing the CRD files takes seconds (about 3 MB of YAML), so the parsed documents are kept as JSON in
        ``<cache>/apiserver/crds-<sources>.json``, keyed by the pinned sources."""
        with self._crd_lock:
            if self._crd_docs is None:
                stored = cache_dir() / "apiserver" / f"crds-{server_spec().crds}.json"
                try:
                    documents = json.loads(stored.read_text())
                except (OSError, ValueError):
                    documents = None
                if not isinstance(documents, list):
                    import yaml  # noqa: PLC0415

                    from ... import schemas  # noqa: PLC0415

                    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
                    documents = [doc for path in schemas.crd_manifests()
                                 for doc in yaml.load_all(Path(path).read_text(), Loader=loader)
                                 if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition"]
                    write_json(stored, documents)
                self._crd_docs = {(d["spec"]["group"], d["spec"]["names"]["kind"]): d for d in documents}
            return self._crd_docs

    def _starter(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dox-apiserver")
            return self._executor

    def close(self) -> None:
        """Stop every server, a starting one too (an interrupted run ends at once)."""
        with self._lock:
            self._closed = True
            started, self._started = self._started, []
        for server in started:
            server.stop()
        self.servers.clear()
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    def __enter__(self) -> "Pool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
