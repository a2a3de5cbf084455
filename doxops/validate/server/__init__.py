"""The API-server stage: every rendered object sent to the pinned kube-apiserver as a dry-run apply.

What Kubernetes itself enforces (validation, defaulting, admission such as Pod Security, object and
annotation size limits, field validation) is asked of the real thing instead of being imitated
(ARCHITECTURE.md, decision 12). Per run and Kubernetes version, one etcd and one kube-apiserver are
started on 127.0.0.1 (free ports; :class:`doxops.cluster.cluster.Cluster` with those two components
only), the namespaces the objects use are created for real with the labels the rendered Namespace
gives them (Pod Security admission reads them), and so are the CRDs of only the custom kinds the
output uses, taken from the pinned Go modules of ``[crds]`` in tools.toml. Then every object is sent
exactly as its environment's Argo CD Application syncs it:

* client-side apply (Argo CD's default, and ``kubectl apply``'s): the object with Argo CD's tracking
  annotation and the ``kubectl.kubernetes.io/last-applied-configuration`` annotation, created with
  ``dryRun=All`` (an object that already exists, such as its own Namespace, is patched instead);
* server-side apply when the Application's ``syncOptions`` (or the object's
  ``argocd.argoproj.io/sync-options`` annotation) say ``ServerSideApply=true``: an apply patch with
  ``force`` and the ``argocd-controller`` field manager;
* field validation ``Strict``, unless the sync options say ``Validate=false``.

A rejection is an ``api-server`` error at the field the server names, with the server's own message; each
``Warning`` header is an ``api-server`` warning. The object the server would store is compared with the
manifest: every field the manifest sets must come back with the same value (``stored-as-written``,
a warning naming the field, the written and the stored value; defaults the server adds are ignored).
No secret value reaches a message: values the diff masks are masked here too. Levels of both rules can
be set in policy.yaml, and an object is exempted with ``exempt.dox-asdlc.io/<rule>: "<reason>"``.

Results are cached per object under ``<cache>/apiserver/`` (``$DOX_CACHE_DIR`` aware), keyed by the
object's content and everything else that decides the answer: the server and etcd versions, the pinned
CRD sources, the labels of the object's namespace, the apply mode and this package's code. An unchanged
object is never sent again, and when every object is answered from the cache no server is started.

The same servers answer the diff's question "can this change be made in place?" (:class:`ImmutableCheck`).

Modules: ``common`` (rule ids, annotations, the error type), ``modes`` (how Argo CD applies an object),
``masking`` (secret values out of messages), ``findings`` (answers as findings; stored-as-written),
``cache`` (what decides an answer, the result cache), ``apiserver`` (one server: HTTP, discovery, CRDs,
namespaces, applies), ``pool`` (the servers of a run), ``stage`` (validate's stage), ``immutable`` (the
diff's immutable-field verdict).
"""

from __future__ import annotations

from .apiserver import Server
from .cache import ResultCache, ServerSpec, server_spec
from .common import (EXEMPT_PREFIX, FIELD_MANAGER, HINT, LAST_APPLIED, RULE, STORED_RULE, SYNC_OPTIONS, TRACKING,
                     WORKERS, Progress, StageError)
from .findings import field_pointer, pointer_field, stored_differences, warning_text
from .immutable import HINT as IMMUTABLE_HINT
from .immutable import ImmutableCheck, merge_patch
from .masking import hide, secret_strings
from .modes import Mode, apply_modes
from .pool import Pool
from .stage import Stage

__all__ = ["EXEMPT_PREFIX", "FIELD_MANAGER", "HINT", "IMMUTABLE_HINT", "ImmutableCheck", "LAST_APPLIED", "Mode",
           "Pool", "Progress", "RULE", "ResultCache", "STORED_RULE", "SYNC_OPTIONS", "Server", "ServerSpec", "Stage",
           "StageError", "TRACKING", "WORKERS", "apply_modes", "field_pointer", "hide", "merge_patch",
           "pointer_field", "secret_strings", "server_spec", "stored_differences", "warning_text"]
