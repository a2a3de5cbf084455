"""pod-references: every name a pod spec points at is defined once, and every name it defines is unique.

Subjects: the pod spec of every workload (its containers and init containers).
What the pinned kube-apiserver (v1.36, ``pkg/apis/core/validation/validation.go``
and ``pkg/api/pod/warnings.go``) does with each problem decides its wording:

Rejected by the API server (the sync fails):

* two containers with one name, across ``initContainers`` and ``containers``
  (``validateInitContainers``/``validateContainers``: Duplicate);
* two volumes with one name (``ValidateVolumes``: Duplicate);
* a ``volumeMounts`` entry naming no volume (a StatefulSet's
  ``volumeClaimTemplates`` count as volumes), or two mounts at one
  ``mountPath`` in a container (``ValidateVolumeMounts``: NotFound, "must be
  unique"); the same for ``volumeDevices`` (name, ``devicePath``), and a volume
  both mounted and used as a device in one container (``ValidateVolumeDevices``);
* two ports with one name in a container (``validateContainerPorts``);
* ``env[].valueFrom.fileKeyRef.volumeName`` naming no volume.

Accepted with a warning only (the object is stored, the problem stays):

* two ``env`` entries with one name in a container: one value silently hides
  the other, and server-side apply, which keys the list by name, refuses it;
* one ``containerPort``/``protocol`` twice in the pod, or one port name in two
  containers (Services and probes that select the port by name take the first);
* a Secret named twice in ``imagePullSecrets``.

Not checked by the server at all (the kubelet fails at run time):

* a probe (``livenessProbe``, ``readinessProbe``, ``startupProbe``) or a
  lifecycle handler whose ``httpGet``/``tcpSocket`` port is a name the container
  does not declare in its ``ports`` (the server checks only the name's format);
* a ``resourceFieldRef.containerName`` (env or downwardAPI volume) naming no
  container of the pod.

Passing::

    volumes: [{name: config, configMap: {name: settings}}]
    containers:
      - name: main
        ports: [{name: http, containerPort: 8080}]
        env: [{name: HOME, value: /tmp}]
        volumeMounts: [{name: config, mountPath: /etc/app}]
        readinessProbe: {httpGet: {path: /ready, port: http}}

Failing (``HOME`` twice, a mount of no volume, a probe on an undeclared port name)::

    containers:
      - name: main
        ports: [{name: http, containerPort: 8080}]
        env: [{name: HOME, value: /tmp}, {name: HOME, value: /home/app}]
        volumeMounts: [{name: confg, mountPath: /etc/app}]
        readinessProbe: {httpGet: {path: /ready, port: web}}
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from ..engine import Context, Finding, Workload, as_dict, as_list
from ..options import defaults
from ._common import container_name

ID = "pod-references"
LEVEL = "error"


@dataclass(frozen=True)
class Options:
    """No options."""


CONF = defaults(Options)

REJECTED = "the API server rejects this"
WARNED = "the API server only warns and keeps the object"
RUNTIME = "the API server does not check this; the kubelet fails at run time"
PROBES = ("livenessProbe", "readinessProbe", "startupProbe")
HANDLERS = ("postStart", "preStop")


def _name(node) -> str | None:
    """The ``name`` of a list entry when it is a non-empty string; ill-typed names are the schema stage's."""
    name = node.get("name") if isinstance(node, dict) else None
    return name if isinstance(name, str) and name else None


def _duplicates(entries: list, pointer: str, key: str = "name") -> Iterator[tuple[str, str, str]]:
    """(value, pointer of the repeat, pointer of the first) for every repeated ``key`` in a list of maps."""
    first: dict = {}
    for i, entry in enumerate(entries):
        value = entry.get(key) if isinstance(entry, dict) else None
        if not isinstance(value, (str, int)) or isinstance(value, bool) or value == "":
            continue
        if value in first:
            yield value, f"{pointer}/{i}/{key}", f"{pointer}/{first[value]}/{key}"
        else:
            first[value] = i  # the pointer is spelt only for a repeat


def _short(pointer: str, base: str) -> str:
    """A pointer relative to the pod spec, for messages: ``containers/0/env/1``."""
    return pointer[len(base) + 1:] if pointer.startswith(base + "/") else pointer


