"""``./dox render``: every environment into committed plain YAML under ``rendered/``.

For each environment the pipeline runs exactly what anyone can run by hand::

    kustomize build --enable-helm --helm-command ~/.cache/dox-asdlc/tools/helm-v4.3.1/helm \\
        --load-restrictor LoadRestrictionsNone environments/<env>

(and the same for ``environments/<env>/argocd`` when it exists), then splits the stream into one
file per resource under ``rendered/<env>/workloads/`` and ``rendered/<env>/argocd/``, moves
kustomize's build metadata into a header comment, and swaps the new tree in atomically.

One module per concern:

* :mod:`.sources`: containment (nothing outside the repository, nothing remote) and
  :func:`shaping_inputs`, the one definition of what shapes rendered output (every cache key);
* :mod:`.tools`: the kustomize/helm run, the explanation of its failures (values-file lines),
  the check that every patch applies;
* :mod:`.serialise`: reading the stream as Go does, provenance, splitting, YAML out;
* :mod:`.write`: the atomic exchange, fsync, cleanup of leftovers, the per-clone lock;
* :mod:`.cache`: the render cache;
* :mod:`.run`: :func:`render_all` and :func:`check`, the public face.
"""

from __future__ import annotations

from ..paths import REPO_ROOT
from .cache import tree_hash
from .run import EnvResult, check, orphans, remove_orphans, render_all
from .serialise import template_path
from .sources import input_files, shaping_digest, shaping_inputs, targets
from .tools import kustomize_command
from .write import RENDERED, STATE_DIR, Progress, checkpoint, render_lock, stderr_progress

__all__ = [
    "REPO_ROOT", "RENDERED", "STATE_DIR", "EnvResult", "Progress", "check", "checkpoint", "input_files",
    "kustomize_command", "orphans", "remove_orphans", "render_all", "render_lock", "shaping_digest",
    "shaping_inputs", "stderr_progress", "targets", "template_path", "tree_hash",
]
