"""Operator tasks against a live cluster: minikube Secrets from the environment, Argo CD bootstrap.

Both use the operator's own ``kubectl`` and kube context (``$DOX_KUBECTL`` or ``kubectl`` on PATH).
Secret values travel on kubectl's stdin, never on a command line, and are never printed.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from pathlib import Path

from .progress import Progress, stderr as _stderr
from . import yamlio
from .environments import Environment
from .errors import ToolError, UsageError
from .paths import REPO_ROOT, relative


#: Secret -> {key in the Secret: environment variable that holds its value}.
MINIKUBE_SECRETS = {
    "gitCredentials": {"username": "DOX_GIT_USERNAME", "token": "DOX_GIT_TOKEN"},
    "anthropicApiKey": {None: "ANTHROPIC_API_KEY"},
    "redisPassword": {None: "DOX_REDIS_PASSWORD"},
}


def kubectl() -> str:
    path = os.environ.get("DOX_KUBECTL") or shutil.which("kubectl")
    if not path:
        raise ToolError("kubectl: not found on PATH; install kubectl (or set DOX_KUBECTL) and select the "
                        "cluster's context")
    return path


def _run(args: list[str], stdin: str | None = None, context: str | None = None) -> str:
    command = [kubectl(), *(["--context", context] if context else []), *args]
    proc = subprocess.run(command, input=stdin, capture_output=True, text=True)
    if proc.returncode != 0:
        raise ToolError(f"kubectl {' '.join(args[:2])} failed (exit {proc.returncode}): {proc.stderr.strip()[:400]}")
    return proc.stdout


def secret_names(root: Path = REPO_ROOT) -> dict[str, dict]:
    """``global.secrets`` as the shared values set it: names and keys, set once."""
    values = yamlio.load_one(root / "apps" / "dox-asdlc" / "values.yaml") or {}
    secrets = ((values.get("global") or {}).get("secrets")) or {}
    if not secrets:
        raise UsageError("apps/dox-asdlc/values.yaml: global.secrets is empty; it names the Secrets")
    return secrets


def secret_manifests(env: Environment, environ: dict[str, str], root: Path = REPO_ROOT) -> list[dict]:
    """The Secrets to create, with values from ``environ``; every missing variable is named at once."""
    names = secret_names(root)
    manifests, missing = [], []
    for value_key, keys in MINIKUBE_SECRETS.items():
        settings = names.get(value_key) or {}
        if not settings.get("name"):
            raise UsageError(f"apps/dox-asdlc/values.yaml: global.secrets.{value_key}.name is not set")
        data = {}
        for key, variable in keys.items():
            secret_key = key or settings.get("key")
            if variable not in environ or not environ[variable]:
                missing.append(variable)
                continue
            data[secret_key] = base64.b64encode(environ[variable].encode()).decode()
        manifests.append({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                          "metadata": {"name": settings["name"], "namespace": env.namespace,
                                       "labels": {"app.kubernetes.io/part-of": "dox-asdlc",
                                                  "app.kubernetes.io/managed-by": "dox-minikube-secrets"}},
                          "data": data})
    if missing:
        raise UsageError(f"set {', '.join(sorted(set(missing)))} in your environment first (values are read from "
                         "there and never written to the repository)")
    return manifests


def create_minikube_secrets(env: Environment, context: str | None = None, progress: Progress = _stderr) -> None:
    manifests = secret_manifests(env, dict(os.environ))
    stream = json.dumps({"apiVersion": "v1", "kind": "List", "items": manifests})
    _run(["apply", "-f", "-"], stdin=stream, context=context)
    for m in manifests:
        progress(f"secret {env.namespace}/{m['metadata']['name']}: applied (keys: {', '.join(sorted(m['data']))})")


def bootstrap_objects(env: Environment, root: Path = REPO_ROOT) -> list[Path]:
    """The bootstrap AppProject and the root Application of ``env``, as rendered."""
    directory = root / "rendered" / env.name / "argocd"
    if not directory.is_dir():
        raise UsageError(f"{relative(directory, root)}: not rendered; run `./dox render --env {env.name}` first")
    project, app = None, None
    for path in sorted(directory.glob("*.yaml")):
        for doc in yamlio.load_all(path):
            kind, name = doc.data.get("kind"), (doc.data.get("metadata") or {}).get("name", "")
            if kind == "AppProject" and name.endswith("-bootstrap"):
                project = path
            if kind == "Application" and (doc.data.get("spec") or {}).get("source", {}).get("path", "").endswith(
                    f"{env.name}/argocd"):
                app = path
    if not project or not app:
        raise UsageError(f"{relative(directory, root)}: no bootstrap AppProject or root Application found")
    return [project, app]


def argocd_bootstrap(env: Environment, context: str | None = None, progress: Progress = _stderr) -> None:
    for path in bootstrap_objects(env):
        _run(["apply", "-f", str(path)], context=context)
        progress(f"applied {relative(path)}")
    progress(f"Argo CD now manages rendered/{env.name}/argocd; watch it with `kubectl -n argocd get applications`")