def _container_checks(m, container: dict, cp: str, who: str, volumes: dict) -> Iterator[Finding]:
    for name, where, _ in _duplicates(as_list(container.get("env")), f"{cp}/env"):
        yield Finding(m, where, f"{m.ref}: {who} defines env {name} twice; one value silently hides the other and "
                                f"server-side apply refuses the list ({WARNED}); keep one")
    ports = as_list(container.get("ports"))
    for name, where, _ in _duplicates(ports, f"{cp}/ports"):
        yield Finding(m, where, f"{m.ref}: {who} names two ports {name} ({REJECTED}); rename one")
    mounts = as_list(container.get("volumeMounts"))
    devices = as_list(container.get("volumeDevices"))
    for field, entries in (("volumeMounts", mounts), ("volumeDevices", devices)):
        for k, entry in enumerate(entries):
            name = _name(entry)
            if name is not None and name not in volumes:
                known = ", ".join(sorted(volumes)) or "none"
                yield Finding(m, f"{cp}/{field}/{k}/name", f"{m.ref}: {who} {field} names volume {name}, which the pod "
                                                           f"does not define (volumes: {known}; {REJECTED}); add the "
                                                           "volume or fix the name")
    for path, where, _ in _duplicates(mounts, f"{cp}/volumeMounts", "mountPath"):
        yield Finding(m, where, f"{m.ref}: {who} mounts two volumes at {path} ({REJECTED}); use one mountPath each")
    for name, where, _ in _duplicates(devices, f"{cp}/volumeDevices"):
        yield Finding(m, where, f"{m.ref}: {who} lists volume device {name} twice ({REJECTED}); keep one")
    for path, where, _ in _duplicates(devices, f"{cp}/volumeDevices", "devicePath"):
        yield Finding(m, where, f"{m.ref}: {who} has two volume devices at {path} ({REJECTED}); use one devicePath each")
    mounted = {_name(x) for x in mounts} - {None} if devices else set()
    for k, device in enumerate(devices):
        if _name(device) in mounted:
            yield Finding(m, f"{cp}/volumeDevices/{k}/name", f"{m.ref}: {who} uses volume {_name(device)} both as a "
                                                             f"mount and as a device ({REJECTED}); use one")
    for j, env in enumerate(as_list(container.get("env"))):
        value_from = env.get("valueFrom") if isinstance(env, dict) else None
        if not value_from:  # most entries are plain values
            continue
        ref = as_dict(as_dict(value_from).get("fileKeyRef"))
        volume = ref.get("volumeName")
        if isinstance(volume, str) and volume and volume not in volumes:
            yield Finding(m, f"{cp}/env/{j}/valueFrom/fileKeyRef/volumeName",
                          f"{m.ref}: {who} env {_name(env)} reads a file of volume {volume}, which the pod does not "
                          f"define ({REJECTED}); add the volume or fix the name")
    port_names = {p.get("name") for p in ports if isinstance(p, dict) and isinstance(p.get("name"), str)}
    handlers = [(probe, container.get(probe), probe) for probe in PROBES]
    lifecycle = container.get("lifecycle")
    if lifecycle:
        handlers += [(f"lifecycle.{h}", as_dict(lifecycle).get(h), f"lifecycle/{h}") for h in HANDLERS]
    for what, handler, where in handlers:
        if not handler or not isinstance(handler, dict):
            continue
        for action in ("httpGet", "tcpSocket"):
            port = as_dict(handler.get(action)).get("port")
            if isinstance(port, str) and port and not port.isdigit() and port not in port_names:
                declared = ", ".join(sorted(port_names)) or "none"
                yield Finding(m, f"{cp}/{where}/{action}/port",
                              f"{m.ref}: {who} {what} uses port {port}, which the container does not declare (its "
                              f"port names: {declared}; {RUNTIME}); name the port in ports or use its number")


