"""config-refs: every ConfigMap and Secret a pod reads exists, with the keys it reads.

Subjects: the pod spec of every workload: ``envFrom`` (``configMapRef``,
``secretRef``), ``env[].valueFrom`` (``configMapKeyRef``, ``secretKeyRef``)
and volumes (``configMap``, ``secret``, ``projected`` sources), of containers
and init containers. A reference marked ``optional: true`` is skipped.

* A ConfigMap must be rendered in the pod's namespace, or be listed in
  ``providedConfigMaps`` (policy.yaml). A key it reads (``configMapKeyRef``,
  volume ``items``) must be in the rendered ConfigMap's ``data`` or
  ``binaryData``.
* A Secret must be rendered, or be created by a rendered ExternalSecret
  (``external-secrets.io``; the Secret is ``spec.target.name``, by default the
  ExternalSecret's name), or be listed in ``providedSecrets``. A key it reads
  must be one the Secret is known to have: the rendered Secret's ``data`` and
  ``stringData``, the ExternalSecret's ``spec.data[].secretKey`` (or its
  ``target.template.data`` keys), the list in ``providedSecrets``. The keys are
  unknown, and not checked, when the ExternalSecret uses ``dataFrom`` or
  ``templateFrom``, or ``providedSecrets`` lists the Secret without keys.

Passing::

    kind: ExternalSecret                        kind: Deployment ... containers:
    metadata: {name: cache-password}            - env:
    spec: {data: [{secretKey: password,           - name: PASSWORD
      remoteRef: {key: demo/cache}}]}               valueFrom: {secretKeyRef: {name: cache-password, key: password}}

Failing (the ExternalSecret makes the key ``password``, not ``pass``; no ConfigMap ``settings``)::

    - env:
      - name: PASSWORD
        valueFrom: {secretKeyRef: {name: cache-password, key: pass}}
      envFrom: [{configMapRef: {name: settings}}]
"""

from __future__ import annotations

from dataclasses import dataclass

from ..engine import Context, Finding
from ..options import defaults
from ._common import ByName, ns_of, refs_of

ID = "config-refs"
LEVEL = "error"


@dataclass(frozen=True)
class Options:
    """No options (providedSecrets and providedConfigMaps are policy settings)."""


CONF = defaults(Options)

_UNKNOWN = None


def _external_secret_keys(es) -> set[str] | None:
    spec = es.data.get("spec") or {}
    keys: set[str] | None = {str(d.get("secretKey")) for d in spec.get("data") or []
                             if isinstance(d, dict) and d.get("secretKey")}
    if spec.get("dataFrom"):
        keys = _UNKNOWN
    template = (spec.get("target") or {}).get("template")
    if isinstance(template, dict) and (template.get("data") or template.get("templateFrom")):
        if template.get("templateFrom"):
            return _UNKNOWN
        templated = {str(k) for k in template.get("data") or {}}
        if template.get("mergePolicy") == "Merge":
            return None if keys is None else keys | templated
        return templated
    return keys


def _secret_keys(secret) -> set[str] | None:
    if secret.data.get("type") == "kubernetes.io/service-account-token":
        return _UNKNOWN  # filled in by the token controller
    keys: set[str] = set()
    for field in ("data", "stringData"):
        if isinstance(secret.data.get(field), dict):
            keys.update(str(k) for k in secret.data[field])
    return keys


def _merge(sources: list) -> set[str] | None:
    """The keys of an object made by several sources; unknown if any source's are."""
    if any(keys is None for keys in sources):
        return None
    return set().union(*sources)


def check(ctx: Context, conf: dict):
    configmaps = ByName()
    for cm in ctx.of_kind("ConfigMap"):
        keys = {str(k) for field in ("data", "binaryData") if isinstance(cm.data.get(field), dict)
                for k in cm.data[field]}
        configmaps.add(cm.name, ns_of(ctx, cm), keys)
    secrets = ByName()
    for secret in ctx.of_kind("Secret"):
        secrets.add(secret.name, ns_of(ctx, secret), _secret_keys(secret))
    for es in ctx.of_kind("ExternalSecret"):
        if es.group != "external-secrets.io":
            continue
        target = ((es.data.get("spec") or {}).get("target") or {}).get("name") or es.name
        secrets.add(str(target), ns_of(ctx, es), _external_secret_keys(es))
    provided_cms = set(ctx.config.provided_configmaps or [])
    provided_secrets = ctx.config.provided_secrets or {}

    for workload in ctx.workloads():
        m = workload.manifest
        ns = ns_of(ctx, m)
        for ref in refs_of(ctx, workload):
            if ref.optional:
                continue
            if not ref.name:
                yield Finding(m, ref.pointer, f"{m.ref}: {ref.via} references a {ref.kind} without a name; name it")
                continue
            if ref.kind == "ConfigMap":
                found = configmaps.get(ref.name, ns)
                if found:
                    keys = _merge(found)
                elif ref.name in provided_cms:
                    keys = None
                else:
                    yield Finding(m, ref.pointer, f"{m.ref}: {ref.via} references ConfigMap {ref.name}, which is not "
                                                  f"rendered in namespace {ns or '(none)'} nor listed in "
                                                  "providedConfigMaps; render it, fix the name, or mark the "
                                                  "reference optional: true")
                    continue
            else:
                found = secrets.get(ref.name, ns)
                if found:
                    keys = _merge(found)
                elif ref.name in provided_secrets:
                    listed = provided_secrets[ref.name]
                    keys = None if listed is None else {str(k) for k in listed}
                else:
                    yield Finding(m, ref.pointer, f"{m.ref}: {ref.via} references Secret {ref.name}, which is not "
                                                  f"rendered in namespace {ns or '(none)'}, not created by an "
                                                  "ExternalSecret, nor listed in providedSecrets; add an "
                                                  "ExternalSecret, list it in providedSecrets, or fix the name")
                    continue
            if keys is None:
                continue
            for key, pointer in ref.keys:
                if key not in keys:
                    have = f"whose keys are {', '.join(sorted(keys))}" if keys else "which has no keys"
                    yield Finding(m, pointer, f"{m.ref}: {ref.via} reads key {key} of {ref.kind} {ref.name}, "
                                              f"{have}; fix the key or add it to the {ref.kind}")
