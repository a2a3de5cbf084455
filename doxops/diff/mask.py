"""Masking that hides secrets, and only secrets.

Hidden (shown as ``(masked)``, the change itself still visible):

* Secret ``data``/``stringData`` values and ExternalSecret ``spec.data``/``spec.dataFrom`` (all of
  it but ``secretKey``, which names a key of the Secret it makes);
* every value the credential scanner flags: the ``no-credentials`` rule's gitleaks scan
  (:func:`doxops.validate.rules.no_credentials.scan`, its rules and ignored keys), run once per
  diff over the values about to be shown;
* URL passwords (``redis://:PASSWORD@host``) and ``<credential-key> <value>`` lines of free text
  (``requirepass ...`` in a redis.conf);
* a literal value whose own key names a credential (``REDIS_PASSWORD: x``, an env entry
  ``{name: API_TOKEN, value: x}``).

Never hidden: key names, references (``secretKeyRef: {name: anthropic-api-key, key: api-key}``,
``secretName``, ``..._FILE`` paths: a key ending in a reference word) and numbers
(``TOKEN_BUDGET: "250000"``), outside Secret data.
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
from pathlib import Path
from typing import Any, Iterable

from .settings import MASK, Settings

#: Objects whose content names a Secret or a key, never holds a value.
REFERENCE_OBJECTS = {"secretKeyRef", "configMapKeyRef", "secretRef", "configMapRef", "secretStoreRef",
                     "sourceRef", "valueFrom", "envFrom", "projected", "imagePullSecrets"}
#: A key whose last word is one of these names a thing rather than holding a credential.
REFERENCE_WORDS = {"name", "names", "ref", "refs", "file", "path", "dir", "mount", "store", "selector", "type",
                   "kind", "url"}
_NUMBER = re.compile(r"^\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*$")
_USERINFO = re.compile(r"(://)[^/@\s:]*:[^/@\s]*@")
_LINE = re.compile(r"^(\s*[\w.\-\"']*)([:= ]\s*|\s+)(\S.*)$")
#: A directive of free text (redis.conf ``requirepass``, ``masterauth``) that is followed by a credential.
_DIRECTIVE = re.compile(r"(?i)(pass(word|wd|phrase)?|pwd|secret|token|credential|api[-_]?key|private[-_]?key|auth)")
#: The scanner's module: its text is part of the cache key (read, not imported).
_RULES = Path(__file__).resolve().parent.parent / "validate" / "rules"
#: What decides the scanner's answers: the rule's code, the gitleaks configuration it adds, the pinned builds.
_SCANNER_FILES = (_RULES / "no_credentials.py", _RULES / "gitleaks.toml",
                  Path(__file__).resolve().parent.parent.parent / "tools.toml")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def words(key: str) -> list[str]:
    """``apiKey`` -> [api, key]; ``REDIS_PASSWORD_FILE`` -> [redis, password, file]."""
    return [w for w in re.split(r"[^a-z0-9]+", _CAMEL.sub("_", str(key)).lower()) if w]


def is_number(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)) or (
        isinstance(value, str) and bool(_NUMBER.match(value)))


class Masker:
    """Masks documents with one settings object and one scan's findings (``flagged`` scanner lines)."""

    def __init__(self, settings: Settings, flagged: set[str] = frozenset()):
        self.settings = settings
        self.pattern = re.compile(settings.mask_keys)
        self.flagged = flagged

    def credential_key(self, key: str) -> bool:
        parts = words(key)
        if not parts or parts[-1] in REFERENCE_WORDS:
            return False
        if parts[-1] == "key" and (len(parts) == 1 or parts[-2] in ("secret", "existing")):
            return False  # secretKey, existingSecretKey: the name of a key
        return bool(self.pattern.search("_".join(parts)))

    def text(self, value: str, key: str = "") -> str:
        """A string that is not a credential itself: URL passwords and credential lines masked."""
        if f"{key}: {value}" in self.flagged:
            return MASK
        value = _USERINFO.sub(rf"\1{MASK}@", value)
        lines = []
        for line in value.split("\n"):
            match = _LINE.match(line)
            secret_line = line.strip() in self.flagged
            if match and (secret_line or (_DIRECTIVE.search(match.group(1)) and not is_number(match.group(3)))):
                line = f"{match.group(1)}{match.group(2)}{MASK}"
            elif secret_line:
                line = MASK
            lines.append(line)
        return "\n".join(lines)

    def mask(self, doc: dict) -> dict:
        """A copy of ``doc`` in which no secret value survives, though every change still shows."""
        secret_kind = doc.get("kind") in self.settings.masked_kinds

        def everything(node: Any, keep: tuple[str, ...] = ()) -> Any:
            if isinstance(node, dict):
                return {k: (v if k in keep and isinstance(v, str) else everything(v, keep)) for k, v in node.items()}
            if isinstance(node, list):
                return [everything(v, keep) for v in node]
            return MASK

        def scalar(value: Any, key: str) -> Any:
            if is_number(value) or not isinstance(value, str):
                return value
            if self.credential_key(key):
                return MASK
            return self.text(value, key)

        def walk(node: Any, key: str = "", reference: bool = False) -> Any:
            if isinstance(node, dict):
                env_name = node.get("name") if "value" in node and isinstance(node.get("name"), str) else None
                out = {}
                for k, v in node.items():
                    inside = reference or k in REFERENCE_OBJECTS
                    if env_name is not None and k == "value" and not reference:
                        out[k] = scalar(v, env_name) if not isinstance(v, (dict, list)) else walk(v, k, inside)
                    else:
                        out[k] = walk(v, k, inside)
                return out
            if isinstance(node, list):
                return [walk(v, key, reference) for v in node]
            if reference:
                return node  # names of Secrets and keys
            return scalar(node, key)

        masked = walk(doc)
        if secret_kind:
            for field_name in ("data", "stringData"):
                if field_name in doc:
                    masked[field_name] = everything(doc[field_name])
            spec = doc.get("spec")
            if isinstance(spec, dict):
                for field_name in ("data", "dataFrom"):
                    if field_name in spec:
                        masked["spec"][field_name] = everything(spec[field_name], keep=("secretKey",))
        return masked


