"""The API-server stage of ``validate``: every object sent as a dry-run apply, answers cached per object."""

from __future__ import annotations

import functools
import http.client
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ...paths import relative
from ..diagnostics import Diagnostic
from ..manifests import Manifest, locate
from .cache import ResultCache, ServerSpec, code_digest, content_key, server_spec
from .common import EXEMPT_PREFIX, HINT, RULE, STORED_RULE, WORKERS as WORKERS_PER_SERVER, Progress, StageError, \
    stderr_progress
from .findings import not_stored_as_written, rejection, warnings
from .masking import secret_strings
from .modes import Mode, annotations_of, apply_modes, labels_of
from .pool import Pool


@dataclass
class Item:
    """One object to answer: its apply mode, the namespace it is sent to and its cache key."""

    manifest: Manifest
    mode: Mode
    namespace: str
    key: str
    secrets: list[str] = field(default_factory=list)


def levels(config, env: str | None) -> dict[str, str]:
    """The levels ``policy.yaml`` (and the environment's, or ``--policy``) set for the stage's rules; a rule the
    policy does not mention keeps the server's own levels (a rejection is an error, a server warning a warning)."""
    config = config if config is not None else _repository_policy()
    out = {}
    for rule_id in (RULE, STORED_RULE):
        level, _ = config.rule_settings(rule_id, "", {}, env)
        if level:
            out[rule_id] = level
    return out


@functools.lru_cache(maxsize=1)
def _repository_policy():
    """policy.yaml and the environments' policy files, read once per process (the warm path stays fast)."""
    from ..policy import load_config  # noqa: PLC0415

    return load_config()


class Stage:
    """The API-server stage of one run: ``check(manifests, version, directory)`` -> diagnostics."""

    def __init__(self, pool: Pool | None = None, cache: ResultCache | None = None,
                 progress: Progress = stderr_progress) -> None:
        self.own_pool = pool is None
        self.pool = pool or Pool(progress=progress)
        self.cache = cache or ResultCache()
        self.progress = progress
        self.sent = 0

    def close(self) -> None:
        if self.own_pool:
            self.pool.close()

    def __enter__(self) -> "Stage":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def check(self, manifests: list[Manifest], kubernetes_version: str, directory: Path | None = None,
              default_namespace: str = "default", name: str = "", *, config=None,
              env: str | None = None) -> list[Diagnostic]:
        """Diagnostics of every object; ``config`` (a PolicyConfig, default policy.yaml) and ``env`` set the
        levels of ``api-server`` and ``stored-as-written`` (``off`` drops them); exempted objects are skipped."""
        from ...schemas import minor_of  # noqa: PLC0415

        spec = server_spec()
        if minor_of(kubernetes_version) != spec.minor:
            raise StageError(
                f"{name + ': ' if name else ''}targets Kubernetes {minor_of(kubernetes_version)}, but the only "
                f"kube-apiserver pinned for the API-server stage is {spec.kubernetes} ([cluster.kubernetes] in "
                f"tools.toml); target {spec.minor} or pin a server of that minor, or {HINT}")
        mode_of = apply_modes(manifests, directory)
        namespace_labels = {m.name: labels_of(m.data) for m in manifests if m.kind == "Namespace" and m.api_version == "v1"}
        code = code_digest(without=("immutable.py",))
        items: list[Item] = []
        for m in manifests:
            mode = mode_of(m)
            namespace = m.namespace or mode.destination or default_namespace
            labels = namespace_labels.get(namespace, {}) if m.kind != "Namespace" else labels_of(m.data)
            key = content_key(code, spec.kubernetes, spec.etcd, spec.crds, namespace, labels, mode.key,
                              default_namespace, m.data)
            items.append(Item(m, mode, namespace, key))
        answers: dict[str, list[dict]] = {}
        missing = []
        for item in items:
            found = self.cache.get(item.key)
            if found is None:
                missing.append(item)
            else:
                answers[item.key] = found
        if missing:
            answers.update(self._send(missing, spec, namespace_labels, name))
        out = []
        wanted_levels = levels(config, env) if any(answers.values()) else {}  # the policy is read only when needed
        for item in items:
            m = item.manifest
            for finding in answers.get(item.key, []):
                level = wanted_levels.get(finding["rule"], finding["level"])
                if level == "off" or str(annotations_of(m.data).get(EXEMPT_PREFIX + finding["rule"]) or "").strip():
                    continue
                line, col = locate(m, finding["pointer"]) if finding["pointer"] else (m.line, 1)
                out.append(Diagnostic(relative(m.path), line, col, level, finding["message"], finding["rule"],
                                      m.template))
        return sorted(set(out))

    def _send(self, items: list[Item], spec: ServerSpec, namespace_labels: dict[str, dict],
              name: str) -> dict[str, list[dict]]:
        label = f"{name}: " if name else ""
        with ThreadPoolExecutor(max_workers=1) as side:  # the CRDs are read while the server starts
            crd_future = side.submit(self.pool.crd_documents)
            server = self.pool.server(spec)
            crd_docs = crd_future.result()
        started = time.monotonic()
        wanted = {(m.manifest.group, m.manifest.kind) for m in items}
        custom = {gk for gk in wanted if gk in crd_docs}
        namespaces = sorted({i.namespace for i in items if i.namespace})
        held = []
        try:
            for ns in namespaces:
                server.acquire_namespace(ns, namespace_labels.get(ns, {}))
                held.append(ns)
            self.progress(f"validate: api-server: {label}sending {len(items)} object(s) as dry-run applies...")

            def one(item: Item) -> tuple[str, list[dict]]:
                m = item.manifest
                item.secrets = secret_strings(m.data)
                try:
                    status, answer, said = server.dry_run(m.data, item.mode, item.namespace)
                except (OSError, http.client.HTTPException) as exc:
                    raise StageError(f"API-server stage: sending {m.ref} ({relative(m.path)}) failed: {exc}; "
                                     f"{HINT}") from None
                findings = warnings(said, item.secrets)
                if status >= 300:
                    findings += rejection(answer, status, item.secrets)
                else:
                    findings += not_stored_as_written(m, answer, item.mode, (m.group, m.kind) in custom, item.secrets)
                return item.key, findings

            with ThreadPoolExecutor(max_workers=WORKERS_PER_SERVER) as workers:
                # built-in kinds are sent while the CRDs are created and become served; custom ones after
                crds = workers.submit(server.ensure_crds, [crd_docs[gk] for gk in sorted(custom)])
                results = dict(workers.map(one, [i for i in items if (i.manifest.group, i.manifest.kind) not in custom]))
                crds.result()
                results.update(workers.map(one, [i for i in items if (i.manifest.group, i.manifest.kind) in custom]))
        finally:
            for ns in held:
                server.release_namespace(ns)
        for key, findings in results.items():
            self.cache.put(key, findings)
        self.sent += len(items)
        self.progress(f"validate: api-server: {label}{len(items)} object(s) answered in "
                      f"{time.monotonic() - started:.1f} s")
        return results
