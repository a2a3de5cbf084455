"""The policy engine: rules as modules, configuration in one file, exemptions by annotation.

A rule is a module in ``doxops/validate/rules/`` with

* ``ID``: its id (``singleton``), used in configuration and diagnostics;
* ``LEVEL``: its default level (``error`` or ``warning``);
* ``Options``: a dataclass declaring its options with types and defaults, and
  ``CONF = options.defaults(Options)`` (``options.py``); ``policy.yaml`` is
  checked against it when read (``policy.py``);
* a docstring: the user documentation, with a passing and a failing example;
* ``check(ctx, conf)``: a generator of :class:`Finding`.

A rule meeting an ill-typed field (a string where a number belongs) skips it:
the schema stage reports it. Should a rule raise anyway, the engine turns the
exception into an error finding naming the rule and the objects it was
looking at, and runs the rule again without them (``checked``), so one bug
never loses the rest of the report.

Rules find their subjects by labels (the role label, ``app.kubernetes.io/*``)
or configuration, never by object names. ``policy.yaml`` at the repository
root sets levels and options per rule and per environment. A resource is
exempt from a rule with the annotation ``exempt.dox-asdlc.io/<rule-id>:
"<reason>"``; an exemption without a reason is itself an error.
"""

from __future__ import annotations

import functools
import gc
import os
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from ..errors import DoxError, UsageError
from ..paths import REPO_ROOT, relative
from .diagnostics import Diagnostic
from .manifests import Manifest, locate
from .policy import LEVELS, POLICY_FILE, PolicyConfig, load_config  # noqa: F401 - the engine's public face

EXEMPT_PREFIX = "exempt.dox-asdlc.io/"
CLUSTER_SCOPED = {
    "Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "PersistentVolume",
    "StorageClass", "PriorityClass", "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration",
    "APIService", "ClusterSecretStore", "IngressClass", "RuntimeClass", "CSIDriver", "Node",
}
POD_KINDS = {
    "Deployment": "/spec/template/spec",
    "StatefulSet": "/spec/template/spec",
    "DaemonSet": "/spec/template/spec",
    "ReplicaSet": "/spec/template/spec",
    "Job": "/spec/template/spec",
    "CronJob": "/spec/jobTemplate/spec/template/spec",
    "Pod": "/spec",
}


@dataclass(frozen=True)
class Finding:
    """What a rule reports: the resource, a JSON pointer into it, and a message."""

    manifest: Manifest
    pointer: str
    message: str


@dataclass(frozen=True)
class Workload:
    """A resource with a pod template, its pod spec and the pointer to it."""

    manifest: Manifest
    pod_spec: dict
    pointer: str

    @functools.cached_property
    def template_labels(self) -> dict:  # a workload lives as long as its context: one run over unchanged data
        if self.manifest.kind == "Pod":
            return self.manifest.labels
        template = _get(self.manifest.data, self.pointer.rsplit("/spec", 1)[0]) or {}
        return (template.get("metadata") or {}).get("labels") or {}

    def containers(self, init: bool = True) -> Iterator[tuple[dict, str]]:
        """(container, pointer) of its containers, init containers first with ``init``; listed once per workload
        (a workload lives as long as its context), as most rules walk them."""
        found = self.__dict__.get("_containers")
        if found is None:
            found = {key: [(container, f"{self.pointer}/{key}/{i}")
                           for i, container in enumerate(self.pod_spec.get(key) or []) if isinstance(container, dict)]
                     for key in ("initContainers", "containers")}
            self.__dict__["_containers"] = found  # a frozen dataclass: stored as cached_property stores
        if init and found["initContainers"]:
            return iter(found["initContainers"] + found["containers"])
        return iter(found["containers"])


def _get(data: Any, pointer: str) -> Any:
    node = data
    for part in [p for p in pointer.split("/") if p]:
        if isinstance(node, list):
            try:
                node = node[int(part)]
            except (ValueError, IndexError):
                return None
        elif isinstance(node, dict):
            node = node.get(part)
        else:
            return None
    return node


