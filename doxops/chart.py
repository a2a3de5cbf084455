"""The chart's generated parts: the library copies in each subchart and the values tables of the READMEs.

Two things under ``helm/`` are written by a program, never by hand, and ``./dox chart`` keeps them current
(``--check`` changes nothing and names what is stale; tests/chart runs the same check):

- **The library copies.** The shared ``dox-asdlc.*`` helpers live in one library chart,
  ``helm/dox-asdlc/charts/dox-asdlc-common`` (``type: library``). Each subchart declares it as a dependency and
  carries an identical copy in its own ``charts/``, so that ``helm template`` of the subchart directory works on
  its own, offline. A copy is a plain directory: Helm's packaged form (``helm dependency build``: a ``.tgz``
  and a dated ``Chart.lock``) is a binary whose bytes change on every build (and the repository commits no
  binaries); a symlink makes helm log a line on every run, kustomize's error messages included, and the
  render's input walk takes a directory symlink for a file.
- **The values tables.** Each chart's ``README.md`` is written by the pinned helm-docs from the chart's
  ``README.md.gotmpl`` and the ``# --`` comments of its ``values.yaml`` (the one place a value is described).
  helm-docs runs on a scratch copy of ``helm/``, so a check never writes into the repository. The same
  descriptions become the ``description`` of each value in the chart's ``values.schema.json`` (what editors
  show), so a value is described once.
"""

from __future__ import annotations

import filecmp
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from . import toolchain
from .errors import ToolError, UsageError
from .paths import REPO_ROOT

UMBRELLA = Path("helm") / "dox-asdlc"
LIBRARY = "dox-asdlc-common"
README = "README.md"
README_TEMPLATE = "README.md.gotmpl"


def umbrella_dir(root: Path = REPO_ROOT) -> Path:
    return root / UMBRELLA


def library_dir(root: Path = REPO_ROOT) -> Path:
    return umbrella_dir(root) / "charts" / LIBRARY


def subchart_dirs(root: Path = REPO_ROOT) -> list[Path]:
    """Every subchart of the umbrella (the directories of its charts/ but the library), sorted."""
    charts = umbrella_dir(root) / "charts"
    return sorted(p for p in charts.iterdir() if (p / "Chart.yaml").is_file() and p.name != LIBRARY)


def documented_charts(root: Path = REPO_ROOT) -> list[Path]:
    """The charts whose README has a values table: the umbrella and each subchart."""
    return [umbrella_dir(root), *subchart_dirs(root)]


def _tree(directory: Path) -> dict[str, Path]:
    return {str(p.relative_to(directory)): p for p in sorted(directory.rglob("*")) if p.is_file()}


def stale_library_copies(root: Path = REPO_ROOT) -> list[Path]:
    """The subcharts' library copies that differ from the library (a file missing, extra or changed)."""
    want = _tree(library_dir(root))
    stale = []
    for sub in subchart_dirs(root):
        copy = sub / "charts" / LIBRARY
        have = _tree(copy) if copy.is_dir() else {}
        if set(have) != set(want) or any(not filecmp.cmp(have[k], want[k], shallow=False) for k in want):
            stale.append(copy)
    return stale


def sync_library_copies(root: Path = REPO_ROOT) -> list[Path]:
    """Replace every stale library copy with the library; returns the copies written."""
    stale = stale_library_copies(root)
    for copy in stale:
        if copy.exists():
            shutil.rmtree(copy)
        shutil.copytree(library_dir(root), copy)
    return stale


def helm_docs_command(helm_docs: Path, search_root: Path, charts: list[Path]) -> list[str]:
    """helm-docs over the given charts (absolute paths below ``search_root``), each README from its template."""
    return [
        str(helm_docs),
        "--chart-search-root", str(search_root),
        "--chart-to-generate", ",".join(str(c) for c in charts),
        "--template-files", README_TEMPLATE,
        "--sort-values-order", "file",
        "--ignore-non-descriptions",
        "--skip-version-footer",
        "--log-level", "warning",
    ]


