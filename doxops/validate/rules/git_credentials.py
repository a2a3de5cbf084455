"""git-credentials: only the singleton holds the Git credentials, mounted read-only.

Subject: the Secret named by conf ``secretName``, else by
``gitCredentialsSecret`` in policy.yaml; when neither is set the rule checks
nothing. The Secret may be used (as a ``secret`` or ``projected`` volume, or
through ``envFrom``/``secretKeyRef``) only by workloads whose role label is
``singleton`` (conf ``role``); any other workload that uses it fails, at the
reference. A singleton must mount it as a volume that its containers mount
with ``readOnly: true``; if no singleton mounts it, each singleton is reported.

Passing::

    kind: Deployment
    metadata: {labels: {dox-asdlc.io/role: singleton}}
    spec: {template: {spec:
      volumes: [{name: git, secret: {secretName: git-credentials}}]
      containers: [{volumeMounts: [{name: git, mountPath: /etc/git, readOnly: true}]}]}}

Failing (a workload of another role reads the credentials)::

    kind: Deployment
    metadata: {labels: {dox-asdlc.io/role: autoscaled-pool}}
    spec: {template: {spec: {containers: [{envFrom: [{secretRef: {name: git-credentials}}]}]}}}
"""

from __future__ import annotations

from dataclasses import dataclass

from ..engine import Context, Finding
from ..options import defaults
from ._common import container_name, refs_of

ID = "git-credentials"
LEVEL = "error"


@dataclass(frozen=True)
class Options:
    role: str = "singleton"  #: the only role that may use the Secret
    secretName: str | None = None  #: the Git credentials Secret; null: gitCredentialsSecret of policy.yaml


CONF = defaults(Options)


def check(ctx: Context, conf: dict):
    secret = conf.get("secretName") or ctx.config.git_credentials_secret
    if not secret:
        return
    role = conf.get("role", "singleton")
    singletons = []
    mounted = False
    for workload in ctx.workloads():
        m = workload.manifest
        refs = [r for r in refs_of(ctx, workload) if r.kind == "Secret" and r.name == secret]
        if ctx.role(m) != role:
            for ref in refs:
                yield Finding(m, ref.pointer, f"{m.ref}: {ref.via} uses the Git credentials Secret {secret}, but only "
                                              f"{role} workloads may (this one's role is {ctx.role(m) or 'unset'}); "
                                              "remove the reference")
            continue
        singletons.append(workload)
        volumes = {r.volume for r in refs if r.volume}
        for container, cp in workload.containers(init=True):
            for k, mount in enumerate(container.get("volumeMounts") or []):
                if not isinstance(mount, dict) or not isinstance(mount.get("name"), str) or mount["name"] not in volumes:
                    continue
                mounted = True
                if mount.get("readOnly") is not True:
                    pointer = f"{cp}/volumeMounts/{k}" + ("/readOnly" if "readOnly" in mount else "")
                    yield Finding(m, pointer, f"{m.ref}: container {container_name(container)} mounts the Git "
                                              f"credentials Secret {secret} (volume {mount.get('name')}) writable; "
                                              "set readOnly: true")
    if mounted:
        return
    for workload in singletons:
        m = workload.manifest
        pointer = f"{workload.pointer}/volumes" if "volumes" in workload.pod_spec else workload.pointer
        yield Finding(m, pointer, f"{m.ref}: no {role} workload mounts the Git credentials Secret {secret}; add a "
                                  f"volume with secret.secretName {secret} and mount it with readOnly: true")
