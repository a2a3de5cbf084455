"""The policy engine: rules as modules, configuration in one file, exemptions by annotation.

A rule is a module in ``doxops/validate/rules/`` with

* ``ID``: its id (``singleton``), used in configuration and diagnostics;
* ``LEVEL``: its default level (``error`` or ``warning``);
* ``CONF``: its default options (optional);
* a docstring: the user documentation, with a passing and a failing example;
* ``check(ctx, conf)``: a generator of :class:`Finding`.

Rules find their subjects by labels (the role label, ``app.kubernetes.io/*``)
or configuration, never by object names. ``policy.yaml`` at the repository
root sets levels and options per rule and per environment. A resource is
exempt from a rule with the annotation ``exempt.dox-asdlc.io/<rule-id>:
"<reason>"``; an exemption without a reason is itself an error.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from ..errors import UsageError
from ..paths import REPO_ROOT, relative
from .diagnostics import Diagnostic
from .manifests import Manifest, locate

POLICY_FILE = REPO_ROOT / "policy.yaml"
EXEMPT_PREFIX = "exempt.dox-asdlc.io/"
LEVELS = ("error", "warning", "off")
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

    @property
    def template_labels(self) -> dict:
        if self.manifest.kind == "Pod":
            return self.manifest.labels
        template = _get(self.manifest.data, self.pointer.rsplit("/spec", 1)[0]) or {}
        return (template.get("metadata") or {}).get("labels") or {}

    def containers(self, init: bool = True) -> Iterator[tuple[dict, str]]:
        keys = ("initContainers", "containers") if init else ("containers",)
        for key in keys:
            for i, container in enumerate(self.pod_spec.get(key) or []):
                if isinstance(container, dict):
                    yield container, f"{self.pointer}/{key}/{i}"


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


@dataclass
class PolicyConfig:
    """policy.yaml, parsed: levels and options per rule, per environment; roles; provided Secrets."""

    path: Path
    role_label: str = "dox-asdlc.io/role"
    namespace: str | None = None
    rules: dict[str, dict] = field(default_factory=dict)
    environments: dict[str, dict] = field(default_factory=dict)
    provided_secrets: dict[str, list[str] | None] = field(default_factory=dict)
    provided_configmaps: list[str] = field(default_factory=list)
    git_credentials_secret: str | None = None

    def rule_settings(self, rule_id: str, default_level: str, default_conf: dict, env: str | None) -> tuple[str, dict]:
        level, conf = default_level, copy.deepcopy(default_conf)
        layers = [self.rules.get(rule_id) or {}]
        if env and env in self.environments:
            layers.append(((self.environments[env] or {}).get("rules") or {}).get(rule_id) or {})
        for layer in layers:
            level = layer.get("level", level)
            conf.update(layer.get("conf") or {})
        return level, conf


def _lines_of(node, key) -> int:
    try:
        return node.lc.key(key)[0] + 1
    except Exception:  # noqa: BLE001
        return 1


def _read_rt(path: Path):
    """A configuration file with line numbers (ruamel round-trip); a syntax error names its line."""
    try:
        data = YAML(typ="rt").load(path.read_text(encoding="utf-8"))
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{relative(path)}:{mark.line + 1}" if mark else relative(path)
        raise UsageError(f"{where}: invalid YAML: {getattr(exc, 'problem', exc)}") from None
    if data is not None and not isinstance(data, dict):
        raise UsageError(f"{relative(path)}:1: expected a mapping of settings")
    return data or {}


def load_config(path: Path = POLICY_FILE, known_rules: Iterable[str] = ()) -> PolicyConfig:
    """Read and check policy.yaml: an unknown rule id or level is an error with its line."""
    known = set(known_rules)
    if not path.exists():
        return PolicyConfig(path)
    data = _read_rt(path)
    allowed_top = {"roleLabel", "namespace", "rules", "environments", "providedSecrets", "providedConfigMaps",
                   "gitCredentialsSecret"}
    for key in data:
        if key not in allowed_top:
            raise UsageError(f"{relative(path)}:{_lines_of(data, key)}: unknown key {key!r} "
                             f"(known: {', '.join(sorted(allowed_top))})")

    current = [path]  # the file being checked, for messages

    def check_rules(rules, where) -> dict:
        for rule_id, settings in (rules or {}).items():
            line = _lines_of(rules, rule_id)
            if rule_id not in known:
                raise UsageError(f"{relative(current[0])}:{line}: unknown rule {rule_id!r} in {where}; "
                                 f"known rules: {', '.join(sorted(known))}")
            settings = settings or {}
            bad = set(settings) - {"level", "conf"}
            if bad:
                raise UsageError(f"{relative(current[0])}:{line}: rule {rule_id}: unknown setting(s) {', '.join(sorted(bad))}"
                                 " (use level and conf)")
            if settings.get("level", "error") not in LEVELS:
                raise UsageError(f"{relative(current[0])}:{line}: rule {rule_id}: level {settings['level']!r} "
                                 f"is not one of {', '.join(LEVELS)}")
        return _plain(rules or {})

    def check_env(settings, where: str, file: Path, node) -> dict:
        settings = settings or {}
        bad = set(settings) - {"rules", "providedSecrets", "providedConfigMaps"}
        if bad:
            raise UsageError(f"{relative(file)}:{_lines_of(node, sorted(bad)[0])}: {where}: unknown key(s) "
                             f"{', '.join(sorted(bad))} (use rules, providedSecrets, providedConfigMaps)")
        return {
            "rules": check_rules(settings.get("rules"), f"{where}.rules"),
            "providedSecrets": _plain(settings.get("providedSecrets") or {}),
            "providedConfigMaps": list(settings.get("providedConfigMaps") or []),
        }

    root_rules = check_rules(data.get("rules"), "rules")  # before the environment files move `current`
    environments = {}
    for env, settings in (data.get("environments") or {}).items():
        environments[env] = check_env(settings, f"environments.{env}", path, settings or {})
    # An environment is a directory: environments/<env>/policy.yaml holds its own policy settings.
    for env_file in sorted((path.parent / "environments").glob("*/policy.yaml")):
        env = env_file.parent.name
        env_data = _read_rt(env_file)
        current[0] = env_file
        mine = check_env(env_data, env, env_file, env_data)
        merged = environments.setdefault(env, {"rules": {}, "providedSecrets": {}, "providedConfigMaps": []})
        merged["rules"] = {**merged["rules"], **mine["rules"]}
        merged["providedSecrets"] = {**merged["providedSecrets"], **mine["providedSecrets"]}
        merged["providedConfigMaps"] = merged["providedConfigMaps"] + mine["providedConfigMaps"]
    return PolicyConfig(
        path=path,
        role_label=str(data.get("roleLabel", "dox-asdlc.io/role")),
        namespace=data.get("namespace"),
        rules=root_rules,
        environments=environments,
        provided_secrets=_plain(data.get("providedSecrets") or {}),
        provided_configmaps=list(data.get("providedConfigMaps") or []),
        git_credentials_secret=data.get("gitCredentialsSecret"),
    )


def _plain(node):
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node


class Context:
    """What a rule sees: every manifest of one run, indexed, plus the configuration."""

    def __init__(self, manifests: list[Manifest], config: PolicyConfig, env: str | None = None,
                 namespace: str | None = None, root: Path = REPO_ROOT) -> None:
        self.manifests = manifests
        per_env = config.environments.get(env or "", {})
        if per_env.get("providedSecrets") or per_env.get("providedConfigMaps"):
            config = copy.copy(config)  # this environment's view: its own provided objects added
            config.provided_secrets = {**config.provided_secrets, **per_env.get("providedSecrets", {})}
            config.provided_configmaps = [*config.provided_configmaps, *per_env.get("providedConfigMaps", [])]
        self.config = config
        self.env = env
        self.namespace = namespace or config.namespace
        self.root = root
        self._by_kind: dict[str, list[Manifest]] = {}
        for m in manifests:
            self._by_kind.setdefault(m.kind, []).append(m)

    def of_kind(self, *kinds: str) -> list[Manifest]:
        return [m for kind in kinds for m in self._by_kind.get(kind, [])]

    def role(self, manifest: Manifest) -> str | None:
        return manifest.labels.get(self.config.role_label)

    def workloads(self) -> Iterator[Workload]:
        for kind, pointer in POD_KINDS.items():
            for m in self._by_kind.get(kind, []):
                spec = _get(m.data, pointer)
                if isinstance(spec, dict):
                    yield Workload(m, spec, pointer)

    def workload(self, kind: str, name: str, namespace: str | None = None) -> Workload | None:
        index = self.__dict__.get("_workload_index")
        if index is None:
            index = {}
            for w in self.workloads():
                index.setdefault((w.manifest.kind, w.manifest.name), []).append(w)
            self._workload_index = index
        for w in index.get((kind, name), []):
            if namespace is None or not w.manifest.namespace or w.manifest.namespace == namespace:
                return w
        return None

    def hpas_for(self, manifest: Manifest) -> list[Manifest]:
        """The HorizontalPodAutoscalers whose scaleTargetRef names ``manifest``."""
        index = self.__dict__.get("_hpa_index")
        if index is None:
            index = {}
            for hpa in self.of_kind("HorizontalPodAutoscaler"):
                ref = (hpa.data.get("spec") or {}).get("scaleTargetRef") or {}
                index.setdefault((str(ref.get("kind")), str(ref.get("name")), hpa.namespace), []).append(hpa)
            self._hpa_index = index
        return index.get((manifest.kind, manifest.name, manifest.namespace), [])


def selects(selector: dict | None, labels: dict) -> bool:
    """Whether a label selector (matchLabels/matchExpressions, or a plain map) matches ``labels``."""
    if not selector:
        return False
    structured = "matchLabels" in selector or "matchExpressions" in selector
    match_labels = (selector.get("matchLabels") or {}) if structured else selector
    for key, value in match_labels.items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def run(manifests: list[Manifest], *, env: str | None = None, namespace: str | None = None,
        config: PolicyConfig | None = None, root: Path = REPO_ROOT, only: Iterable[str] | None = None
        ) -> list[Diagnostic]:
    """Every enabled rule over ``manifests``; exemptions applied; sorted diagnostics."""
    from .rules import REGISTRY  # noqa: PLC0415 - rules import this module

    config = config or load_config(known_rules=REGISTRY)
    ctx = Context(manifests, config, env=env, namespace=namespace, root=root)
    selected = list(only) if only is not None else list(REGISTRY)
    unknown = [r for r in selected if r not in REGISTRY]
    if unknown:
        raise UsageError(f"unknown rule {', '.join(unknown)}; known rules: {', '.join(sorted(REGISTRY))}")
    out: list[Diagnostic] = []
    for m in manifests:  # exemptions must carry a reason, whatever rules run
        for key, reason in m.annotations.items():
            if key.startswith(EXEMPT_PREFIX):
                rule_id = key[len(EXEMPT_PREFIX):]
                line, col = locate(m, f"/metadata/annotations/{key.replace('~', '~0').replace('/', '~1')}")
                if rule_id not in REGISTRY:
                    out.append(Diagnostic(relative(m.path), line, col, "error",
                                          f"{m.ref}: exemption names unknown rule {rule_id!r}", "exemption", m.template))
                elif not str(reason or "").strip():
                    out.append(Diagnostic(relative(m.path), line, col, "error",
                                          f"{m.ref}: exemption from {rule_id} has no reason; write why as its value",
                                          "exemption", m.template))
    for rule_id in selected:
        module = REGISTRY[rule_id]
        level, conf = config.rule_settings(rule_id, module.LEVEL, getattr(module, "CONF", {}), env)
        if level == "off":
            continue
        for finding in module.check(ctx, conf):
            m = finding.manifest
            if str(m.annotations.get(EXEMPT_PREFIX + rule_id) or "").strip():
                continue
            line, col = locate(m, finding.pointer) if finding.pointer else (m.line, 1)
            out.append(Diagnostic(relative(m.path), line, col, level, finding.message, rule_id, m.template))
    return sorted(set(out))
