"""Running kustomize (with the pinned helm) the way anyone can by hand, and explaining its failures.

A values-schema failure is turned into ``file:line:col: key: problem`` lines pointing into the values
file Helm took the value from; any other failure into kustomize's own message, made relative. Every
targeted patch must change something (:func:`check_patches_applied`).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

from .. import gotools, yamlio
from ..environments import KUSTOMIZATION
from ..errors import UsageError
from ..paths import REPO_ROOT, relative
from .serialise import chart_dependencies, normalise
from .sources import check_containment


def tool_env(home: Path) -> dict[str, str]:
    """A fixed environment for the tools: no user Helm config, UTC, C.UTF-8, the run GOGC (gotools.run_env)."""
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "SYSTEMROOT", "TMPDIR")}
    return gotools.run_env({
        **keep,
        "HOME": str(home),
        "TZ": "UTC",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "HELM_CACHE_HOME": str(home / "helm-cache"),
        "HELM_CONFIG_HOME": str(home / "helm-config"),
        "HELM_DATA_HOME": str(home / "helm-data"),
        "KUBECONFIG": str(home / "no-kubeconfig"),
    })


def kustomize_command(kustomize: Path, helm: Path, directory: Path) -> list[str]:
    """The exact command, shown in the README and used by the benchmark's bare run (the render gives
    :func:`helm_command` as ``helm``: the same output, one helm start per chart)."""
    return [
        str(kustomize), "build", "--enable-helm", "--helm-command", str(helm),
        "--load-restrictor", "LoadRestrictionsNone", str(directory),
    ]


_SCHEMA_HEAD = "values don't meet the specifications of the schema"


_SCHEMA_AT = re.compile(r"^- at '(?P<pointer>[^']*)': (?P<message>.*)$")


_EXTRA_KEYS = re.compile(r"additional propert(?:y|ies) ((?:'[^']+'(?:, )?)+) not allowed")


def values_files(directory: Path) -> list[Path]:
    """The values files a kustomization hands to Helm, in the order Helm merges them."""
    data = yamlio.load_one(directory / KUSTOMIZATION) or {}
    out: list[Path] = []
    for chart in data.get("helmCharts") or []:
        if chart.get("valuesFile"):
            out.append((directory / chart["valuesFile"]).resolve())
        out.extend((directory / f).resolve() for f in chart.get("additionalValuesFiles") or [])
    return out


def _chart_aliases(root: Path) -> dict[str, str]:
    """Subchart name or alias as Helm prints it -> the umbrella's value key (the same name)."""
    return {name: name for name in chart_dependencies(root / "helm" / "dox-asdlc")}


def _locate_value(files: list[Path], keys: list[str]) -> tuple[Path, int, int] | None:
    """The last values file (Helm's winner) that sets ``keys``, with line and column."""
    from ruamel.yaml import YAML  # noqa: PLC0415 - only on this error path

    for path in reversed(files):
        try:
            node = YAML(typ="rt").load(path.read_text(encoding="utf-8"))
        except Exception:  # noqa: BLE001 - a file that does not parse was reported by the preflight
            continue
        line = col = None
        for key in keys:
            if not isinstance(node, dict) or key not in node:
                line = None
                break
            line, col = node.lc.key(key)
            node = node[key]
        if line is not None:
            return path, line + 1, col + 1
    return None


def schema_failure(stderr: str, directory: Path, root: Path) -> str | None:
    """Helm's values-schema errors as ``file:line:col: key: problem`` lines, or None if not one."""
    if _SCHEMA_HEAD not in stderr:
        return None
    aliases = _chart_aliases(root)
    files = values_files(directory)
    lines, chart = [], None
    for raw in stderr.split(_SCHEMA_HEAD, 1)[1].splitlines()[1:]:
        text = raw.strip()
        if text.startswith(": unable to run") or text.startswith("unable to run"):
            break
        if text.endswith(":") and not text.startswith("-"):
            chart = text[:-1]
            continue
        match = _SCHEMA_AT.match(text)
        if not match:
            continue
        prefix = [aliases[chart]] if chart in aliases else []
        pointer = [p for p in match["pointer"].split("/") if p]
        extra = _EXTRA_KEYS.search(match["message"])
        names = re.findall(r"'([^']+)'", extra.group(1)) if extra else [None]
        for name in names:
            keys = prefix + pointer + ([name] if name else [])
            where = _locate_value(files, keys)
            shown = ".".join(keys) or "(values)"
            at = f"{relative(where[0], root)}:{where[1]}:{where[2]}" if where else relative(directory / KUSTOMIZATION, root)
            lines.append(f"{at}: {shown}: {match['message']}")
    if not lines:
        return None
    return (f"{relative(directory, root)}: the chart's values schema rejects these values:\n  " + "\n  ".join(lines)
            + "\nfix the key or its type; the chart's values.yaml files document every key")