class Context:
    """What a rule sees: every manifest of one run, indexed, plus the configuration."""

    def __init__(self, manifests: list[Manifest], config: PolicyConfig, env: str | None = None,
                 namespace: str | None = None, root: Path = REPO_ROOT) -> None:
        self.manifests = manifests
        self.config = config.for_env(env)  # this environment's provided objects and roles added
        self.env = env
        self.namespace = namespace or self.config.namespace
        self.root = root
        self._by_kind: dict[str, list[Manifest]] = {}
        for m in manifests:
            self._by_kind.setdefault(m.kind, []).append(m)

    def shared(self, key: Any, build: Callable[[], Any]) -> Any:
        """An index several rules use, built by ``build()`` once per context (one run over unchanged data)."""
        cache = self.__dict__.setdefault("_shared", {})
        if key not in cache:
            cache[key] = build()
        return cache[key]

    def of_kind(self, *kinds: str) -> list[Manifest]:
        return [m for kind in kinds for m in self._by_kind.get(kind, [])]

    def role(self, manifest: Manifest) -> str | None:
        """The role label's value; else the first role of ``roles`` (policy) whose selector matches its labels."""
        label = manifest.labels.get(self.config.role_label)
        if label is not None or not self.config.roles:
            return label if isinstance(label, str) or label is None else str(label)
        pointer = POD_KINDS.get(manifest.kind)
        template = _get(manifest.data, pointer.rsplit("/spec", 1)[0]) if pointer and manifest.kind != "Pod" else None
        template_labels = (template.get("metadata") or {}).get("labels") if isinstance(template, dict) else None
        candidates = [manifest.labels] + ([template_labels] if isinstance(template_labels, dict) else [])
        for role, selectors in self.config.roles.items():
            if any(selects(selector, labels) for selector in selectors for labels in candidates):
                return role
        return None

    def workloads(self) -> Iterator[Workload]:
        workloads = self.__dict__.get("_workloads")
        if workloads is None:  # found once per context; every rule walks them
            workloads = []
            for kind, pointer in POD_KINDS.items():
                for m in self._by_kind.get(kind, []):
                    spec = _get(m.data, pointer)
                    if isinstance(spec, dict):
                        workloads.append(Workload(m, spec, pointer))
            self._workloads = workloads
        return iter(workloads)

    def workload(self, kind: str, name: str, namespace: str | None = None) -> Workload | None:
        """The first workload (in ``workloads()`` order) of that kind and name in ``namespace`` or in no
        namespace; any namespace when ``namespace`` is None."""
        index = self.__dict__.get("_workload_index")
        if index is None:
            index = {}  # (kind, name) -> (first of all, {namespace: (position, first there)})
            for position, w in enumerate(self.workloads()):
                key = (w.manifest.kind, w.manifest.name)
                if key not in index:
                    index[key] = (w, {})
                index[key][1].setdefault(w.manifest.namespace, (position, w))
            self._workload_index = index
        first, by_ns = index.get((kind, name), (None, {}))
        if namespace is None or first is None:
            return first
        found = [hit for hit in (by_ns.get(namespace), by_ns.get("")) if hit is not None]
        return min(found, key=lambda hit: hit[0])[1] if found else None

    def hpas_for(self, manifest: Manifest) -> list[Manifest]:
        """The HorizontalPodAutoscalers whose scaleTargetRef names ``manifest``."""
        index = self.__dict__.get("_hpa_index")
        if index is None:
            index = {}
            for hpa in self.of_kind("HorizontalPodAutoscaler"):
                ref = as_dict(as_dict(hpa.data.get("spec")).get("scaleTargetRef"))
                index.setdefault((str(ref.get("kind")), str(ref.get("name")), hpa.namespace), []).append(hpa)
            self._hpa_index = index
        return index.get((manifest.kind, manifest.name, manifest.namespace), [])


