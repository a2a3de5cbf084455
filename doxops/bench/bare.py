"""The bare tools doing the pipeline's work by hand, one step after another (the denominators)."""

from __future__ import annotations

import shlex
import subprocess
import tempfile
import time
from pathlib import Path

from .. import environments, render, schemas, toolchain
from ..validate import kubeconform
from .procs import BenchError


def static_script(envs: list[environments.Environment]) -> str:
    """``kustomize build`` of every target (the command render runs), then kubeconform with validate's flags and
    schemas over each environment's output, one after another, in plain bash."""
    specs = toolchain.load_specs()
    kz, helm, kc = (toolchain.resolve(n, specs=specs).path for n in ("kustomize", "helm", "kubeconform"))
    lines = ["set -e", "out=$(mktemp -d)", "trap 'rm -rf \"$out\"' EXIT"]
    for env in envs:
        for sub, directory in render.targets(env):
            command = shlex.join(str(c) for c in render.kustomize_command(kz, helm, directory))
            lines.append(f'{command} > "$out/{env.name}-{sub}.yaml"')
        schema_set = schemas.schema_set(env.kubernetes_version)  # one worker, as validate for so few files
        lines.append(shlex.join(str(c) for c in kubeconform.command(kc, schema_set, env.kubernetes_version, []))
                     + f' "$out"/{env.name}-*.yaml > /dev/null')
    return "\n".join(lines)


def run_static(root: Path, script: str, env: dict[str, str]) -> float:
    started = time.monotonic()
    proc = subprocess.run(["bash", "-c", script], cwd=root, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BenchError(f"the bare tools failed (exit {proc.returncode}): {proc.stderr[-1500:]}")
    return time.monotonic() - started


def server_setup(root: Path, envs: list[environments.Environment]) -> list[dict]:
    """The Namespace objects (the rendered one, and any other namespace the output uses) and the CRDs of the
    custom kinds the output uses: what the stage creates before its dry-runs."""
    import yaml  # noqa: PLC0415

    from ..validate.manifests import load_directory  # noqa: PLC0415

    loaded = [m for e in envs for m in load_directory(root / "rendered" / e.name)]
    used = {(m.group, m.kind) for m in loaded}
    crds = [d for p in schemas.crd_manifests() for d in yaml.safe_load_all(Path(p).read_text())
            if d and (d["spec"]["group"], d["spec"]["names"]["kind"]) in used]
    rendered_ns = {m.name: m.data for m in loaded if m.kind == "Namespace"}
    names = sorted({m.namespace for m in loaded if m.namespace} | set(rendered_ns))
    namespaces = [rendered_ns.get(n) or {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}}
                  for n in names]
    return namespaces + crds


def run_server(root: Path, envs: list[environments.Environment], setup: list[dict], binaries: dict[str, Path]
               ) -> float:
    """The server part of the bare equivalent of validate's API-server stage (the bench adds the static tools'
    time, run just before): etcd and kube-apiserver started as the stage starts them (same harness, same flags), the namespaces
    and CRDs applied and Established, then ``kubectl apply --dry-run=server --validate=strict -R -f
    rendered/<env>`` per environment: client-side apply, the mode every Application here syncs with."""
    import yaml  # noqa: PLC0415

    from ..validate.server.apiserver import dry_run_cluster  # noqa: PLC0415

    started = time.monotonic()
    cluster = dry_run_cluster(binaries, lambda message: None)  # the stage's own start-up
    try:
        cluster.start()
        with tempfile.TemporaryDirectory(prefix="dox-bench-bare-") as tmp:
            path = Path(tmp) / "setup.yaml"
            path.write_text(yaml.safe_dump_all(setup))
            cluster.kubectl("apply", "-f", str(path))
        if any(d["kind"] == "CustomResourceDefinition" for d in setup):
            for _ in range(600):  # right after creation a CRD may have no conditions yet: kubectl wait errs
                if cluster.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=120s",
                                   check=False).returncode == 0:
                    break
                time.sleep(0.05)
            else:
                raise BenchError("bare: the CRDs were never Established")
        for env in envs:
            proc = cluster.kubectl("apply", "--dry-run=server", "--validate=strict", "-R", "-f",
                                   str(root / "rendered" / env.name), check=False)
            if proc.returncode != 0:
                raise BenchError(f"bare kubectl apply --dry-run=server of rendered/{env.name} failed: "
                                 f"{proc.stderr[-1500:]}")
        return time.monotonic() - started
    finally:
        cluster.stop()