def _workload_checks(workload: Workload) -> Iterator[Finding]:
    m, spec, pp = workload.manifest, workload.pod_spec, workload.pointer
    containers = list(workload.containers(init=True))
    seen: dict[str, str] = {}
    for container, cp in containers:
        name = _name(container)
        if name is None:
            continue
        if name in seen:
            yield Finding(m, f"{cp}/name", f"{m.ref}: two containers are named {name} ({_short(seen[name], pp)} and "
                                           f"{_short(cp, pp)}; init containers and containers share one namespace; "
                                           f"{REJECTED}); rename one")
        else:
            seen[name] = cp
    volumes_list = as_list(spec.get("volumes"))
    volumes = {_name(v): v for v in volumes_list if _name(v)}
    if m.kind == "StatefulSet":  # each volumeClaimTemplate is a volume of the pod, named by its metadata.name
        for claim in as_list(as_dict(m.data.get("spec")).get("volumeClaimTemplates")):
            name = _name(as_dict(as_dict(claim).get("metadata")))
            if name:
                volumes.setdefault(name, claim)
    for name, where, _ in _duplicates(volumes_list, f"{pp}/volumes"):
        yield Finding(m, where, f"{m.ref}: two volumes are named {name} ({REJECTED}); rename one")
    for name, where, _ in _duplicates(as_list(spec.get("imagePullSecrets")), f"{pp}/imagePullSecrets"):
        yield Finding(m, where, f"{m.ref}: imagePullSecrets lists {name} twice ({WARNED}); keep one")
    for container, cp in containers:
        yield from _container_checks(m, container, cp, f"container {container_name(container)}", volumes)
    yield from _pod_ports(workload, containers)
    yield from _resource_refs(workload, containers, set(seen))


def _pod_ports(workload: Workload, containers: list) -> Iterator[Finding]:
    """Port numbers and names repeated across the pod's containers (the API server warns)."""
    m, pp = workload.manifest, workload.pointer
    numbers: dict[tuple, str] = {}
    names: dict[str, str] = {}
    for container, cp in containers:
        own_names: set[str] = set()
        for i, port in enumerate(as_list(container.get("ports"))):
            if not isinstance(port, dict):
                continue
            number, protocol = port.get("containerPort"), port.get("protocol", "TCP")
            if isinstance(number, int) and not isinstance(number, bool) and isinstance(protocol, str):
                key = (number, protocol, port.get("hostIP"), port.get("hostPort"))
                if key in numbers:
                    yield Finding(m, f"{cp}/ports/{i}/containerPort",
                                  f"{m.ref}: port {number}/{protocol} is declared twice in the pod "
                                  f"({_short(numbers[key], pp)} and {_short(cp, pp)}; {WARNED}); declare it once")
                else:
                    numbers[key] = cp
            name = _name(port)
            if name is None or name in own_names:
                continue  # a repeat within one container is reported above
            own_names.add(name)
            if name in names:
                yield Finding(m, f"{cp}/ports/{i}/name",
                              f"{m.ref}: port name {name} is used by two containers ({_short(names[name], pp)} and "
                              f"{_short(cp, pp)}); Services and probes that select it by name take the first "
                              f"({WARNED}); rename one")
            else:
                names[name] = cp


def _resource_refs(workload: Workload, containers: list, container_names: set[str]) -> Iterator[Finding]:
    """``resourceFieldRef.containerName`` in env and downwardAPI volumes names a container of the pod."""
    m, pp = workload.manifest, workload.pointer
    refs = []
    for container, cp in containers:
        for j, env in enumerate(as_list(container.get("env"))):
            value_from = env.get("valueFrom") if isinstance(env, dict) else None
            ref = as_dict(as_dict(value_from).get("resourceFieldRef")) if value_from else None
            if ref:  # an empty one names no container; its pointer is never needed
                refs.append((ref, f"{cp}/env/{j}/valueFrom/resourceFieldRef"))
    for k, volume in enumerate(as_list(workload.pod_spec.get("volumes"))):
        volume = as_dict(volume)
        sources = []  # (downwardAPI, its pointer): only where there is one
        if volume.get("downwardAPI"):
            sources.append((as_dict(volume["downwardAPI"]), f"{pp}/volumes/{k}/downwardAPI"))
        for s, source in enumerate(as_list(as_dict(volume.get("projected")).get("sources"))):
            if as_dict(source).get("downwardAPI"):
                sources.append((as_dict(source["downwardAPI"]), f"{pp}/volumes/{k}/projected/sources/{s}/"
                                                                "downwardAPI"))
        for api, ap in sources:
            for i, item in enumerate(as_list(api.get("items"))):
                refs.append((as_dict(as_dict(item).get("resourceFieldRef")), f"{ap}/items/{i}/resourceFieldRef"))
    for ref, pointer in refs:
        name = ref.get("containerName")
        if isinstance(name, str) and name and name not in container_names:
            yield Finding(m, f"{pointer}/containerName",
                          f"{m.ref}: resourceFieldRef names container {name}, which the pod does not have "
                          f"(containers: {', '.join(sorted(container_names)) or 'none'}; {RUNTIME}); fix the name")


def check(ctx: Context, conf: dict):
    for workload in ctx.workloads():
        yield from _workload_checks(workload)