def generated_readmes(root: Path = REPO_ROOT, helm_docs: Path | None = None) -> dict[Path, str]:
    """What helm-docs writes as each documented chart's README (by the README's path in ``root``).

    It runs on a scratch copy of ``helm/``: the repository is only read.
    """
    tool = helm_docs or toolchain.resolve("helm-docs").path
    charts = documented_charts(root)
    for chart in charts:
        if not (chart / README_TEMPLATE).is_file():
            raise UsageError(f"{(chart / README_TEMPLATE).relative_to(root)}: missing; every chart's README is "
                             f"written from its {README_TEMPLATE} (copy one from another chart)")
    with tempfile.TemporaryDirectory(prefix="dox-chart-docs-") as scratch:
        copy = Path(scratch) / "helm"
        # The library (and its copies) has no values to document: left out, helm-docs does not look for them.
        shutil.copytree(root / "helm", copy, ignore=shutil.ignore_patterns(LIBRARY))
        relative = [chart.relative_to(root / "helm") for chart in charts]
        env = {"PATH": os.environ.get("PATH", ""), "HOME": scratch, "LC_ALL": "C.UTF-8", "TZ": "UTC"}
        proc = subprocess.run(helm_docs_command(tool, copy, [copy / rel for rel in relative]), cwd=copy, env=env,
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0 or "level=error" in proc.stderr or "level=warning" in proc.stderr:
            raise ToolError(f"helm-docs failed (exit {proc.returncode}):\n{proc.stderr.strip()}")
        return {root / "helm" / rel / README: (copy / rel / README).read_text(encoding="utf-8") for rel in relative}


def stale_readmes(root: Path = REPO_ROOT, helm_docs: Path | None = None) -> list[Path]:
    """The READMEs whose committed text differs from what helm-docs writes."""
    out = []
    for path, text in generated_readmes(root, helm_docs).items():
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            out.append(path)
    return out


def write_readmes(root: Path = REPO_ROOT, helm_docs: Path | None = None) -> list[Path]:
    """Write every README that differs from helm-docs' output; returns those written."""
    written = []
    for path, text in generated_readmes(root, helm_docs).items():
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            written.append(path)
    return written


VALUES_HEADER = "| Key | Type | Default | Description |"
_ROW = re.compile(r"^\| (?P<key>[^ |]+) \| (?P<type>[^|]*?) \| (?P<default>.*) \| (?P<description>[^|]*?) \|$")
SCHEMA = "values.schema.json"


def values_table(readme_text: str) -> dict[str, tuple[str, str]]:
    """``{key: (type, description)}`` of the values table helm-docs writes into a README."""
    lines = readme_text.splitlines()
    if VALUES_HEADER not in lines:
        return {}
    rows = {}
    for line in lines[lines.index(VALUES_HEADER) + 2:]:
        match = _ROW.match(line)
        if not match:
            break
        rows[match["key"]] = (match["type"], match["description"])
    return rows


def _described(schema_text: str, table: dict[str, tuple[str, str]]) -> str:
    """The schema with each documented value's ``description`` taken from the values table, same layout."""
    schema = json.loads(schema_text)
    for key, (_, description) in table.items():
        node = schema
        for part in key.split("."):
            node = (node.get("properties") or {}).get(part) if isinstance(node, dict) else None
            if node is None:
                break
        if node is not None and description:
            node["description"] = description
    indent = len(schema_text.split("\n", 2)[1]) - len(schema_text.split("\n", 2)[1].lstrip()) or 2
    return json.dumps(schema, indent=indent, ensure_ascii=False) + "\n"


def generated_schemas(root: Path = REPO_ROOT, helm_docs: Path | None = None) -> dict[Path, str]:
    """Each documented chart's values schema with the descriptions of its values table."""
    out = {}
    for readme, text in generated_readmes(root, helm_docs).items():
        schema = readme.parent / SCHEMA
        out[schema] = _described(schema.read_text(encoding="utf-8"), values_table(text))
    return out


def stale_schemas(root: Path = REPO_ROOT, helm_docs: Path | None = None) -> list[Path]:
    """The schemas whose descriptions differ from the values.yaml comments."""
    return [p for p, text in generated_schemas(root, helm_docs).items() if p.read_text(encoding="utf-8") != text]


def write_schemas(root: Path = REPO_ROOT, helm_docs: Path | None = None) -> list[Path]:
    """Write every schema whose descriptions differ from the values.yaml comments; returns those written."""
    written = []
    for path, text in generated_schemas(root, helm_docs).items():
        if path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            written.append(path)
    return written