def as_dict(value: Any) -> dict:
    """``value`` when it is a mapping, else ``{}``: an ill-typed field is the schema stage's to report."""
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list:
    """``value`` when it is a list, else ``[]``: an ill-typed field is the schema stage's to report."""
    return value if isinstance(value, list) else []


def as_int(value: Any) -> int | None:
    """``value`` when it is an integer (not a boolean), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def selects(selector: dict | None, labels: dict) -> bool:
    """Whether a label selector (matchLabels/matchExpressions, or a plain map) matches ``labels``."""
    if not selector or not isinstance(selector, dict) or not isinstance(labels, dict):
        return False
    structured = "matchLabels" in selector or "matchExpressions" in selector
    match_labels = as_dict(selector.get("matchLabels")) if structured else selector
    for key, value in match_labels.items():
        if labels.get(key) != value:
            return False
    for expr in as_list(selector.get("matchExpressions")):
        if not isinstance(expr, dict):
            return False
        key, op, values = expr.get("key"), expr.get("operator"), as_list(expr.get("values"))
        if not isinstance(key, str):
            return False
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


#: How often a crashing rule is run again without the objects it crashed on.
MAX_RETRIES = 20


def _culprits(exc: BaseException) -> list[Manifest]:
    """The objects a rule was looking at when it raised: the manifests in the innermost frame that has any."""
    frames = []
    tb = exc.__traceback__.tb_next if exc.__traceback__ else None  # the first frame is ``checked`` itself
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    for frame in reversed(frames):
        found: list[Manifest] = []
        for value in frame.f_locals.values():
            m = value.manifest if isinstance(value, Workload) else value
            if isinstance(m, Manifest) and all(m is not f for f in found):
                found.append(m)
        if found:
            return found
    return []


def _where(exc: BaseException) -> str:
    """The source line that raised, for the crash finding (``doxops/validate/rules/autoscaled_pool.py:55``)."""
    tb, last = exc.__traceback__, None
    while tb is not None:
        last = tb
        tb = tb.tb_next
    if last is None:
        return "?"
    return f"{relative(Path(last.tb_frame.f_code.co_filename))}:{last.tb_lineno}"


def checked(module: Any, conf: dict, manifests: list[Manifest], make_ctx) -> tuple[list[Finding], list[tuple]]:
    """A rule's findings, never its exception: a rule that raises is run again without the objects it was
    looking at, so the report stays complete for every other object. Returns (findings, crashes), a crash
    being (exception, the objects it was looking at)."""
    findings: list[Finding] = []
    crashes: list[tuple[BaseException, list[Manifest]]] = []
    excluded: set[int] = set()
    for _ in range(MAX_RETRIES + 1):
        ctx = make_ctx([m for m in manifests if id(m) not in excluded]) if excluded else make_ctx(manifests)
        try:
            for finding in module.check(ctx, conf):
                findings.append(finding)
            break
        except DoxError:
            raise  # a usage or tool error the rule raised on purpose
        except Exception as exc:  # noqa: BLE001 - the safety net: a rule's bug never loses the report
            if os.environ.get("DOX_DEBUG"):
                traceback.print_exception(exc, file=sys.stderr)
            culprits = [m for m in _culprits(exc) if id(m) not in excluded]
            crashes.append((exc, culprits))
            if not culprits:
                break
            excluded.update(id(m) for m in culprits)
    return findings, crashes


def run(manifests: list[Manifest], *, env: str | None = None, namespace: str | None = None,
        config: PolicyConfig | None = None, root: Path = REPO_ROOT, only: Iterable[str] | None = None
        ) -> list[Diagnostic]:
    """Every enabled rule over ``manifests``; exemptions applied; sorted diagnostics."""
    collecting = gc.isenabled()
    gc.disable()  # rules make short-lived objects; each collection would walk every parsed object again
    try:
        return _run(manifests, env=env, namespace=namespace, config=config, root=root, only=only)
    finally:
        if collecting:
            gc.enable()


def _run(manifests: list[Manifest], *, env: str | None, namespace: str | None, config: PolicyConfig | None,
         root: Path, only: Iterable[str] | None) -> list[Diagnostic]:
    from .rules import REGISTRY  # noqa: PLC0415 - rules import this module

    config = config or load_config(known_rules=REGISTRY)
    selected = list(only) if only is not None else list(REGISTRY)
    unknown = [r for r in selected if r not in REGISTRY]
    if unknown:
        raise UsageError(f"unknown rule {', '.join(unknown)}; known rules: {', '.join(sorted(REGISTRY))}")
    # A rule that answers from a scanner running beside the validation (WAITS_ON_SCANNER) goes last: the others
    # run while the scanner works, instead of after it. The diagnostics are sorted, so the order is not seen.
    selected.sort(key=lambda rule_id: bool(getattr(REGISTRY[rule_id], "WAITS_ON_SCANNER", False)))
    contexts: dict[tuple | None, Context] = {}

    def make_ctx(subset: list[Manifest]) -> Context:
        if subset is manifests:  # every rule but one that crashed: no key to compute
            key: tuple | None = None
        else:
            key = tuple(id(m) for m in subset)
        if key not in contexts:  # rules share one context (and its indexes) per set of manifests
            contexts[key] = Context(subset, config, env=env, namespace=namespace, root=root)
        return contexts[key]

    out: list[Diagnostic] = []
    for m in manifests:  # exemptions must carry a reason, whatever rules run
        for key, reason in m.annotations.items():
            if isinstance(key, str) and key.startswith(EXEMPT_PREFIX):
                rule_id = key[len(EXEMPT_PREFIX):]
                line, col = locate(m, f"/metadata/annotations/{key.replace('~', '~0').replace('/', '~1')}")
                if rule_id not in REGISTRY:
                    out.append(Diagnostic(relative(m.path), line, col, "error",
                                          f"{m.ref}: exemption names unknown rule {rule_id!r}; known rules: "
                                          f"{', '.join(sorted(REGISTRY))}", "exemption", m.template))
                elif not isinstance(reason, str) or not reason.strip():
                    out.append(Diagnostic(relative(m.path), line, col, "error",
                                          f"{m.ref}: exemption from {rule_id} has no reason; write why as its value",
                                          "exemption", m.template))
    for rule_id in selected:
        module = REGISTRY[rule_id]
        level, conf = config.rule_settings(rule_id, module.LEVEL, getattr(module, "CONF", {}), env)
        if level == "off":
            continue
        findings, crashes = checked(module, conf, manifests, make_ctx)
        for finding in findings:
            m = finding.manifest
            if _exempt(m, rule_id):
                continue
            line, col = locate(m, finding.pointer) if finding.pointer else (m.line, 1)
            out.append(Diagnostic(relative(m.path), line, col, level, finding.message, rule_id, m.template))
        for exc, culprits in crashes:
            what = f"{type(exc).__name__} at {_where(exc)}"
            for m in culprits or manifests[:1]:
                subject = m.ref if culprits else f"one of the {len(manifests)} resources"
                out.append(Diagnostic(relative(m.path), m.line, 1, "error",
                                      f"{subject}: rule {rule_id} failed ({what}); its checks of "
                                      f"{'this object' if culprits else 'these resources'} did not run. This is a bug "
                                      "in the rule: report it (DOX_DEBUG=1 prints the traceback); the schema "
                                      "findings say what is wrong with the object", rule_id, m.template))
    return sorted(set(out))


def _exempt(m: Manifest, rule_id: str) -> bool:
    reason = m.annotations.get(EXEMPT_PREFIX + rule_id)
    return isinstance(reason, str) and bool(reason.strip())
