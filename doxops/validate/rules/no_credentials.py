"""no-credentials: no credential in any validated file, as the scanner detect-secrets sees it.

Subjects: every file of the validated set, scanned once each with the
maintained scanner `detect-secrets <https://github.com/Yelp/detect-secrets>`_
(its default filters included). A finding names the file's line and the kind
of credential, never its value.

Conf ``plugins`` lists the detect-secrets plugins to run. The default keeps
those that recognise a credential by its shape (AWS, GitHub, GitLab, Slack,
Stripe, ... tokens, private keys, JSON Web Tokens, ``user:password@`` in URLs)
and the keyword detector (``password: ...``). It leaves out the plugins that
are noise in Kubernetes manifests: the high-entropy string detectors fire on
every ``checksum/config`` annotation (a sha256 in hex), and the public-IP
detector on NetworkPolicy CIDRs; add ``HexHighEntropyString`` or
``Base64HighEntropyString`` to the list to run them anyway. The keyword
detector's hits on keys that only name a Secret or hold a hash
(``secretName: git-credentials``, an ExternalSecret's ``secretKey:
password``, ``checksum/secret: <sha256>``) are dropped: conf ``ignoreKeys``,
shell-style patterns. A false positive is silenced on its line with the
comment ``# pragma: allowlist secret``, or for the whole resource with the
exemption annotation.

Cost: detect-secrets takes about 6 ms per small file (0.1 ms per line), so
about 0.3 s for 50 files; it is by far the slowest rule on large sets.

Passing::

    env:
      - name: API_KEY
        valueFrom: {secretKeyRef: {name: api-key, key: api-key}}

Failing (a GitHub token and a password in plain text)::

    data:
      GITHUB_TOKEN: ghp_<36 characters>
      REDIS_URL: redis://app:<password>@cache:6379/0
"""

from __future__ import annotations

import fnmatch
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

from ...errors import UsageError
from ..engine import Context, Finding
from ..options import defaults
from ._common import esc

ID = "no-credentials"
LEVEL = "error"
#: The plugins that recognise a credential by its shape, and the keyword detector (see above).
PLUGINS = (
    "ArtifactoryDetector", "AWSKeyDetector", "AzureStorageKeyDetector", "BasicAuthDetector",
    "DiscordBotTokenDetector", "GitHubTokenDetector", "GitLabTokenDetector", "JwtTokenDetector",
    "KeywordDetector", "MailchimpDetector", "NpmDetector", "OpenAIDetector", "PrivateKeyDetector",
    "PypiTokenDetector", "SendGridDetector", "SlackDetector", "SquareOAuthDetector", "StripeDetector",
    "TelegramBotTokenDetector", "TwilioKeyDetector",
)


@dataclass(frozen=True)
class Options:
    plugins: list[str] = field(default_factory=lambda: list(PLUGINS))  #: detect-secrets plugins to run
    #: keys whose values the keyword detector may not report (shell-style patterns)
    ignoreKeys: list[str] = field(default_factory=lambda: ["secretName", "secretKey", "secretRef", "existingSecret",
                                                           "existingSecretKey", "checksum/*"])

    @staticmethod
    def validate(name: str, value: object) -> str | None:
        """Checked when the policy is read, so a misspelt plugin names its file and line."""
        return _unknown_plugins(value) if name == "plugins" else None  # type: ignore[arg-type]


CONF = defaults(Options)
KEYWORD = "Secret Keyword"
#: Options detect-secrets needs for some plugins (its own defaults).
PLUGIN_OPTIONS = {"Base64HighEntropyString": {"limit": 4.5}, "HexHighEntropyString": {"limit": 3.0}}


def _unknown_plugins(names: list[str]) -> str | None:
    """Why ``names`` are not all detect-secrets plugins; None when they are."""
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class  # noqa: PLC0415

    known = {cls.__name__ for cls in get_mapping_from_secret_type_to_class().values()}
    unknown = [n for n in names if n not in known]
    if unknown:
        return f"unknown detect-secrets plugin(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
    return None


def _plugins_used(names: list[str]) -> list[dict]:
    problem = _unknown_plugins(names)
    if problem:
        raise UsageError(f"policy.yaml: rule {ID}: {problem}")
    return [{"name": n, **PLUGIN_OPTIONS.get(n, {})} for n in names]


def _ignored(line: str, value: str, ignore_keys: list[str]) -> bool:
    """Whether the keyword detector's "secret" is the value of an ignored key (``secretName: x``)."""
    pattern = r"""([\w./-]+)["']?\s*:\s*["']?""" + re.escape(value)
    return any(fnmatch.fnmatchcase(match.group(1), key)
               for match in re.finditer(pattern, line) for key in ignore_keys)


