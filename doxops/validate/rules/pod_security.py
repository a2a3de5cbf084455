"""pod-security: every pod meets the Pod Security "restricted" profile, and more.

Subjects: the pod spec of every workload and all its containers (init
containers too). One finding per problem, at the field at fault (or where the
missing field belongs):

* pod: no ``hostNetwork``, ``hostPID``, ``hostIPC``; no ``hostPath`` volume;
* each container, its own setting winning over the pod's:
  ``runAsNonRoot: true``; a numeric, non-zero ``runAsUser``;
  ``seccompProfile.type`` ``RuntimeDefault`` or ``Localhost``;
* each container's own ``securityContext``: ``allowPrivilegeEscalation:
  false``; ``capabilities.drop`` contains ``ALL`` and ``capabilities.add`` at
  most ``NET_BIND_SERVICE``; not ``privileged``; and, with conf
  ``readOnlyRootFilesystem`` (on by default), ``readOnlyRootFilesystem: true``;
* no container port with a ``hostPort``.

Passing::

    spec:
      securityContext: {runAsNonRoot: true, runAsUser: 10001, seccompProfile: {type: RuntimeDefault}}
      containers:
        - securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true,
                            capabilities: {drop: [ALL]}}

Failing (root, privileged, host network)::

    spec:
      hostNetwork: true
      containers:
        - securityContext: {runAsUser: 0, privileged: true}
"""

from __future__ import annotations

from ..engine import Context, Finding
from ._common import container_name

ID = "pod-security"
LEVEL = "error"
CONF = {"readOnlyRootFilesystem": True}

SECCOMP = ("RuntimeDefault", "Localhost")
ALLOWED_CAPS = ("NET_BIND_SERVICE",)


def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def check(ctx: Context, conf: dict):
    read_only_root = bool(conf.get("readOnlyRootFilesystem", True))
    for workload in ctx.workloads():
        m, spec, pp = workload.manifest, workload.pod_spec, workload.pointer
        psc = _dict(spec.get("securityContext"))
        for field in ("hostNetwork", "hostPID", "hostIPC"):
            if spec.get(field) is True:
                yield Finding(m, f"{pp}/{field}", f"{m.ref}: {field}: true shares the node's namespaces; remove it")
        for k, volume in enumerate(spec.get("volumes") or []):
            if isinstance(volume, dict) and "hostPath" in volume:
                yield Finding(m, f"{pp}/volumes/{k}/hostPath", f"{m.ref}: volume {volume.get('name')} is a hostPath "
                                                               "into the node; use emptyDir, a ConfigMap, a Secret "
                                                               "or a PersistentVolumeClaim")
        for container, cp in workload.containers(init=True):
            yield from _container(m, container, cp, psc, pp, read_only_root)


def _container(m, container: dict, cp: str, psc: dict, pp: str, read_only_root: bool):
    name = container_name(container)
    who = f"{m.ref}: container {name}"
    csc = _dict(container.get("securityContext"))
    here = f"{cp}/securityContext" if "securityContext" in container else cp

    def effective(field: str):
        """The container's value if set, else the pod's; with its pointer (or where to set it)."""
        if field in csc:
            return csc[field], f"{cp}/securityContext/{field}"
        if field in psc:
            return psc[field], f"{pp}/securityContext/{field}"
        return None, here

    value, pointer = effective("runAsNonRoot")
    if value is not True:
        yield Finding(m, pointer, f"{who}: runAsNonRoot is {_show(value)}; set runAsNonRoot: true "
                                  "(in the pod's or the container's securityContext)")
    value, pointer = effective("runAsUser")
    if isinstance(value, bool) or not isinstance(value, int):
        yield Finding(m, pointer, f"{who}: runAsUser is {_show(value)}; set a numeric non-zero user "
                                  "(e.g. 10001) so the image cannot choose root")
    elif value == 0:
        yield Finding(m, pointer, f"{who}: runAsUser 0 is root; use a non-zero user")
    profile, pointer = effective("seccompProfile")
    kind = _dict(profile).get("type")
    if kind not in SECCOMP:
        if isinstance(profile, dict) and "type" in profile:
            pointer += "/type"
        yield Finding(m, pointer, f"{who}: seccompProfile type is {_show(kind)}; set seccompProfile.type: "
                                  "RuntimeDefault (or Localhost)")
    if csc.get("allowPrivilegeEscalation") is not False:
        where = f"{cp}/securityContext/allowPrivilegeEscalation" if "allowPrivilegeEscalation" in csc else here
        yield Finding(m, where, f"{who}: allowPrivilegeEscalation is {_show(csc.get('allowPrivilegeEscalation'))}; "
                                "set it to false")
    if csc.get("privileged") is True:
        yield Finding(m, f"{cp}/securityContext/privileged",
                      f"{who}: privileged: true gives it the whole node; remove it")
    caps = _dict(csc.get("capabilities"))
    caps_pointer = f"{cp}/securityContext/capabilities" if "capabilities" in csc else here
    if "ALL" not in (caps.get("drop") or []):
        where = f"{caps_pointer}/drop" if "drop" in caps else caps_pointer
        yield Finding(m, where, f"{who}: capabilities.drop does not contain ALL; drop ALL capabilities")
    for i, cap in enumerate(caps.get("add") or []):
        if cap not in ALLOWED_CAPS:
            yield Finding(m, f"{caps_pointer}/add/{i}", f"{who}: adds capability {cap}; only NET_BIND_SERVICE "
                                                        "may be added")
    if read_only_root and csc.get("readOnlyRootFilesystem") is not True:
        where = f"{cp}/securityContext/readOnlyRootFilesystem" if "readOnlyRootFilesystem" in csc else here
        yield Finding(m, where, f"{who}: readOnlyRootFilesystem is {_show(csc.get('readOnlyRootFilesystem'))}; set "
                                "it to true and mount an emptyDir where the process writes")
    for i, port in enumerate(container.get("ports") or []):
        if isinstance(port, dict) and port.get("hostPort"):
            yield Finding(m, f"{cp}/ports/{i}/hostPort", f"{who}: port {port.get('name') or port.get('containerPort')}"
                                                         f" binds hostPort {port['hostPort']}; remove hostPort and "
                                                         "use a Service")


def _show(value) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)
