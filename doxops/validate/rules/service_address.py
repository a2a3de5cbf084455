"""service-address: every in-cluster address in configuration names a rendered Service and port.

Sources: the literal ``value`` of container environment variables (not
``valueFrom``), per container, and the ``data`` of every ConfigMap. Addresses
are

* keys ending in ``_URL``: ``scheme://host[:port]/...``; without a port, the
  scheme's default (conf ``defaultPorts``: http 80, https 443, redis 6379);
* pairs ``<X>_HOST`` and ``<X>_PORT`` in the same env list or ConfigMap (a
  ``<X>_HOST`` alone is checked for its Service only).

A host is in-cluster when it has no dot (``cache``), ends with ``.svc`` or
``.svc.<clusterDomain>`` (conf ``clusterDomain``, default ``cluster.local``),
or is ``<name>.<namespace>`` for a namespace of the rendered set. A StatefulSet
pod address (``cache-0.cache-headless.ns.svc...``) checks its Service
(``cache-headless``). External hosts (``api.anthropic.com``), ``localhost``,
IP addresses and values containing ``$(`` are skipped. The Service must be
rendered in that namespace and expose the port as one of its ``ports[].port``.

Passing::

    kind: ConfigMap                         kind: Service
    metadata: {namespace: demo}             metadata: {name: cache, namespace: demo}
    data:                                   spec: {ports: [{port: 6379}]}
      CACHE_URL: redis://cache.demo.svc.cluster.local:6379/0

Failing (no Service ``cach``; the Service exposes 6379, not 6380)::

    data:
      CACHE_URL: redis://cach:6379/0
      CACHE_HOST: cache
      CACHE_PORT: "6380"
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ..engine import Context, Finding, as_dict, as_list
from ..options import defaults
from ._common import ByName, container_name, esc, ns_of

ID = "service-address"
LEVEL = "error"


@dataclass(frozen=True)
class Options:
    clusterDomain: str = "cluster.local"  #: the cluster's DNS domain
    #: the port of a URL without one, by scheme
    defaultPorts: dict[str, int] = field(default_factory=lambda: {"http": 80, "https": 443, "redis": 6379,
                                                                  "rediss": 6379})


CONF = defaults(Options)


def _is_ip(host: str) -> bool:
    if ":" not in host and host.strip("[]0123456789."):  # neither IPv6 (has a colon) nor IPv4 (digits, dots)
        return False
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


class _Resolver:
    def __init__(self, ctx: Context, conf: dict) -> None:
        self.services = ByName()
        namespaces = {ctx.namespace} if ctx.namespace else set()
        for m in ctx.manifests:  # m.namespace, without two property calls per object
            meta = m.data.get("metadata")
            if isinstance(meta, dict) and meta.get("namespace"):
                namespaces.add(str(meta["namespace"]))
        namespaces.update(m.name for m in ctx.of_kind("Namespace"))
        namespaces.discard("")
        for svc in ctx.of_kind("Service"):
            self.services.add(svc.name, ns_of(ctx, svc), svc)
        self.namespaces = namespaces
        domain = str(conf.get("clusterDomain") or "cluster.local").strip(".")
        self.suffixes = (f".svc.{domain}", ".svc")
        self.default_ports = {str(k): int(v) for k, v in (conf.get("defaultPorts") or {}).items()}
        self._found: dict[tuple[str, str], tuple[list, set]] = {}

    def service(self, name: str, ns: str) -> tuple[list, set]:
        """The Services ``name`` in ``ns`` (``ByName.get``) and the ports they expose; looked up once."""
        found = self._found.get((name, ns))
        if found is None:
            services = self.services.get(name, ns)
            exposed = {p.get("port") for svc in services for p in as_list(as_dict(svc.data.get("spec")).get("ports"))
                       if isinstance(p, dict) and isinstance(p.get("port"), int)}
            found = self._found[(name, ns)] = (services, exposed)
        return found

    def target(self, host: str, own_ns: str) -> tuple[str, str] | None:
        """(service name, namespace) of an in-cluster host; None for an external one."""
        host = host.strip().rstrip(".").lower()
        if not host or host == "localhost" or _is_ip(host):
            return None
        for suffix in self.suffixes:
            if host.endswith(suffix):
                labels = host[: -len(suffix)].split(".")
                if len(labels) >= 2:
                    return labels[-2], labels[-1]
                return labels[0], "svc"  # "<name>.svc" resolves to a Service <name> in a namespace "svc"
        labels = host.split(".")
        if len(labels) == 1:
            return host, own_ns
        if len(labels) in (2, 3) and labels[-1] in self.namespaces:
            return labels[-2], labels[-1]
        if len(labels) == 2 and labels[1] in self.services and self.services.get(labels[1], own_ns):
            return labels[1], own_ns  # a pod of a headless Service: <pod>.<service>
        return None


def _port(value) -> int | None:
    try:
        return int(str(value).strip())
    except ValueError:
        return None


def _addresses(entries: dict, resolver: _Resolver):
    """(host, port or None, key(s), host pointer, port pointer) of every address in one env list or ConfigMap."""
    for key, (value, pointer) in entries.items():
        if "$(" in value:
            continue
        if key.endswith("_URL") and "://" in value:
            try:
                parts = urlsplit(value.strip())
                host, port = parts.hostname, parts.port
            except ValueError:
                continue
            if not host or "," in parts.netloc:
                continue
            if port is None:
                port = resolver.default_ports.get(parts.scheme.lower())
            yield host, port, key, pointer, pointer
        elif key.endswith("_HOST") and value.strip():
            port_key = key[: -len("_HOST")] + "_PORT"
            port_value, port_pointer = entries.get(port_key, ("", pointer))
            port = None if "$(" in port_value else _port(port_value)
            label = f"{key}/{port_key}" if port is not None else key
            yield value.strip(), port, label, pointer, port_pointer


def _check(m, entries: dict, where: str, own_ns: str, resolver: _Resolver):
    for host, port, key, host_pointer, port_pointer in _addresses(entries, resolver):
        target = resolver.target(host, own_ns)
        if target is None:
            continue
        name, ns = target
        shown = f"{host}:{port}" if port is not None else host
        found, exposed = resolver.service(name, ns)
        if not found:
            yield Finding(m, host_pointer, f"{m.ref}: {where}{key} points at {shown}, but no Service {name} is "
                                           f"rendered in namespace {ns or '(none)'}; fix the address or render the "
                                           "Service")
            continue
        if port is None:
            continue
        if port not in exposed:
            listed = ", ".join(str(p) for p in sorted(x for x in exposed if isinstance(x, int))) or "no port"
            yield Finding(m, port_pointer, f"{m.ref}: {where}{key} points at {shown}, but {found[0].ref} exposes "
                                           f"{listed}; use an exposed port or add the port to the Service")


_KEYS = ("_URL", "_HOST", "_PORT")  # see _addresses


def check(ctx: Context, conf: dict):
    resolver = _Resolver(ctx, conf)
    for cm in ctx.of_kind("ConfigMap"):
        data = cm.data.get("data")
        if not isinstance(data, dict):
            continue
        entries = {str(k): ("" if v is None else str(v), f"/data/{esc(k)}") for k, v in data.items()
                   if str(k).endswith(_KEYS)}  # only these can hold or complete an address
        yield from _check(cm, entries, "key ", ns_of(ctx, cm), resolver)
    for workload in ctx.workloads():
        m = workload.manifest
        for container, cp in workload.containers(init=True):
            entries = {}
            for j, env in enumerate(container.get("env") or []):
                if (isinstance(env, dict) and env.get("name") and "value" in env and "valueFrom" not in env
                        and str(env["name"]).endswith(_KEYS)):
                    value = env["value"]
                    entries[str(env["name"])] = ("" if value is None else str(value), f"{cp}/env/{j}/value")
            if entries:
                yield from _check(m, entries, f"container {container_name(container)} env ", ns_of(ctx, m), resolver)