#: Scan results by file content and scanner settings: a file already scanned is not scanned again.
_MEMO: dict[str, list[tuple[int, str]]] = {}
#: detect-secrets keeps its settings in process-global state: one scan at a time per process.
_LOCK = threading.Lock()


def _cache_dir() -> Path:
    from ...paths import cache_dir  # noqa: PLC0415

    return cache_dir() / "secret-scan"


def scan(paths: list[Path], plugins: list[str], ignore_keys: list[str] = ()) -> list[tuple[Path, int, str]]:
    """(path, line, secret type) of every credential found in ``paths``, cached by content.

    The cache key is the file's SHA-256 plus the scanner version and settings, so a cached answer is
    exactly what a fresh scan would give; it lives in the per-user cache (``secret-scan/``).
    """
    import importlib.metadata  # noqa: PLC0415
    import hashlib  # noqa: PLC0415
    import json  # noqa: PLC0415

    _plugins_used(plugins)  # an unknown plugin is a usage error before anything is read
    own_code = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()  # a changed rule invalidates answers
    settings = json.dumps([importlib.metadata.version("detect-secrets"), sorted(plugins), sorted(ignore_keys),
                           own_code])
    salt = hashlib.sha256(settings.encode()).hexdigest()[:16]
    directory = _cache_dir()
    found: list[tuple[Path, int, str]] = []
    todo: list[tuple[Path, str]] = []
    for path in paths:
        key = hashlib.sha256(Path(path).read_bytes()).hexdigest() + "-" + salt
        if key not in _MEMO:
            try:
                _MEMO[key] = [tuple(x) for x in json.loads((directory / key[:2] / key).read_text())]
            except (OSError, ValueError):
                todo.append((Path(path), key))
                continue
        found.extend((Path(path), line, kind) for line, kind in _MEMO[key])
    if todo:
        with _LOCK:
            fresh = _scan_parallel([p for p, _ in todo], plugins, ignore_keys)
        for path, key in todo:
            mine = sorted((line, kind) for p, line, kind in fresh if p == path)
            _MEMO[key] = mine
            try:
                (directory / key[:2]).mkdir(parents=True, exist_ok=True)
                tmp = directory / key[:2] / f".{key}.tmp"
                tmp.write_text(json.dumps(mine))
                tmp.replace(directory / key[:2] / key)
            except OSError:
                pass  # a read-only cache only costs speed
            found.extend((path, line, kind) for line, kind in mine)
    return sorted(set(found))


def _prefilter(plugins: list[str]):
    """A test that a file may hold something one of ``plugins`` reports, built from the plugins' own
    patterns (each regex-based detector's ``denylist``; the keyword detector's keyword list). A file
    that matches none cannot produce a finding, so detect-secrets need not read it line by line.
    Returns None (scan everything) if a plugin exposes no patterns."""
    import re as re_  # noqa: PLC0415

    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class  # noqa: PLC0415
    from detect_secrets.plugins import keyword  # noqa: PLC0415

    classes = {cls.__name__: cls for cls in get_mapping_from_secret_type_to_class().values()}
    patterns = []
    for name in plugins:
        cls = classes[name]
        if name == "KeywordDetector":
            patterns.append(re_.compile(keyword.DENYLIST_REGEX if hasattr(keyword, "DENYLIST_REGEX")
                                        else "|".join(keyword.DENYLIST), re_.IGNORECASE))
        elif isinstance(getattr(cls, "denylist", None), (list, tuple)):
            patterns.extend(p if hasattr(p, "search") else re_.compile(p) for p in cls.denylist)
        else:
            return None
    return lambda text: any(p.search(text) for p in patterns)


