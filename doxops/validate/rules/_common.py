"""Helpers shared by several rules: namespaces, indexes, JSON pointers, pod references.

Not a rule (it has no ``ID``), so it is not in the registry. Every index here is
built once per ``check`` call; lookups are by name, so no rule walks all
manifests once per manifest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator

from ..engine import Context, Workload, selects
from ..manifests import Manifest


def esc(part: object) -> str:
    """One JSON pointer segment (``~`` and ``/`` escaped)."""
    return str(part).replace("~", "~0").replace("/", "~1")


def ns_of(ctx: Context, m: Manifest) -> str:
    """The namespace a manifest lives in: its own, else the run's, else "" (unknown)."""
    return m.namespace or ctx.namespace or ""


def same_ns(a: str, b: str) -> bool:
    """Namespaces match when equal or when either is unknown (as in ``Context.find``)."""
    return a == b or not a or not b


class _NsIndex:
    """Items of one key grouped by namespace, each with its insertion number, so that ``same_ns`` lookups
    cost what they return and come back in insertion order."""

    __slots__ = ("all", "by_ns")

    def __init__(self) -> None:
        self.all: list[tuple[str, object]] = []
        self.by_ns: dict[str, list[tuple[int, object]]] = {}

    def add(self, seq: int, ns: str, item: object) -> None:
        self.all.append((ns, item))
        self.by_ns.setdefault(ns, []).append((seq, item))

    def get(self, ns: str) -> list:
        """The items whose namespace is ``ns`` or unknown, or every item when ``ns`` is unknown (``same_ns``)."""
        if not ns:
            return [item for _, item in self.all]
        same = self.by_ns.get(ns, [])
        unknown = self.by_ns.get("", [])
        if not unknown:
            return [item for _, item in same]
        if not same:
            return [item for _, item in unknown]
        return [item for _, item in sorted(same + unknown, key=_first)]


def _first(pair: tuple) -> int:
    return pair[0]


class ByName:
    """Items indexed by name, each with its namespace; lookups honour ``same_ns``."""

    def __init__(self) -> None:
        self._items: dict[str, _NsIndex] = {}
        self._seq = 0

    def add(self, name: str, ns: str, item: object) -> None:
        index = self._items.get(name)
        if index is None:
            index = self._items[name] = _NsIndex()
        index.add(self._seq, ns, item)
        self._seq += 1

    def get(self, name: str, ns: str) -> list:
        index = self._items.get(name)
        return index.get(ns) if index is not None else []

    def __contains__(self, name: str) -> bool:
        return name in self._items


class ByNamespace:
    """Items grouped by namespace; ``in_ns`` returns those of one namespace (and of unknown ones)."""

    def __init__(self, pairs: Iterable[tuple[str, object]]) -> None:
        self._groups: dict[str, list] = {}
        for ns, item in pairs:
            self._groups.setdefault(ns, []).append(item)

    def in_ns(self, ns: str) -> list:
        if not ns:
            return [item for group in self._groups.values() for item in group]
        return self._groups.get(ns, []) + self._groups.get("", [])


class Workloads:
    """Every workload, by namespace and by pod template label and namespace, so that a selector is matched in
    O(matches). ``Workloads.of(ctx)`` is the context's one instance."""

    @classmethod
    def of(cls, ctx: Context) -> "Workloads":
        return ctx.shared(cls, lambda: cls(ctx))

    def __init__(self, ctx: Context) -> None:
        pairs = [(ns_of(ctx, w.manifest), w) for w in ctx.workloads()]
        self._by_ns = ByNamespace(pairs)
        self._by_label: dict[tuple, _NsIndex] = {}
        for seq, (ns, w) in enumerate(pairs):
            for key, value in w.template_labels.items():
                try:
                    index = self._by_label.get((key, value))
                    if index is None:
                        index = self._by_label[(key, value)] = _NsIndex()
                except TypeError:  # an unhashable label value: never matched by a selector anyway
                    continue
                index.add(seq, ns, w)

    def in_ns(self, ns: str) -> list[Workload]:
        return self._by_ns.in_ns(ns)

    def selected(self, selector, ns: str) -> list[Workload]:
        """The workloads of namespace ``ns`` whose pod template labels ``selector`` selects (``engine.selects``)."""
        if not selector or not isinstance(selector, dict):
            return []
        structured = "matchLabels" in selector or "matchExpressions" in selector
        match = (selector.get("matchLabels") or {}) if structured else selector
        rarest = None
        for key, value in match.items():  # the rarest label in this namespace narrows the search most
            try:
                index = self._by_label.get((key, value))
            except TypeError:
                index = None
            found = index.get(ns) if index is not None else []
            if rarest is None or len(found) < len(rarest):
                rarest = found
            if not rarest:
                return []
        candidates = self.in_ns(ns) if rarest is None else rarest
        return [w for w in candidates if selects(selector, w.template_labels)]