def _candidate_lines(node: Any, key: str = "") -> Iterable[str]:
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _candidate_lines(v, str(k))
    elif isinstance(node, list):
        for v in node:
            yield from _candidate_lines(v, key)
    elif isinstance(node, str) and node and not is_number(node):
        if "\n" in node:
            yield from (line.strip() for line in node.split("\n") if line.strip())
        else:
            yield f"{key}: {node}"


def scanner_flags(docs: Iterable[dict], cache: Path | None = None) -> set[str]:
    """The candidate lines (``key: value``, or a line of free text) that the credential scanner flags.

    One scan of temporary files (in a private directory, removed at once), one per line, with the
    ``no-credentials`` rule's public :func:`scan` and its default rules and ignored keys. ``cache``
    (a directory) keeps the answer by content: the line numbers found, never a value, keyed by the
    SHA-256 of the lines and of what decides the scanner's answers (its module, gitleaks.toml, tools.toml), so a
    repeated diff does not run the scanner."""
    lines = sorted({line for doc in docs for line in _candidate_lines(doc)})
    if not lines:
        return set()
    text = "\n".join(lines) + "\n"
    scanner = b"".join(p.read_bytes() for p in _SCANNER_FILES)  # its code, its gitleaks.toml, the pinned builds
    key = hashlib.sha256(text.encode() + scanner).hexdigest()
    answer = cache / f"scan-{key}.json" if cache else None
    try:
        numbers = json.loads(answer.read_text()) if answer else None
    except (OSError, ValueError):
        numbers = None
    if numbers is None:
        from ..validate.rules import no_credentials  # noqa: PLC0415 - loaded only when needed

        with tempfile.TemporaryDirectory(prefix="dox-diff-scan-") as tmp:
            # One file per line, each file's answer cached by content (a line seen in an earlier diff is not
            # scanned again); the files not cached are scanned by one gitleaks run.
            paths = []
            for n, line in enumerate(lines):
                paths.append(Path(tmp) / f"{n}.txt")
                paths[-1].write_text(line + "\n")
            found = no_credentials.scan(paths, list(no_credentials.CONF["disableRules"]),
                                        list(no_credentials.CONF["ignoreKeys"]))
        numbers = sorted({int(path.stem) + 1 for path, _, _ in found})
        if answer:
            try:
                answer.parent.mkdir(parents=True, exist_ok=True)
                tmp_answer = answer.with_suffix(".tmp")
                tmp_answer.write_text(json.dumps(numbers))
                tmp_answer.replace(answer)
            except OSError:
                pass  # a read-only clone only costs speed
    return {lines[n - 1] for n in numbers if 0 < n <= len(lines)}