def _scan_parallel(paths: list[Path], plugins: list[str], ignore_keys) -> list[tuple[Path, int, str]]:
    """``_scan`` on every core when there is enough to scan (the scanner is pure Python)."""
    import multiprocessing  # noqa: PLC0415
    import os  # noqa: PLC0415
    from concurrent.futures import ProcessPoolExecutor  # noqa: PLC0415

    may_hold = _prefilter(plugins)
    if may_hold is not None:
        paths = [p for p in paths if may_hold(p.read_text(encoding="utf-8", errors="replace"))]
    workers = min(os.cpu_count() or 1, len(paths) // 16)
    if workers < 2:
        return _scan(paths, plugins, ignore_keys)
    chunks = [paths[i::workers] for i in range(workers)]
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork")) as pool:
        parts = pool.map(_scan, chunks, [plugins] * workers, [list(ignore_keys)] * workers)
        return [item for part in parts for item in part]


def _scan(paths: list[Path], plugins: list[str], ignore_keys: list[str] = ()) -> list[tuple[Path, int, str]]:
    """(path, line, secret type) of every credential detect-secrets finds in ``paths`` (no cache)."""
    from detect_secrets import SecretsCollection  # noqa: PLC0415 - loaded only when the rule runs
    from detect_secrets.settings import transient_settings  # noqa: PLC0415

    found: set[tuple[Path, int, str]] = set()
    with transient_settings({"plugins_used": _plugins_used(plugins)}):
        for path in paths:
            collection = SecretsCollection()
            collection.scan_file(str(path))
            lines: list[str] | None = None
            for _, secret in collection:
                if secret.type == KEYWORD and secret.secret_value and ignore_keys:
                    if lines is None:
                        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
                    text = lines[secret.line_number - 1] if 0 < secret.line_number <= len(lines) else ""
                    if _ignored(text, secret.secret_value, list(ignore_keys)):
                        continue
                found.add((path, secret.line_number, secret.type))
    return sorted(found)


def _pointer_at(path: Path, index: int, line: int) -> str:
    """A JSON pointer to the last node of document ``index`` that starts at or before ``line`` (1-based)."""
    from ruamel.yaml import YAML  # noqa: PLC0415

    try:
        docs = [d for d in YAML(typ="rt").load_all(path.read_text(encoding="utf-8")) if d is not None]
        node = docs[index]
    except Exception:  # noqa: BLE001 - a precise line is a nicety; the document's line remains
        return ""
    target, parts = line - 1, []
    while isinstance(node, (dict, list)):
        best = None
        try:
            if isinstance(node, dict):
                for key in node:
                    if node.lc.key(key)[0] > target:
                        break
                    best = key
            else:
                for i in range(len(node)):
                    if node.lc.item(i)[0] > target:
                        break
                    best = i
        except (AttributeError, KeyError, TypeError):
            break
        if best is None:
            break
        parts.append(esc(best))
        node = node[best]
    return "/" + "/".join(parts) if parts else ""


def check(ctx: Context, conf: dict):
    flagged: set[tuple[int, str]] = set()
    for finding in _scanned(ctx, conf):
        flagged.add((id(finding.manifest), finding.pointer))
        yield finding
    for finding in _literal_env_credentials(ctx):
        if (id(finding.manifest), finding.pointer) not in flagged:  # the scanner named this value already
            yield finding


def _scanned(ctx: Context, conf: dict):
    by_file: dict[Path, list] = {}
    for m in ctx.manifests:
        if m.path in by_file or m.path.is_file():
            by_file.setdefault(m.path, []).append(m)
    if not by_file:
        return
    ignore_keys = [str(k) for k in conf.get("ignoreKeys") or []]
    for path, line, kind in scan(list(by_file), list(conf.get("plugins") or []), ignore_keys):
        in_file = sorted(by_file[path], key=lambda x: x.line)
        m = in_file[0]
        for candidate in in_file:  # the document the line belongs to: the last one starting at or before it
            if candidate.line <= line:
                m = candidate
        pointer = _pointer_at(path, m.index, line)
        yield Finding(m, pointer, f"{m.ref}: line {line} holds a credential (detect-secrets: {kind}); move it to "
                                  "a Secret from an external store (ExternalSecret) and rotate it")


def _literal_env_credentials(ctx: Context):
    """An env entry whose name says credential (``DB_PASSWORD``, ``API_TOKEN``) with a literal ``value``.

    The scanner reads a line at a time and so never pairs ``- name: DB_PASSWORD`` with the ``value:`` line below
    it. Credential names are the diff's masking rule (:class:`doxops.diff.mask.Masker`), so what the diff
    hides as a credential is what validation refuses; numbers, empty values and ``$(VAR)`` references pass."""
    from ...diff import load_settings  # noqa: PLC0415 - only when a workload has env entries
    from ...diff.mask import Masker, is_number  # noqa: PLC0415

    masker = None
    for w in ctx.workloads():
        for container, pointer in w.containers():
            env = container.get("env")
            for i, entry in enumerate(env if isinstance(env, list) else []):
                value = entry.get("value") if isinstance(entry, dict) else None
                if not isinstance(value, str) or not value.strip() or "$(" in value or is_number(value):
                    continue
                masker = masker or Masker(load_settings())
                if masker.credential_key(str(entry.get("name", ""))):
                    yield Finding(w.manifest, f"{pointer}/env/{i}/value",
                                  f"{w.manifest.ref}: env {entry.get('name')} holds a literal credential in its value; "
                                  "use valueFrom.secretKeyRef to a Secret from an external store and rotate it")
