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

from .. import lazy


#: Public name -> the module that defines it. Loaded on first use (PEP 562), so a caller that only needs
#: the cache check (a warm no-op) does not import the kustomize runner and the serialiser.
_EXPORTS = {
    "REPO_ROOT": "doxops.paths",
    "tree_hash": ".cache",
    "EnvResult": ".run", "check": ".run", "orphans": ".run", "remove_orphans": ".run", "render_all": ".run",
    "template_path": ".serialise",
    "input_files": ".sources", "shaping_digest": ".sources", "shaping_inputs": ".sources", "targets": ".sources",
    "kustomize_command": ".tools",
    "RENDERED": ".write", "STATE_DIR": ".write", "Progress": ".write", "checkpoint": ".write",
    "render_lock": ".write", "stderr_progress": ".write",
}
__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy.exports(__name__, _EXPORTS)