def hpas_by_target(ctx: Context) -> ByName:
    """HorizontalPodAutoscalers indexed by ``<kind>/<name>`` of their scaleTargetRef."""
    index = ByName()
    for hpa in ctx.of_kind("HorizontalPodAutoscaler"):
        ref = (hpa.data.get("spec") or {}).get("scaleTargetRef") or {}
        index.add(f"{ref.get('kind')}/{ref.get('name')}", ns_of(ctx, hpa), hpa)
    return index


def container_name(container: dict) -> str:
    return str(container.get("name") or "?")


def is_init(pointer: str) -> bool:
    return "/initContainers/" in pointer


@dataclass(frozen=True)
class Ref:
    """A reference from a pod spec to a ConfigMap or a Secret."""

    kind: str  # "ConfigMap" or "Secret"
    name: str
    pointer: str  # to the name (or to the reference when it has none)
    via: str  # where, for messages: "envFrom of container main", "volume creds"
    optional: bool
    keys: tuple[tuple[str, str], ...] = ()  # (key, pointer) the reference needs
    volume: str | None = None  # the volume's name when the reference is a volume


def _name_pointer(node: dict, pointer: str, field: str) -> str:
    return f"{pointer}/{field}" if field in node else pointer


def _items(node: dict, pointer: str) -> tuple[tuple[str, str], ...]:
    return tuple((str(item.get("key")), f"{pointer}/items/{i}/key")
                 for i, item in enumerate(node.get("items") or []) if isinstance(item, dict) and "key" in item)


def refs_of(ctx: Context, workload: Workload) -> list[Ref]:
    """``pod_refs(workload)`` of one of ``ctx.workloads()``, found once per context (config-refs and
    git-credentials both read them)."""
    cache = ctx.shared(pod_refs, dict)
    refs = cache.get(id(workload))
    if refs is None:
        refs = cache[id(workload)] = list(pod_refs(workload))
    return refs


def pod_refs(workload: Workload) -> Iterator[Ref]:
    """Every ConfigMap and Secret reference of a pod spec: envFrom, env valueFrom, volumes, projected volumes."""
    for container, cp in workload.containers(init=True):
        cname = container_name(container)
        for j, source in enumerate(container.get("envFrom") or []):
            if not isinstance(source, dict):
                continue
            for field, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
                ref = source.get(field)
                if isinstance(ref, dict):
                    pointer = f"{cp}/envFrom/{j}/{field}"
                    yield Ref(kind, str(ref.get("name") or ""), _name_pointer(ref, pointer, "name"),
                              f"envFrom of container {cname}", ref.get("optional") is True)
        for j, env in enumerate(container.get("env") or []):
            value_from = env.get("valueFrom") if isinstance(env, dict) else None
            if not isinstance(value_from, dict):
                continue
            for field, kind in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")):
                ref = value_from.get(field)
                if isinstance(ref, dict):
                    pointer = f"{cp}/env/{j}/valueFrom/{field}"
                    keys = ((str(ref.get("key")), f"{pointer}/key"),) if "key" in ref else ()
                    yield Ref(kind, str(ref.get("name") or ""), _name_pointer(ref, pointer, "name"),
                              f"env {env.get('name')} of container {cname}", ref.get("optional") is True, keys)
    pp = workload.pointer
    for k, volume in enumerate(workload.pod_spec.get("volumes") or []):
        if not isinstance(volume, dict):
            continue
        vname = str(volume.get("name") or "?")
        vp = f"{pp}/volumes/{k}"
        if isinstance(volume.get("configMap"), dict):
            ref = volume["configMap"]
            yield Ref("ConfigMap", str(ref.get("name") or ""), _name_pointer(ref, f"{vp}/configMap", "name"),
                      f"volume {vname}", ref.get("optional") is True, _items(ref, f"{vp}/configMap"), vname)
        if isinstance(volume.get("secret"), dict):
            ref = volume["secret"]
            yield Ref("Secret", str(ref.get("secretName") or ""), _name_pointer(ref, f"{vp}/secret", "secretName"),
                      f"volume {vname}", ref.get("optional") is True, _items(ref, f"{vp}/secret"), vname)
        projected = volume.get("projected")
        if isinstance(projected, dict):
            for s, source in enumerate(projected.get("sources") or []):
                if not isinstance(source, dict):
                    continue
                for field, kind in (("configMap", "ConfigMap"), ("secret", "Secret")):
                    ref = source.get(field)
                    if isinstance(ref, dict):
                        sp = f"{vp}/projected/sources/{s}/{field}"
                        yield Ref(kind, str(ref.get("name") or ""), _name_pointer(ref, sp, "name"),
                                  f"projected volume {vname}", ref.get("optional") is True, _items(ref, sp), vname)
