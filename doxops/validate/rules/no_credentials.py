"""no-credentials: no credential in any validated file, as the scanner gitleaks sees it.

Subjects: every file of the validated set, scanned with the maintained scanner
`gitleaks <https://github.com/gitleaks/gitleaks>`_ (pinned in ``tools.toml``),
once per validation over all the files not scanned before. A finding names the
file's line and the gitleaks rule that matched, never the value: gitleaks runs
with ``--redact``.

The rules are gitleaks' own (about 220: AWS, GitHub, GitLab, Slack, Stripe, ...
tokens, private keys, JSON Web Tokens, and ``generic-api-key``) with the
additions of ``gitleaks.toml`` beside this module, each explained there:
``url-basic-auth`` (``user:password@`` in URLs), ``generic-password`` (a
literal value under a key naming a password, secret or key: ``DB_PASSWORD:
...``) and a wider ``aws-access-token``.

Entropy: gitleaks has no bare high-entropy detector (what made checksums fail
under the old scanner's hex and base64 plugins, which were therefore off);
entropy is only a threshold some rules add to their pattern. The one that
matters here is on: ``generic-api-key`` reports a value of entropy 3.5 or more
under a key containing ``key``, ``secret``, ``token``, ``password``, ``auth``,
... That includes ``checksum/secret: <sha256>``, which is why ``checksum/*`` is
among the ignored keys below; with ``ignoreKeys: []`` the checksum annotation
fails. Nothing reports NetworkPolicy CIDRs.

Conf ``disableRules`` lists gitleaks rule ids not to run (default: none). An
id that neither gitleaks' default configuration (read from the pinned binary)
nor ``gitleaks.toml`` defines is a usage error naming the policy file and line.

Conf ``ignoreKeys`` (shell-style patterns) lists keys that only name a Secret
or hold a hash (``secretName: git-credentials``, an ExternalSecret's
``secretKey: password``, ``checksum/secret: <sha256>``): a line that holds
such a key is not reported by the keyword rules, ``generic-password`` and
``generic-api-key`` (the shape rules, a GitHub token's, still are). A false
positive is silenced on its line with the comment ``# pragma:
allowlist secret`` (or gitleaks' own ``gitleaks:allow``), or for the whole
resource with the exemption annotation.

Cost: one gitleaks process per scan: Go's regexp build below 1,000 files (starts in
about 0.05 s), the RE2 build from there on (about 0.5 s to start, compiling its engine,
then about 0.2 ms per small file: about 2 s for 10,000 resources). Answers are
cached per file content, so an unchanged file is never scanned again.

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

import contextlib
import functools
import re
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from ...errors import ToolError, UsageError
from ..engine import Context, Finding
from ..options import defaults
from ._common import esc

ID = "no-credentials"
LEVEL = "error"
#: The engine runs this rule after the others: its answers come from the gitleaks run the validation starts in
#: the background (:func:`scan_in_background`), and the other rules can run meanwhile.
WAITS_ON_SCANNER = True
#: Our gitleaks configuration: gitleaks' default rules plus what they miss (see the file).
CONFIG = Path(__file__).with_name("gitleaks.toml")
#: The rules that report a value by the key it is under; ``ignoreKeys`` applies to them.
KEYWORD_RULES = ("generic-api-key", "generic-password")


@dataclass(frozen=True)
class Options:
    disableRules: list[str] = field(default_factory=list)  #: gitleaks rule ids not to run
    #: keys whose lines the keyword rules may not report (shell-style patterns)
    ignoreKeys: list[str] = field(default_factory=lambda: ["secretName", "secretKey", "secretRef", "existingSecret",
                                                           "existingSecretKey", "checksum/*"])

    @staticmethod
    def validate(name: str, value: object) -> str | None:
        """Checked when the policy is read, so a misspelt rule id names its file and line."""
        return _unknown_rules(value) if name == "disableRules" and value else None  # type: ignore[arg-type]


CONF = defaults(Options)


#: From this many files on, a scan uses the RE2 build (tools.toml [tools.gitleaks-re2]): it starts about 0.5 s
#: slower and scans about 3.5 times faster; at 1,000 generated manifests both took 0.8 s on 2 cores.
RE2_FROM = 1000


#: The optional build linked with the system's RE2 (tools.toml [tools.gitleaks-re2-system]) answers every scan
#: where it was built (``./dox tools``): it starts like the Go regexp build and scans like the RE2 one. False:
#: only the two portable builds (tests compare all three).
SYSTEM_RE2 = True


#: Set when the system-RE2 build failed to run in this process: the rest of its scans use the portable builds.
_SYSTEM_FAILED = threading.Event()


def _gitleaks(files: int = 0, portable: bool = False):
    """The pinned gitleaks for a scan of ``files`` files: the system-RE2 build if it was built (never built
    here), else (or with ``portable``, or when ``$DOX_GITLEAKS`` / ``$DOX_GITLEAKS_RE2`` name a binary, which is
    then used as tools.toml's resolution order says) Go's regexp below :data:`RE2_FROM` and RE2 from there on,
    built on first use. Every build is the same module and version, so the same rules."""
    import os  # noqa: PLC0415

    from ... import toolchain  # noqa: PLC0415

    forced = any(os.environ.get(v) for v in ("DOX_GITLEAKS", "DOX_GITLEAKS_RE2"))
    if SYSTEM_RE2 and not portable and not forced and not _SYSTEM_FAILED.is_set():
        try:
            found = toolchain.resolve_optional("gitleaks-re2-system")
        except (ToolError, UsageError, KeyError, OSError):  # a broken or half-replaced entry: the portable builds
            found = None
        if found is not None:
            return found
    return toolchain.resolve("gitleaks-re2" if files >= RE2_FROM else "gitleaks")


@functools.lru_cache(maxsize=4)
def _rules_of(binary: str, size: int, mtime_ns: int) -> tuple[str, ...]:
    """The rule ids of the default configuration ``binary`` embeds (its config/gitleaks.toml, compiled in as
    text: gitleaks has no command that lists its rules), then those of :data:`CONFIG`."""
    import tomllib  # noqa: PLC0415

    embedded = re.findall(rb'\[\[rules\]\]\nid = "([^"\n]+)"', Path(binary).read_bytes())
    if not embedded:
        raise ToolError(f"{binary}: found no rule ids in the configuration gitleaks embeds; the no-credentials "
                        "rule reads them there to check disableRules. Check tools.toml [tools.gitleaks].")
    ours = [rule["id"] for rule in tomllib.loads(CONFIG.read_text()).get("rules", [])]
    return tuple(dict.fromkeys([i.decode() for i in embedded] + ours))


def known_rules() -> tuple[str, ...]:
    """Every rule id a scan runs: gitleaks' default configuration's (read from the pinned binary) and ours."""
    binary = _gitleaks().path
    st = binary.stat()
    return _rules_of(str(binary), st.st_size, st.st_mtime_ns)


def _unknown_rules(names: list[str]) -> str | None:
    """Why ``names`` are not all gitleaks rule ids; None when they are."""
    import difflib  # noqa: PLC0415

    known = known_rules()
    unknown = [n for n in names if n not in known]
    if not unknown:
        return None
    close = sorted({c for n in unknown for c in difflib.get_close_matches(n, known, n=3)})
    hint = f" (close: {', '.join(close)})" if close else ""
    return f"unknown gitleaks rule(s) {', '.join(unknown)}{hint}; known: {', '.join(sorted(known))}"


def _check_rules(names) -> None:
    problem = _unknown_rules(list(names)) if names else None
    if problem:
        raise UsageError(f"policy.yaml: rule {ID}: {problem}")


def _key_regex(pattern: str) -> str:
    """A shell-style key pattern (``checksum/*``) as a Go regular expression for one key."""
    out, i = [], 0
    while i < len(pattern):
        char = pattern[i]
        if char == "*":
            out.append(r"""[^\s:="'{},\[\]]*""")
        elif char == "?":
            out.append(r"""[^\s:="'{},\[\]]""")
        elif char == "[" and "]" in pattern[i + 2:]:
            close = pattern.index("]", i + 2)
            body = pattern[i + 1:close]
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body).replace("\\", "\\\\") + "]")
            i = close
        else:
            out.append(re.escape(char))
        i += 1
    return "".join(out)


def _config_text(ignore_keys) -> str:
    """Our configuration, plus an allowlist of the lines that hold an ignored key (for the keyword rules)."""
    text = CONFIG.read_text()
    if not ignore_keys:
        return text
    import json  # noqa: PLC0415 - a JSON string is a TOML basic string

    keys = "|".join(_key_regex(k) for k in sorted(ignore_keys))
    line = rf"""(?:^|[\s{{,"'\[])(?:{keys})["']?[ \t]*(?::|=)"""
    return (text + "\n# Added by no_credentials.py: the rule's ignoreKeys.\n[[allowlists]]\n"
            'description = "ignoreKeys"\n'
            f"targetRules = {json.dumps(list(KEYWORD_RULES))}\n"
            'regexTarget = "line"\n'
            f"regexes = [{json.dumps(line)}]\n")


#: Scan results by file content and scanner settings: a file already scanned is not scanned again.
_MEMO: dict[str, list[tuple[int, str]]] = {}
#: Held while gitleaks runs: a scan that finds files unanswered waits, then takes what the running one found.
_LOCK = threading.Lock()
#: The answers of earlier scans, one row per (file content, scanner settings), in the per-user cache.
ANSWERS = "answers.sqlite"


def _cache_dir() -> Path:
    from ...paths import cache_dir  # noqa: PLC0415

    return cache_dir() / "secret-scan"


def _answers(write: bool = False):
    """A connection to the answers table, or None (no cache yet, or one that cannot be used: it costs speed only).
    A file that is not a database (a crash on a disk that lies about flushing) is removed and started again."""
    import sqlite3  # noqa: PLC0415

    path = _cache_dir() / ANSWERS
    if not write and not path.exists():
        return None
    try:
        if write:
            path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, timeout=60)
        db.execute("CREATE TABLE IF NOT EXISTS answers (key TEXT PRIMARY KEY, found TEXT NOT NULL) WITHOUT ROWID")
        return db
    except sqlite3.OperationalError:
        return None  # read-only, locked for a minute
    except sqlite3.DatabaseError:
        path.unlink(missing_ok=True)
        return None
    except OSError:
        return None


def _cached(keys: list[str]) -> dict[str, list[tuple[int, str]]]:
    """The stored answers of ``keys`` that have one."""
    import json  # noqa: PLC0415
    import sqlite3  # noqa: PLC0415

    db = _answers() if keys else None
    if db is None:
        return {}
    got = {}
    try:
        for i in range(0, len(keys), 500):
            chunk = keys[i:i + 500]
            rows = db.execute(f"SELECT key, found FROM answers WHERE key IN ({','.join('?' * len(chunk))})", chunk)
            got.update((key, [tuple(x) for x in json.loads(found)]) for key, found in rows)
    except (sqlite3.Error, ValueError):
        return {}
    finally:
        db.close()
    return got


def _store(answers: dict[str, list[tuple[int, str]]]) -> None:
    """Keep ``answers`` (one transaction: all or none of them)."""
    import json  # noqa: PLC0415
    import sqlite3  # noqa: PLC0415

    db = _answers(write=True)
    if db is None:
        return
    try:
        with db:
            db.executemany("INSERT OR REPLACE INTO answers VALUES (?, ?)",
                           [(key, json.dumps(found)) for key, found in answers.items()])
    except sqlite3.Error:
        pass  # a full disk or a read-only cache only costs speed
    finally:
        db.close()


def scan(paths: list[Path], disable_rules: list[str] = (), ignore_keys: list[str] = ()) -> list[tuple[Path, int, str]]:
    """(path, line, gitleaks rule id) of every credential found in ``paths``, cached by content.

    The cache key is the file's SHA-256 plus the scanner version and settings (our configuration, the disabled
    rules, the ignored keys, this module's code), so a cached answer is exactly what a fresh scan would give; the
    answers live in the per-user cache (``secret-scan/answers.sqlite``, one row per key: one file per answer
    made a cold scan of 10,000 files spend seconds creating files). The files not cached are scanned by one
    gitleaks run; while another scan runs (:func:`scan_in_background`), this one waits and takes its answers.
    """
    return _scan(paths, disable_rules, ignore_keys)


def scan_in_background(paths: list[Path], disable_rules: list[str] = (),
                       ignore_keys: list[str] = ()) -> threading.Thread:
    """Start :func:`scan` of ``paths`` on a thread and return it (join it to wait; its errors are raised by the
    next :func:`scan` of the same files, which scans them again). Every :func:`scan` called meanwhile waits for
    it, then answers from its results: one gitleaks run serves a whole validation.
    """
    _check_rules(disable_rules)
    _LOCK.acquire()  # taken here, before any other scan can start: nothing runs twice

    def run() -> None:
        try:
            _scan(paths, disable_rules, ignore_keys, locked=True)
        except Exception:  # noqa: BLE001 - the files stay unanswered; the rule's own scan reports the failure
            pass
        finally:
            _LOCK.release()

    thread = threading.Thread(target=run, name="credential-scan", daemon=True)
    try:
        thread.start()
    except BaseException:
        _LOCK.release()  # never started: no scan may wait for it
        raise
    return thread


def _scan(paths: list[Path], disable_rules, ignore_keys, locked: bool = False) -> list[tuple[Path, int, str]]:
    import hashlib  # noqa: PLC0415
    import json  # noqa: PLC0415

    from ... import toolchain  # noqa: PLC0415

    _check_rules(disable_rules)  # an unknown rule is a usage error before anything is read
    own_code = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()  # a changed rule invalidates answers
    specs = toolchain.load_specs()
    builds = [(specs[name].version, specs[name].tags)  # any of them may answer
              for name in ("gitleaks", "gitleaks-re2", "gitleaks-re2-system") if name in specs]
    settings = json.dumps([builds, CONFIG.read_text(), sorted(disable_rules), sorted(ignore_keys), own_code])
    salt = hashlib.sha256(settings.encode()).hexdigest()[:16]
    keyed: list[tuple[Path, str]] = []
    not_utf8: set[Path] = set()
    for path in paths:
        with open(path, "rb") as handle:
            data = handle.read()
        keyed.append((Path(path), hashlib.sha256(data).hexdigest() + "-" + salt))
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            not_utf8.add(Path(path))
    _MEMO.update(_cached([key for _, key in keyed if key not in _MEMO]))
    if any(key not in _MEMO for _, key in keyed):
        with contextlib.nullcontext() if locked else _LOCK:
            # again: another scan may have run. One file per content: answers are keyed by content (a chart's
            # library copied into each subchart is scanned once).
            todo = {key: path for path, key in reversed(keyed) if key not in _MEMO}
            if todo:
                fresh = _run(list(todo.values()), list(disable_rules), list(ignore_keys), not_utf8)
                answers = {key: fresh.get(n, []) for n, key in enumerate(todo)}
                _MEMO.update(answers)
                _store(answers)
    return sorted({(path, line, kind) for path, key in keyed for line, kind in _MEMO[key]})


def _scratch_base() -> str | None:
    """Where the scan's directory of links goes: a memory file system if there is one (10,000 links take
    0.05 s there, and up to seconds on a busy disk), else the usual temporary directory."""
    import os  # noqa: PLC0415

    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK | os.X_OK) else None


def _run(paths: list[Path], disable_rules: list[str], ignore_keys: list[str],
         not_utf8: set[Path] = frozenset()) -> dict[int, list[tuple[int, str]]]:
    """One gitleaks run over ``paths``: {index in paths: sorted [(line, rule id)], one rule per line}.

    gitleaks scans one directory, so each file is linked into a private one as ``<index>``: every file given is
    scanned whatever its name (gitleaks' allowlist of paths, lock files and images, is not asked; it still skips
    binary content), and rules that look at paths see the file's own. On a line that several rules report, the
    finding names the most specific: a shape rule before a generic-* one, then the first id in order."""
    import json  # noqa: PLC0415
    import os  # noqa: PLC0415
    import subprocess  # noqa: PLC0415
    import tempfile  # noqa: PLC0415

    tool = _gitleaks(len(paths))
    with tempfile.TemporaryDirectory(prefix="dox-gitleaks-", dir=_scratch_base()) as tmp:
        root = Path(tmp) / "files"
        root.mkdir()
        for n, path in enumerate(paths):
            if path in not_utf8:  # Go's regexp and RE2 read invalid UTF-8 differently: both get U+FFFD for it
                Path(root, str(n)).write_text(path.read_bytes().decode("utf-8", "replace"), encoding="utf-8")
            else:
                os.symlink(os.path.abspath(path), os.path.join(root, str(n)))
        config = Path(tmp) / "gitleaks.toml"
        config.write_text(_config_text(ignore_keys))
        report = Path(tmp) / "report.json"
        argv = ["dir", str(root), "--follow-symlinks", "--config", str(config),
                "--gitleaks-ignore-path", tmp, "--redact", "--no-banner", "--no-color", "--log-level", "error",
                "--exit-code", "0", "--report-format", "json", "--report-path", str(report)]
        if disable_rules:
            argv += ["--enable-rule", ",".join(r for r in known_rules() if r not in disable_rules)]
        from ... import gotools  # noqa: PLC0415

        env = gotools.run_env({k: v for k, v in os.environ.items() if not k.startswith("GITLEAKS_")})
        binary = tool.path
        try:
            proc = subprocess.run([str(binary), *argv], cwd=tmp, env=env, capture_output=True, text=True,
                                  stdin=subprocess.DEVNULL)
        except OSError as exc:
            if not tool.spec.optional:
                raise ToolError(f"gitleaks ({binary}) could not be started: {exc}") from None
            proc = subprocess.CompletedProcess([], 127, "", str(exc))
        if proc.returncode != 0 and tool.spec.optional:
            # The system's libre2 changed or went away since the build (or the build is being replaced): say so
            # once per process, and scan with a portable build from now on.
            reason = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
            if not _SYSTEM_FAILED.is_set():
                _SYSTEM_FAILED.set()
                print(f"validate: {binary} failed ({reason}); scanning with the portable gitleaks build. Run "
                      "`./dox tools` to rebuild the optional build", file=sys.stderr, flush=True)
            binary = _gitleaks(len(paths), portable=True).path
            proc = subprocess.run([str(binary), *argv], cwd=tmp, env=env, capture_output=True, text=True,
                                  stdin=subprocess.DEVNULL)
        try:
            if proc.returncode != 0:
                raise ValueError(f"exit {proc.returncode}")
            results = json.loads(report.read_text())
        except (OSError, ValueError) as exc:
            tail = "\n".join(proc.stderr.strip().splitlines()[-10:])
            raise ToolError(f"gitleaks ({binary}) failed to scan {len(paths)} file(s) ({exc}):\n{tail}") from None
    best: dict[tuple[int, int], tuple[bool, str]] = {}
    for result in results:
        n = int(os.path.basename(result.get("SymlinkFile") or result["File"]))  # a copy (not UTF-8) is no link
        rule = str(result["RuleID"])
        rank = ("generic" in rule, rule)  # gitleaks' own precedence: a specific rule before a generic one
        place = (n, int(result["StartLine"]))
        best[place] = min(best.get(place, rank), rank)
    by_file: dict[int, list[tuple[int, str]]] = {}
    for (n, line), (_, rule) in sorted(best.items()):
        by_file.setdefault(n, []).append((line, rule))
    return by_file


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
    for path, line, kind in scan(list(by_file), list(conf.get("disableRules") or []), ignore_keys):
        in_file = sorted(by_file[path], key=lambda x: x.line)
        m = in_file[0]
        for candidate in in_file:  # the document the line belongs to: the last one starting at or before it
            if candidate.line <= line:
                m = candidate
        pointer = _pointer_at(path, m.index, line)
        yield Finding(m, pointer, f"{m.ref}: line {line} holds a credential (gitleaks: {kind}); move it to "
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
