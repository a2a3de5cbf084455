"""Generated inputs: environments that differ from each other, and a large set of realistic resources."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from .. import yamlio

#: The label every generated environment sets to its own name, on every object it renders: no two
#: environments share a rendered file or a source, so no content-keyed cache can share work between them.
LABEL = "bench.dox-asdlc.io/environment"


def _label(kustomization: Path, name: str) -> None:
    text = kustomization.read_text()
    if "\nlabels:" in text:
        raise ValueError(f"{kustomization}: already has labels; the generator would have to merge them")
    kustomization.write_text(text.rstrip("\n") + f"\nlabels:\n  - pairs:\n      {LABEL}: {name}\n")


def add_environments(root: Path, count: int, template: str = "minikube") -> list[str]:
    """``count`` environments env-001... copied from ``template``, each labelling everything it renders
    (workloads and Argo CD objects) with its own name; the original environments and rendered/ are removed."""
    base = root / "environments"
    names = []
    for i in range(1, count + 1):
        name = f"env-{i:03d}"
        shutil.copytree(base / template, base / name)
        settings = base / name / "argocd" / "settings.yaml"
        if settings.exists():
            settings.write_text(settings.read_text().replace(f"environment: {template}", f"environment: {name}"))
        for kustomization in sorted((base / name).rglob("kustomization.yaml")):
            _label(kustomization, name)
        names.append(name)
    for original in [p for p in base.iterdir() if p.is_dir() and p.name not in names]:
        shutil.rmtree(original)
    shutil.rmtree(root / "rendered", ignore_errors=True)
    (root / "rendered").mkdir()
    return names


def _header(text: str) -> str:
    lines = []
    for line in text.splitlines(keepends=True):
        if not line.startswith("#"):
            break
        lines.append(line)
    return "".join(lines)


def generated_resources(source: Path, target: Path, count: int) -> int:
    """``count`` resources of realistic size, laid out as rendered/ is (one file per resource, header comment
    included): copies of the files in ``source``, each copy in its own directory and namespace
    (``dox-asdlc-0001``...), every reference and in-cluster address moved with it. Returns the count."""
    files = sorted(source.glob("*.yaml"))
    originals = [(p.name, _header(p.read_text()), [d.data for d in yamlio.load_all(p)]) for p in files]
    written = copy = 0
    while written < count:
        directory = target / f"copy-{copy:04d}"
        directory.mkdir(parents=True)
        for name, header, docs in originals:
            if written >= count:
                break
            out = []
            for data in docs:
                text = json.dumps(data)
                if copy:
                    text = (text.replace('"namespace": "dox-asdlc"', f'"namespace": "dox-asdlc-{copy:04d}"')
                            .replace(".dox-asdlc.svc", f".dox-asdlc-{copy:04d}.svc"))
                doc = json.loads(text)
                if copy and doc.get("kind") == "Namespace":
                    doc["metadata"]["name"] = f"dox-asdlc-{copy:04d}"
                out.append(yamlio.dump(doc))
            (directory / name).write_text(header + "---\n" + "---\n".join(out))
            written += len(out)
        copy += 1
    return written