def explain_failure(directory: Path, stderr: str, root: Path = REPO_ROOT) -> str:
    """kustomize's message made relative to the repository, without the command-line noise."""
    schema = schema_failure(stderr, directory, root)
    if schema:
        return schema
    text = stderr.strip().replace(str(root) + "/", "")
    text = re.sub(r": unable to run: '.*?' with env=\[.*?\] \(is '.*?' installed\?\)", "", text, flags=re.S)
    text = re.sub(r"^(Error: )+", "", text)
    lines = [line for line in text.splitlines() if line.strip()]
    message = "\n  ".join(lines[-12:]) or "(no message)"
    return f"{relative(directory, root)}: kustomize build failed:\n  {message}"


def preflight(directory: Path, root: Path = REPO_ROOT) -> None:
    """Parse every YAML input strictly first, so errors name ``file:line:col`` (duplicates included)."""
    kfile = directory / KUSTOMIZATION
    metadata = (yamlio.load_one(kfile) or {}).get("buildMetadata") or []
    missing = [m for m in ("originAnnotations", "transformerAnnotations") if m not in metadata]
    if missing:
        raise UsageError(f"{relative(kfile, root)}: add `buildMetadata: [originAnnotations, transformerAnnotations]`; "
                         "the render needs it to say where each object came from")
    seen: set[Path] = set()
    candidates = [*sorted(directory.glob("*.y*ml")), *values_files(directory)]
    for path in candidates:
        path = path.resolve()
        if path in seen or not path.is_file():
            continue
        seen.add(path)
        yamlio.load_all(path)


#: Set when this process has started its first kustomize build: work that can wait for it (validation's imports
#: in ``./dox render validate``, :mod:`doxops.direct`) then runs while the build keeps the cores busy.
BUILDING = threading.Event()

#: The one question kustomize asks helm before inflating each chart (its check that helm is v3 or later).
VERSION_QUESTION = ("version", "--short")
_ANSWERS_LOCK = threading.Lock()


def _answers_dir() -> Path:
    from ..paths import cache_dir  # noqa: PLC0415

    return cache_dir() / "helm-answers"


def _identity(helm: Path) -> tuple[Path, dict]:
    """``helm`` resolved, and what identifies that binary and the question for the recorded answer."""
    binary = helm.resolve()
    st = binary.stat()
    return binary, {"path": str(binary), "inode": st.st_ino, "size": st.st_size, "mtime_ns": st.st_mtime_ns,
                    "ctime_ns": st.st_ctime_ns, "argv": list(VERSION_QUESTION)}


#: This process's answers of :func:`helm_command`, by binary identity: the record and the script are read once
#: per process, not before every build.
_COMMANDS: dict[str, Path] = {}


