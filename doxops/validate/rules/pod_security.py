"""pod-security: every pod meets the Pod Security "restricted" profile, and more.

Subjects: the pod spec of every workload and all its containers (init
containers too). One finding per problem, at the field at fault (or where the
missing field belongs):

* pod: no ``hostNetwork``, ``hostPID``, ``hostIPC``; only the volume types
  "restricted" allows (configMap, csi, downwardAPI, emptyDir, ephemeral,
  persistentVolumeClaim, projected, secret); only safe ``sysctls``; and, as
  the profile checks the pod level whatever containers override: no
  ``runAsUser: 0``, no ``seccompProfile`` other than RuntimeDefault/Localhost,
  no AppArmor profile other than RuntimeDefault/Localhost, no SELinux type
  or user/role outside the container types;
* each container, its own setting winning over the pod's:
  ``runAsNonRoot: true``; a numeric, non-zero ``runAsUser``;
  ``seccompProfile.type`` ``RuntimeDefault`` or ``Localhost``;
* each container's own ``securityContext``: ``allowPrivilegeEscalation:
  false``; ``capabilities.drop`` contains ``ALL`` and ``capabilities.add`` at
  most ``NET_BIND_SERVICE``; not ``privileged``; and, with conf
  ``readOnlyRootFilesystem`` (on by default), ``readOnlyRootFilesystem: true``;
* no container port with a ``hostPort``; ``procMount`` only ``Default``; the
  same AppArmor and SELinux limits per container.

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

from dataclasses import dataclass

from ..engine import Context, Finding
from ..options import defaults
from ._common import container_name

ID = "pod-security"
LEVEL = "error"


@dataclass(frozen=True)
class Options:
    readOnlyRootFilesystem: bool = True  #: also require a read-only root file system


CONF = defaults(Options)

SECCOMP = ("RuntimeDefault", "Localhost")
APPARMOR = ("RuntimeDefault", "Localhost")
ALLOWED_CAPS = ("NET_BIND_SERVICE",)
#: Volume types the "restricted" profile allows.
VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"}
#: Sysctls the "baseline"/"restricted" profiles allow.
SAFE_SYSCTLS = {"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
                "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
                "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
                "net.ipv4.tcp_keepalive_probes"}
SELINUX_TYPES = ("", "container_t", "container_init_t", "container_kvm_t", "container_engine_t")


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
            if not isinstance(volume, dict):
                continue
            for kind in sorted(set(volume) - {"name"} - VOLUMES):
                yield Finding(m, f"{pp}/volumes/{k}/{kind}", f"{m.ref}: volume {volume.get('name')} is of type {kind}, "
                                                             "which Pod Security \"restricted\" forbids; use emptyDir, "
                                                             "a ConfigMap, a Secret or a PersistentVolumeClaim")
        if psc.get("runAsUser") == 0 and not isinstance(psc.get("runAsUser"), bool):
            yield Finding(m, f"{pp}/securityContext/runAsUser", f"{m.ref}: the pod's runAsUser is 0 (root); "
                                                                "\"restricted\" rejects it even if containers override it")
        pod_seccomp = _dict(psc.get("seccompProfile")).get("type")
        if "seccompProfile" in psc and pod_seccomp not in SECCOMP:
            yield Finding(m, f"{pp}/securityContext/seccompProfile", f"{m.ref}: the pod's seccompProfile type is "
                                                                     f"{_show(pod_seccomp)}; use RuntimeDefault")
        yield from _lsm(m, psc, f"{pp}/securityContext", f"{m.ref}: the pod")
        for i, sysctl in enumerate(psc.get("sysctls") or []):
            if isinstance(sysctl, dict) and sysctl.get("name") not in SAFE_SYSCTLS:
                yield Finding(m, f"{pp}/securityContext/sysctls/{i}", f"{m.ref}: sysctl {sysctl.get('name')} is not "
                                                                      "in the safe set Pod Security allows")
        for container, cp in workload.containers(init=True):
            yield from _container(m, container, cp, psc, pp, read_only_root)


def _container(m, container: dict, cp: str, psc: dict, pp: str, read_only_root: bool):
    name = container_name(container)
    who = _Who(m, name)
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
    if csc.get("procMount") not in (None, "Default"):
        yield Finding(m, f"{cp}/securityContext/procMount", f"{who}: procMount {csc['procMount']} unmasks /proc; "
                                                            "remove it")
    yield from _lsm(m, csc, f"{cp}/securityContext", who)
    for i, port in enumerate(container.get("ports") or []):
        if isinstance(port, dict) and port.get("hostPort"):
            yield Finding(m, f"{cp}/ports/{i}/hostPort", f"{who}: port {port.get('name') or port.get('containerPort')}"
                                                         f" binds hostPort {port['hostPort']}; remove hostPort and "
                                                         "use a Service")


class _Who:
    """``<ref>: container <name>`` for messages, spelt only when a finding uses it."""

    __slots__ = ("m", "name")

    def __init__(self, m, name: str) -> None:
        self.m, self.name = m, name

    def __format__(self, spec: str) -> str:
        return format(f"{self.m.ref}: container {self.name}", spec)


def _lsm(m, sc: dict, pointer: str, who):
    """AppArmor and SELinux settings of a pod's or container's securityContext."""
    apparmor = _dict(sc.get("appArmorProfile")).get("type")
    if "appArmorProfile" in sc and apparmor not in APPARMOR:
        yield Finding(m, f"{pointer}/appArmorProfile", f"{who}: AppArmor profile {_show(apparmor)}; use "
                                                        "RuntimeDefault or Localhost")
    selinux = _dict(sc.get("seLinuxOptions"))
    if selinux.get("type", "") not in SELINUX_TYPES:
        yield Finding(m, f"{pointer}/seLinuxOptions/type", f"{who}: SELinux type {selinux['type']} is not a container "
                                                           "type")
    for field in ("user", "role"):
        if selinux.get(field):
            yield Finding(m, f"{pointer}/seLinuxOptions/{field}", f"{who}: SELinux {field} may not be set")


def _show(value) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)
