"""``./dox diff``: what a change does to each environment, resource by resource, like a plan.

By default both sides are the committed ``rendered/`` trees, read straight from
git (exactly what Argo CD syncs before and after). Without ``--head`` the head
side is a fresh render of the working tree; ``--rerender`` renders both sides
from their sources (the base in a temporary worktree, cached by commit).

Resources are keyed by (environment, group, kind, namespace, name) and compared
with deepdiff after lists of named items (containers, ports, volumes, env...)
are turned into maps keyed by name, so a reorder is not a change; an env list
whose values use ``$(VAR)`` keeps its order, which matters there. Secret and
ExternalSecret data and credential-looking values are shown as changed but
masked. Noise (checksum annotations) is a one-line note. Settings: diff.yaml.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml
from deepdiff import DeepDiff

from . import environments, render, yamlio
from .errors import ToolError, UsageError
from .paths import REPO_ROOT

DIFF_CONFIG = REPO_ROOT / "diff.yaml"
MASK = "(masked)"
MARKDOWN_LIMIT = 65536
FORMATS = ("text", "markdown", "json")
Progress = Callable[[str], None]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class Settings:
    noise: list[str] = field(default_factory=lambda: [r"metadata\.annotations\.checksum/.*",
                                                      r"spec\.template\.metadata\.annotations\.checksum/.*"])
    mask_keys: str = r"(?i)(pass(word|wd)?|secret|token|api[-_]?key|credential|private[-_]?key|auth)"
    masked_kinds: tuple[str, ...] = ("Secret", "ExternalSecret")


def load_settings(path: Path = DIFF_CONFIG) -> Settings:
    if not path.exists():
        return Settings()
    data = yamlio.load_one(path) or {}
    known = {"noise", "maskKeys", "maskedKinds"}
    unknown = set(data) - known
    if unknown:
        raise UsageError(f"{path.name}: unknown key(s) {', '.join(sorted(unknown))} (known: {', '.join(sorted(known))})")
    settings = Settings()
    if "noise" in data:
        settings.noise = list(data["noise"])
    if "maskKeys" in data:
        settings.mask_keys = str(data["maskKeys"])
    if "maskedKinds" in data:
        settings.masked_kinds = tuple(data["maskedKinds"])
    return settings


# --------------------------------------------------------------------------- git


def git(*args: str, root: Path = REPO_ROOT, check: bool = True, stdin: str | None = None) -> str:
    proc = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, input=stdin)
    if check and proc.returncode != 0:
        raise ToolError(f"git {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout


def resolve_ref(ref: str, root: Path = REPO_ROOT) -> str:
    proc = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], cwd=root,
                          capture_output=True, text=True)
    if proc.returncode == 0:
        return proc.stdout.strip()
    shallow = git("rev-parse", "--is-shallow-repository", root=root, check=False).strip() == "true"
    hint = ("this clone is shallow and may lack it: run `git fetch --unshallow` (or `git fetch --depth=50 origin "
            f"{ref}`)") if shallow else f"fetch it first: `git fetch origin {ref}`, or check the spelling"
    raise UsageError(f"unknown git ref {ref!r}; {hint}")


def committed_files(commit: str, root: Path = REPO_ROOT) -> dict[str, str]:
    """``{path under rendered/: text}`` at ``commit``, read with one git process."""
    names = [n for n in git("ls-tree", "-r", "--name-only", commit, "--", render.RENDERED, root=root).splitlines()
             if n.endswith((".yaml", ".yml"))]
    if not names:
        return {}
    proc = subprocess.run(["git", "cat-file", "--batch"], cwd=root, input="".join(f"{commit}:{n}\n" for n in names).encode(),
                          capture_output=True)
    if proc.returncode != 0:
        raise ToolError(f"git cat-file failed: {proc.stderr.decode(errors='replace').strip()}")
    out, data, pos = {}, proc.stdout, 0
    for name in names:
        header_end = data.index(b"\n", pos)
        size = int(data[pos:header_end].split()[2])
        out[name[len(render.RENDERED) + 1:]] = data[header_end + 1:header_end + 1 + size].decode("utf-8")
        pos = header_end + 1 + size + 1
    return out


# --------------------------------------------------------------------------- resources


Key = tuple[str, str, str, str, str]  # env, group, kind, namespace, name


def parse_files(files: dict[str, str]) -> dict[Key, dict]:
    """``{"<env>/<sub>/<file>": text}`` -> resources keyed by environment and identity."""
    out: dict[Key, dict] = {}
    for rel, text in files.items():
        env = rel.split("/", 1)[0]
        try:
            docs = list(yaml.load_all(text, Loader=yamlio.StrictLoader))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"{render.RENDERED}/{rel}:{mark.line + 1}" if mark else f"{render.RENDERED}/{rel}"
            raise UsageError(f"{where}: invalid YAML in the compared tree: {getattr(exc, 'problem', exc)}; "
                             "fix or re-render it") from None
        for doc in docs:
            if not isinstance(doc, dict):
                continue
            api = str(doc.get("apiVersion", ""))
            meta = doc.get("metadata") or {}
            key = (env, api.split("/")[0] if "/" in api else "", str(doc.get("kind")), str(meta.get("namespace") or ""),
                   str(meta.get("name")))
            out[key] = doc
    return out


def _ordered_env(items: list) -> bool:
    return any("$(" in str(i.get("value", "")) for i in items if isinstance(i, dict))


def canonical(node: Any, parent: str = "") -> Any:
    """Named lists become maps keyed ``name=<name>`` (order-free), except ordered env lists."""
    if isinstance(node, dict):
        return {k: canonical(v, k) for k, v in node.items()}
    if isinstance(node, list):
        items = [canonical(v) for v in node]
        if items and all(isinstance(i, dict) for i in items):
            for field_name in ("name", "containerPort", "port", "mountPath", "secretKey"):
                values = [i.get(field_name) for i in items]
                if all(v is not None for v in values) and len(set(map(str, values))) == len(values):
                    if parent == "env" and _ordered_env(items):
                        return items
                    return {f"{field_name}={v}": i for v, i in zip(values, items)}
        return items
    return node


_USERINFO = re.compile(r"(://)[^/@\s:]*:[^/@\s]*@")


def _scrub_text(value: str, pattern: re.Pattern) -> str:
    """Credentials inside free text: URL passwords, and ``<credential-key> <value>`` lines (redis.conf)."""
    value = _USERINFO.sub(rf"\1{MASK}@", value)
    if "\n" in value or pattern.search(value):
        lines = []
        for line in value.split("\n"):
            match = re.match(r"^(\s*[\w.\-\"']*)([:= ]\s*|\s+)(\S.*)$", line)
            if match and pattern.search(match.group(1)):
                line = f"{match.group(1)}{match.group(2)}{MASK}"
            lines.append(line)
        value = "\n".join(lines)
    return value


def mask(doc: dict, settings: Settings) -> dict:
    """A copy in which no secret value survives, though every change still shows.

    * Secret ``data``/``stringData`` and ExternalSecret ``spec.data``/``dataFrom``: every value is masked
      (keys stay, and an ExternalSecret entry's ``secretKey``, which names a key, not a value);
    * below any credential-looking key (``password``, ``token``, ``apiKey``...): everything is masked;
    * an env entry whose name looks like a credential: its ``value`` is masked;
    * in any other string: URL passwords and ``<credential-key> <value>`` lines of free text are masked.
    """
    pattern = re.compile(settings.mask_keys)
    secret_kind = doc.get("kind") in settings.masked_kinds

    def everything(node: Any, keep: tuple[str, ...] = ()) -> Any:
        if isinstance(node, dict):
            return {k: (v if k in keep and isinstance(v, str) else everything(v, keep)) for k, v in node.items()}
        if isinstance(node, list):
            return [everything(v, keep) for v in node]
        return MASK

    def walk(node: Any, key: str = "", depth: int = 0) -> Any:
        if isinstance(node, dict):
            if "name" in node and "value" in node and pattern.search(str(node["name"])):
                return {**{k: walk(v, k, depth + 1) for k, v in node.items() if k != "value"}, "value": MASK}
            out = {}
            for k, v in node.items():
                if secret_kind and depth == 0 and k in ("data", "stringData"):
                    out[k] = everything(v)
                elif key and pattern.search(key) and k not in ("name", "secretName"):
                    out[k] = everything(v)
                elif pattern.search(str(k)) and not isinstance(v, (dict, list)) and k not in ("secretName",):
                    out[k] = MASK
                elif pattern.search(str(k)) and k not in ("secretKeyRef", "secretRef", "secretStoreRef",
                                                         "secretName"):
                    out[k] = everything(v, keep=("name", "secretKey"))
                else:
                    out[k] = walk(v, k, depth + 1)
            return out
        if isinstance(node, list):
            return [walk(v, key, depth + 1) for v in node]
        if isinstance(node, str):
            return _scrub_text(node, pattern)
        return node

    masked = walk(doc)
    if secret_kind:
        spec = masked.get("spec")
        if isinstance(spec, dict):
            for field_name in ("data", "dataFrom"):
                if field_name in spec:
                    spec[field_name] = everything(doc["spec"][field_name], keep=("secretKey",))
    return masked


def _path(deepdiff_path: str) -> str:
    parts = re.findall(r"\['([^']*)'\]|\[(\d+)\]", deepdiff_path)
    return ".".join(a if a else f"[{b}]" for a, b in parts).replace(".[", "[")


@dataclass
class Change:
    action: str  # "+", "-", "~"
    key: Key
    fields: list[tuple[str, Any, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    old: dict | None = None
    new: dict | None = None

    @property
    def title(self) -> str:
        env, group, kind, namespace, name = self.key
        return f"{kind} {namespace + '/' if namespace else ''}{name}"


def compare(before: dict[Key, dict], after: dict[Key, dict], settings: Settings) -> list[Change]:
    noise = [re.compile(f"^{p}$") for p in settings.noise]
    changes: list[Change] = []
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key), after.get(key)
        if old is None:
            changes.append(Change("+", key, new=mask(new, settings)))
            continue
        if new is None:
            changes.append(Change("-", key, old=mask(old, settings)))
            continue
        if old == new:
            continue
        a, b = canonical(old), canonical(new)
        diff = DeepDiff(a, b, verbose_level=2)
        if not diff:
            continue
        change = Change("~", key, old=mask(old, settings), new=mask(new, settings))
        masked_a, masked_b = canonical(change.old), canonical(change.new)
        rows: list[tuple[str, Any, Any]] = []
        for kind_of_change, entries in diff.items():
            for deep_path, value in (entries.items() if isinstance(entries, dict) else []):
                dotted = _path(deep_path)
                if kind_of_change in ("values_changed", "type_changes"):
                    old_v, new_v = _lookup(masked_a, deep_path), _lookup(masked_b, deep_path)
                elif "added" in kind_of_change:
                    old_v, new_v = None, _lookup(masked_b, deep_path)
                else:
                    old_v, new_v = _lookup(masked_a, deep_path), None
                if any(n.match(dotted) for n in noise):
                    change.notes.append(f"{dotted} changed (noise: pods roll because their configuration changed)")
                    continue
                rows.append((dotted, old_v, new_v))
        change.fields = sorted(rows, key=lambda r: r[0])
        if change.fields or change.notes:
            changes.append(change)
    return changes


def _lookup(root: Any, deep_path: str) -> Any:
    node = root
    for a, b in re.findall(r"\['([^']*)'\]|\[(\d+)\]", deep_path):
        try:
            node = node[a] if a else node[int(b)]
        except (KeyError, IndexError, TypeError):
            return None
    return node


# --------------------------------------------------------------------------- sides


def cleanup_worktrees(root: Path) -> None:
    """Remove base worktrees that a killed ``diff --rerender`` left behind (their process is gone)."""
    worktrees = root / render.STATE_DIR / "worktrees"
    if not worktrees.is_dir():
        return
    for leftover in worktrees.iterdir():
        pid = leftover.name.split("-", 1)[0]
        if pid.isdigit() and Path(f"/proc/{pid}").exists() and int(pid) != os.getpid():
            continue  # another diff is running
        git("worktree", "remove", "--force", str(leftover / "tree"), root=root, check=False)
        shutil.rmtree(leftover, ignore_errors=True)
    git("worktree", "prune", root=root, check=False)


def rendered_side(commit: str | None, root: Path, rerender: bool, progress: Progress,
                  only: set[str] | None = None) -> dict[str, str]:
    """Files under rendered/ for one side: committed (``commit``), or a render (working tree or commit).

    ``only`` limits a render of the working tree to those environments (a base rendered from a commit
    is rendered whole, as it is cached by commit for every later diff)."""
    if commit and not rerender:
        return committed_files(commit, root)
    if commit is None:
        envs = [e for e in environments.discover(root) if only is None or e.name in only]
        results = render.render_all(envs, root=root, write=False, use_cache=False, progress=progress)
        return {f"{r.env.name}/{rel}": text for r in results for rel, text in r.files.items()}
    code = render.shaping_digest(root)  # the commit fixes the sources; this is everything else
    cache = root / render.STATE_DIR / "diff-cache" / f"{commit}-{code[:12]}.json"
    if cache.exists():
        try:
            return json.loads(cache.read_text())
        except ValueError:
            cache.unlink()
    worktrees = root / render.STATE_DIR / "worktrees"
    cleanup_worktrees(root)
    worktrees.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=worktrees))
    try:
        git("worktree", "add", "--detach", "--quiet", str(work / "tree"), commit, root=root)
        render.checkpoint("diff-worktree")
        try:
            tree = work / "tree"
            envs = environments.discover(tree)
            results = render.render_all(envs, root=tree, write=False, use_cache=False, progress=progress)
            files = {f"{r.env.name}/{rel}": text for r in results for rel, text in r.files.items()}
        finally:
            git("worktree", "remove", "--force", str(work / "tree"), root=root, check=False)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        git("worktree", "prune", root=root, check=False)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp")
    tmp.write_text(json.dumps(files))
    tmp.replace(cache)
    return files


def run_diff(base: str = "HEAD", head: str | None = None, env: str | None = None, rerender: bool = False,
             root: Path = REPO_ROOT, progress: Progress = _stderr) -> list[Change]:
    if not (root / ".git").exists():
        raise UsageError(f"{root}: not a git repository; diff compares git refs")
    base_commit = resolve_ref(base, root)
    head_commit = resolve_ref(head, root) if head else None
    settings = load_settings(root / "diff.yaml")
    before = parse_files(rendered_side(base_commit, root, rerender, progress))
    wanted = {n.strip() for n in env.split(",") if n.strip()} if env else None
    if wanted:  # checked before the head side is rendered, which then renders only these
        known = {k[0] for k in before} | {e.name for e in environments.discover(root)}
        unknown = sorted(wanted - known)
        if unknown:
            raise UsageError(f"unknown environment {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        before = {k: v for k, v in before.items() if k[0] in wanted}
    after = parse_files(rendered_side(head_commit, root, rerender, progress, only=wanted))
    if wanted:
        after = {k: v for k, v in after.items() if k[0] in wanted}
    return compare(before, after, settings)


# --------------------------------------------------------------------------- output


#: A value longer than this is cut in the text and markdown outputs (JSON keeps it whole).
VALUE_LIMIT = 2000


def _value(v: Any) -> str:
    if v is None:
        return "(none)"
    if isinstance(v, (dict, list)):
        text = json.dumps(v, sort_keys=True)
    else:
        text = json.dumps(v) if isinstance(v, str) else str(v)
    if len(text) > VALUE_LIMIT:
        text = f"{text[:VALUE_LIMIT]}... ({len(text) - VALUE_LIMIT} more characters; see --format json)"
    return text


#: Lines of a unified YAML diff kept per resource in text and markdown.
UNIFIED_LIMIT = 400


def unified(change: Change) -> list[str]:
    """A unified diff of the resource's (masked) YAML, old against new."""
    import difflib  # noqa: PLC0415

    title = f"{change.key[0]}/{change.title}"
    old = yamlio.dump(change.old).splitlines() if change.old is not None else []
    new = yamlio.dump(change.new).splitlines() if change.new is not None else []
    lines = list(difflib.unified_diff(old, new, f"a/{title}", f"b/{title}", n=3, lineterm=""))
    if len(lines) > UNIFIED_LIMIT:
        lines = lines[:UNIFIED_LIMIT] + [f"... ({len(lines) - UNIFIED_LIMIT} more lines)"]
    return lines


def _resource_lines(change: Change, with_unified: bool = False) -> list[str]:
    verb = {"+": "will be created", "-": "will be destroyed", "~": "will be changed"}[change.action]
    lines = [f"  {change.action} {change.title} {verb}"]
    for path, old, new in change.fields:
        lines.append(f"      {path}: {_value(old)} -> {_value(new)}")
    for note in change.notes:
        lines.append(f"      note: {note}")
    if with_unified:
        lines.extend(f"      {line}" for line in unified(change))
    return lines


def summary_lines(changes: list[Change]) -> list[str]:
    envs = sorted({c.key[0] for c in changes})
    out = []
    for env in envs:
        mine = [c for c in changes if c.key[0] == env]
        counts = {a: sum(1 for c in mine if c.action == a) for a in "+~-"}
        out.append(f"{env}: {counts['+']} to add, {counts['~']} to change, {counts['-']} to destroy")
    return out or ["no changes"]


def to_text(changes: list[Change], with_unified: bool = False) -> str:
    lines = summary_lines(changes)
    for env in sorted({c.key[0] for c in changes}):
        lines.append("")
        lines.append(f"{env}:")
        for change in (c for c in changes if c.key[0] == env):
            lines.extend(_resource_lines(change, with_unified))
    return "\n".join(lines) + "\n"


def to_markdown(changes: list[Change], limit: int = MARKDOWN_LIMIT, with_unified: bool = False) -> list[str]:
    """Pull-request comments: numbered parts under ``limit`` characters, whole resources per part."""
    head = "### Rendered diff\n\n" + "\n".join(f"- {line}" for line in summary_lines(changes)) + "\n"
    blocks = []
    for change in changes:
        body = "\n".join(_resource_lines(change, with_unified))
        if len(body) > limit - 2000:  # one resource alone must still fit a comment
            body = body[:limit - 2000] + "\n... (cut to fit a comment; see --format json)"
        blocks.append(f"\n<details><summary><code>{change.key[0]}</code> {change.action} {change.title}</summary>\n\n"
                      f"```diff\n{body}\n```\n</details>\n")
    parts, current = [], head
    for block in blocks:
        if len(current) + len(block) + 40 > limit and current:
            parts.append(current)
            current = ""
        current += block
    parts.append(current)
    if len(parts) > 1:
        parts = [f"**Part {i} of {len(parts)}**\n\n{p}" for i, p in enumerate(parts, 1)]
    return parts


def to_json(changes: list[Change]) -> str:
    return json.dumps([{
        "environment": c.key[0], "group": c.key[1], "kind": c.key[2], "namespace": c.key[3], "name": c.key[4],
        "action": {"+": "add", "-": "remove", "~": "change"}[c.action],
        "fields": [{"path": p, "old": o, "new": n} for p, o, n in c.fields], "notes": c.notes,
    } for c in changes], indent=2, default=str)