def recorded_version(helm: Path) -> str | None:
    """What ``helm version --short`` prints on standard output, asked of ``helm`` itself once per binary (its
    path, inode, size, modification and change times) and kept in the cache (``helm-answers/``). None when it
    fails, writes to standard error or prints what is not text; a failure is not kept (asked again next time)."""
    import hashlib  # noqa: PLC0415
    import json  # noqa: PLC0415

    binary, identity = _identity(helm)
    record = _answers_dir() / (hashlib.sha256(str(binary).encode()).hexdigest()[:16] + ".json")
    with _ANSWERS_LOCK:
        try:
            kept = json.loads(record.read_text())
            if kept.get("identity") == identity and isinstance(kept.get("stdout"), str):
                return kept["stdout"]
        except (OSError, ValueError, AttributeError):
            pass
        try:
            with tempfile.TemporaryDirectory(prefix="dox-helm-version-") as home:
                proc = subprocess.run([str(binary), *VERSION_QUESTION], capture_output=True, timeout=60,
                                      stdin=subprocess.DEVNULL, env=tool_env(Path(home)))
            stdout = proc.stdout.decode("utf-8")
        except (OSError, subprocess.TimeoutExpired, UnicodeDecodeError):
            return None
        if proc.returncode != 0 or proc.stderr or not stdout or "\0" in stdout:
            return None
        try:
            record.parent.mkdir(parents=True, exist_ok=True)
            tmp = record.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
            tmp.write_text(json.dumps({"identity": identity, "stdout": stdout}))
            tmp.replace(record)
        except OSError:
            pass  # a read-only cache: asked again next time
        return stdout


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def helm_command(helm: Path) -> Path:
    """What kustomize runs as helm (``--helm-command``): a two-branch sh script that answers kustomize's
    ``helm version --short`` with :func:`recorded_version` and runs ``helm`` itself for every other call, so each
    chart costs one helm start, not two (helm takes about 35 ms to start: its Kubernetes client packages' init).
    The script lives in the cache beside the record (where the built tools run from, never a temporary directory
    that may be mounted noexec), one per helm binary, rewritten when what it should say changes. ``helm`` itself
    when no answer was recorded or the script cannot be written. The output is byte for byte the same
    (tests/pipeline/test_helm_answer.py builds every target both ways)."""
    import hashlib  # noqa: PLC0415
    import json  # noqa: PLC0415

    key = json.dumps(_identity(helm)[1], sort_keys=True)
    known = _COMMANDS.get(key)
    if known is not None and known.is_file():
        return known
    answer = recorded_version(helm)
    if answer is None:
        return helm
    text = ("#!/bin/sh\n# Written by dox render (doxops/render/tools.py): kustomize's one version question,\n"
            "# answered with what the helm below printed for it; every other call runs that helm.\n"
            f'if [ "$#" -eq 2 ] && [ "$1" = {VERSION_QUESTION[0]} ] && [ "$2" = {VERSION_QUESTION[1]} ]; then\n'
            f"    printf '%s' {_quoted(answer)}\n    exit 0\nfi\n"
            f'exec {_quoted(str(helm.resolve()))} "$@"\n')
    script = _answers_dir() / (hashlib.sha256(text.encode()).hexdigest()[:16] + ".sh")
    try:
        if not script.is_file() or script.read_text() != text:
            tmp = script.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
            tmp.write_text(text)
            tmp.chmod(0o755)
            tmp.replace(script)
    except OSError:
        return helm
    _COMMANDS[key] = script
    return script


def build_stream(directory: Path, tools: dict[str, Path], home: Path, root: Path = REPO_ROOT) -> str:
    command = kustomize_command(tools["kustomize"], helm_command(tools["helm"]), directory)
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=root,
                          env=tool_env(home)) as started:
        BUILDING.set()
        try:
            stdout, stderr = started.communicate()
        except BaseException:  # interrupted: stop the build, as subprocess.run does
            started.kill()
            raise
    proc = subprocess.CompletedProcess(command, started.returncode, stdout, stderr)
    if proc.returncode != 0:
        raise UsageError(explain_failure(directory, proc.stderr, root))
    return proc.stdout


def check_patches_applied(directory: Path, stream: str, tools: dict[str, Path], home: Path,
                          root: Path = REPO_ROOT, inputs: set[Path] | None = None) -> None:
    """Every targeted patch must change something: one that matches nothing is an error.

    Kustomize applies a patch to whatever its target selects and is silent when nothing does. For a
    kustomization with patches, each patch is dropped in turn from a scratch copy of the sources and the
    build repeated: a patch whose removal leaves the output unchanged matched nothing (or did nothing).
    """
    kfile = directory / KUSTOMIZATION
    data = yamlio.load_one(kfile) or {}
    patches = data.get("patches") or []
    if not patches:
        return
    with tempfile.TemporaryDirectory(prefix="dox-patch-check-") as scratch:
        copy = Path(scratch) / "repo"
        for source in sorted(inputs if inputs is not None else check_containment(directory, root)):
            target = copy / source.resolve().relative_to(root.resolve())
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
        twin = copy / directory.resolve().relative_to(root.resolve())
        want = [r.data for r in normalise(stream, "patch check", directory)]
        for index, patch in enumerate(patches):
            reduced = dict(data, patches=[p for i, p in enumerate(patches) if i != index])
            (twin / KUSTOMIZATION).write_text(yamlio.dump(reduced))
            without = [r.data for r in normalise(build_stream(twin, tools, home, copy), "patch check", twin)]
            if without == want:
                target = patch.get("target") or patch.get("path") if isinstance(patch, dict) else patch
                raise UsageError(
                    f"{relative(kfile, root)}: patches[{index}] (target {target}) matches no resource or changes "
                    "nothing; check its kind, name and namespace against the objects before replacements"
                )
