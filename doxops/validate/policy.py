"""Policy configuration: ``policy.yaml``, ``environments/<env>/policy.yaml`` and ``--policy FILE``, checked when read.

``policy.yaml`` (repository root) holds the settings every run shares::

    roleLabel: dox-asdlc.io/role         # the label rules find their subjects by
    namespace: dox-asdlc                 # expected namespace (optional; environments state theirs)
    gitCredentialsSecret: git-credentials
    rules:                               # per rule: level (error, warning, off) and typed options
      image-tag: {level: error, conf: {require: tag}}
    providedSecrets: {name: [key, ...] or null}
    providedConfigMaps: [name, ...]
    roles: {role: label selector}        # see below
    environments: {env: {...}}           # per-environment settings (prefer the environment's own file)

``environments/<env>/policy.yaml`` (and a ``--policy`` file for ``validate --path``) has the per-environment
keys only: ``rules``, ``providedSecrets``, ``providedConfigMaps`` and ``roles``, merged over the root file.

``roles`` declares roles by label selector for charts that do not carry the role label: ``singleton:
{matchLabels: {app.kubernetes.io/component: scheduler}}`` (a selector with ``matchLabels`` and/or
``matchExpressions``, or a list of them). A workload whose labels (its own or its pod template's) match gets the
role, unless it carries the role label itself.

Everything is checked when read: an unknown top-level key, rule, option or role, a wrong type or level is a
:class:`UsageError` (exit 2) naming ``file:line`` and what is allowed there.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from ..errors import UsageError
from ..paths import REPO_ROOT, relative
from . import options as opts

POLICY_FILE = REPO_ROOT / "policy.yaml"
LEVELS = ("error", "warning", "off")
ROOT_KEYS = ("roleLabel", "namespace", "gitCredentialsSecret", "rules", "providedSecrets", "providedConfigMaps",
             "roles", "environments")
ENV_KEYS = ("rules", "providedSecrets", "providedConfigMaps", "roles")
OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


@dataclass
class PolicyConfig:
    """The policy settings, parsed and checked: levels and options per rule, per environment; roles; provided objects."""

    path: Path
    role_label: str = "dox-asdlc.io/role"
    namespace: str | None = None
    rules: dict[str, dict] = field(default_factory=dict)
    environments: dict[str, dict] = field(default_factory=dict)
    provided_secrets: dict[str, list[str] | None] = field(default_factory=dict)
    provided_configmaps: list[str] = field(default_factory=list)
    git_credentials_secret: str | None = None
    roles: dict[str, list[dict]] = field(default_factory=dict)

    def rule_settings(self, rule_id: str, default_level: str, default_conf: dict, env: str | None) -> tuple[str, dict]:
        """The level and options of one rule: defaults, then policy.yaml, then the environment's settings."""
        level, conf = default_level, copy.deepcopy(default_conf)
        layers = [self.rules.get(rule_id) or {}]
        if env and env in self.environments:
            layers.append(((self.environments[env] or {}).get("rules") or {}).get(rule_id) or {})
        for layer in layers:
            level = layer.get("level", level)
            conf.update(copy.deepcopy(layer.get("conf") or {}))
        return level, conf

    def for_env(self, env: str | None) -> PolicyConfig:
        """This environment's view: its provided objects and roles added to the shared ones."""
        mine = self.environments.get(env or "")
        if not mine:
            return self
        view = copy.copy(self)
        view.provided_secrets = {**self.provided_secrets, **(mine.get("providedSecrets") or {})}
        view.provided_configmaps = [*self.provided_configmaps, *(mine.get("providedConfigMaps") or [])]
        view.roles = {**self.roles, **(mine.get("roles") or {})}
        return view


def _line(node: Any, key: Any) -> int:
    try:
        return node.lc.key(key)[0] + 1
    except Exception:  # noqa: BLE001 - a node without marks (a plain dict): the top of the file
        return 1


def _plain(node: Any) -> Any:
    """ruamel's commented containers and scalar subclasses as plain Python values."""
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    if isinstance(node, bool) or node is None:
        return node
    for plain in (int, float, str):
        if isinstance(node, plain):
            return plain(node)
    return node


@functools.lru_cache(maxsize=64)
def _parsed(path: str, text: str) -> Any:
    """ruamel's round-trip tree of ``text`` (read by every validation of one run: kept per path and content,
    and only read, never changed, by what uses it)."""
    return YAML(typ="rt").load(text)


def _read(path: Path) -> Any:
    """A configuration file with line numbers (ruamel round-trip); a syntax error names its line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{relative(path)}: cannot read the policy file ({exc}); give a readable YAML file") from None
    try:
        data = _parsed(str(path), text)
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{relative(path)}:{mark.line + 1}" if mark else relative(path)
        raise UsageError(f"{where}: invalid YAML: {getattr(exc, 'problem', exc)}; fix the syntax") from None
    if data is not None and not isinstance(data, dict):
        raise UsageError(f"{relative(path)}:1: expected a mapping of policy settings, found {opts.kind_of(_plain(data))}")
    return data or {}


class _File:
    """Checks one policy file against the registry; every error names this file and a line."""

    def __init__(self, path: Path, registry: Mapping[str, Any]) -> None:
        self.path = path
        self.registry = registry
        self.roles_seen: list[tuple[str, str]] = []  # (file:line, role) for the check after merging

    def at(self, node: Any, key: Any) -> str:
        return f"{relative(self.path)}:{_line(node, key)}"

    def keys(self, node: Any, allowed: Iterable[str], where: str) -> None:
        allowed = tuple(allowed)
        for key in node:
            if key not in allowed:
                raise UsageError(f"{self.at(node, key)}: unknown key {key!r} in {where}; known keys: "
                                 f"{', '.join(allowed)}")

    def typed(self, node: Any, key: str, annotation: Any, where: str) -> Any:
        value = _plain(node[key])
        if not opts.fits(value, annotation):
            raise UsageError(f"{self.at(node, key)}: {where}{key} is {value!r} ({opts.kind_of(value)}); expected "
                             f"{opts.describe(annotation)}")
        return value

    def rules(self, node: Any, where: str) -> dict[str, dict]:
        if node is None:
            return {}
        if not isinstance(node, dict):
            raise UsageError(f"{relative(self.path)}: {where} must be a map of rule id to settings")
        out: dict[str, dict] = {}
        known_rules = ", ".join(sorted(self.registry))
        for rule_id, settings in node.items():
            if rule_id not in self.registry:
                raise UsageError(f"{self.at(node, rule_id)}: unknown rule {rule_id!r} in {where}; known rules: "
                                 f"{known_rules}")
            if settings is None:
                out[rule_id] = {}
                continue
            if not isinstance(settings, dict):
                raise UsageError(f"{self.at(node, rule_id)}: rule {rule_id}: expected a map with level and/or conf, "
                                 f"found {opts.kind_of(_plain(settings))}")
            for key in settings:
                if key not in ("level", "conf"):
                    raise UsageError(f"{self.at(settings, key)}: rule {rule_id}: unknown setting {key!r} (use level "
                                     "and conf)")
            parsed: dict[str, Any] = {}
            if "level" in settings:
                level = _plain(settings["level"])
                if level not in LEVELS:
                    raise UsageError(f"{self.at(settings, 'level')}: rule {rule_id}: level {level!r} is not one of "
                                     f"{', '.join(LEVELS)}")
                parsed["level"] = level
            if "conf" in settings:
                parsed["conf"] = self.conf(rule_id, settings["conf"], settings)
            out[rule_id] = parsed
        return out

    def conf(self, rule_id: str, node: Any, parent: Any) -> dict:
        declared = getattr(self.registry[rule_id], "Options", None)
        if node is None:
            return {}
        if not isinstance(node, dict):
            raise UsageError(f"{self.at(parent, 'conf')}: rule {rule_id}: conf must be a map of options, found "
                             f"{opts.kind_of(_plain(node))}; known options: "
                             f"{opts.known(declared) if declared else 'none'}")
        for name in node:
            why = opts.problem(declared, str(name), _plain(node[name])) if declared else "this rule takes no options"
            if why:
                raise UsageError(f"{self.at(node, name)}: rule {rule_id}: {why}")
        return _plain(node)

    def provided_secrets(self, node: Any, key: str) -> dict:
        secrets = node[key]
        if secrets is None:
            return {}
        if not isinstance(secrets, dict):
            self.typed(node, key, dict[str, list[str] | None], "")  # raises, naming the expected shape
        for name in secrets:
            self.typed(secrets, name, list[str] | None, f"{key}: ")
        return _plain(secrets)

    def roles(self, node: Any, key: str) -> dict[str, list[dict]]:
        roles_node = node[key]
        if roles_node is None:
            return {}
        if not isinstance(roles_node, dict):
            raise UsageError(f"{self.at(node, key)}: roles must be a map of role to label selector, e.g. singleton: "
                             "{matchLabels: {app.kubernetes.io/component: scheduler}}")
        out: dict[str, list[dict]] = {}
        for role, selectors in roles_node.items():
            where = self.at(roles_node, role)
            self.roles_seen.append((where, str(role)))
            items = selectors if isinstance(selectors, list) else [selectors]
            out[str(role)] = [self.selector(where, role, _plain(s)) for s in items]
        return out

    @staticmethod
    def selector(where: str, role: Any, selector: Any) -> dict:
        hint = "give a label selector such as {matchLabels: {app.kubernetes.io/component: scheduler}}"
        if not isinstance(selector, dict) or not selector:
            raise UsageError(f"{where}: role {role}: {selector!r} is not a label selector; {hint}")
        unknown = set(selector) - {"matchLabels", "matchExpressions"}
        if unknown:
            raise UsageError(f"{where}: role {role}: unknown selector key(s) {', '.join(sorted(unknown))}; use "
                             f"matchLabels and/or matchExpressions ({hint})")
        if not opts.fits(selector.get("matchLabels", {}), dict[str, str]):
            raise UsageError(f"{where}: role {role}: matchLabels must map label names to string values")
        for expr in selector.get("matchExpressions", []) if isinstance(selector.get("matchExpressions", []), list) \
                else [None]:
            if not (isinstance(expr, dict) and isinstance(expr.get("key"), str) and expr.get("operator") in OPERATORS
                    and opts.fits(expr.get("values", []), list[str])
                    and set(expr) <= {"key", "operator", "values"}):
                raise UsageError(f"{where}: role {role}: bad matchExpressions entry {expr!r}; each needs key, "
                                 f"operator ({', '.join(OPERATORS)}) and values (a list of strings)")
        return selector

    def layer(self, node: Any, allowed: Iterable[str], where: str) -> dict:
        """The per-environment settings of one mapping (an environment file, a --policy file, environments.<env>)."""
        if node is None:
            node = {}
        if not isinstance(node, dict):
            raise UsageError(f"{relative(self.path)}:1: {where or 'the file'} must be a map of settings, found "
                             f"{opts.kind_of(_plain(node))}")
        self.keys(node, allowed, where)
        if node.get("rules") is not None and not isinstance(node["rules"], dict):
            raise UsageError(f"{self.at(node, 'rules')}: rules must be a map of rule id to settings ({{level: ..., "
                             "conf: {...}}), found " + opts.kind_of(_plain(node["rules"])))
        out: dict[str, Any] = {"rules": self.rules(node.get("rules"), f"{where} rules" if where else "rules")}
        out["providedSecrets"] = self.provided_secrets(node, "providedSecrets") if "providedSecrets" in node else {}
        out["providedConfigMaps"] = (self.typed(node, "providedConfigMaps", list[str], "") or []) \
            if "providedConfigMaps" in node else []
        out["roles"] = self.roles(node, "roles") if "roles" in node else {}
        return out


def _registry(known_rules: Iterable[str] | Mapping[str, Any] | None) -> Mapping[str, Any]:
    from .rules import REGISTRY  # noqa: PLC0415 - rules import the engine, which imports this module

    if isinstance(known_rules, Mapping):
        return known_rules
    if known_rules is None:
        return REGISTRY
    names = set(known_rules)
    return {rule_id: module for rule_id, module in REGISTRY.items() if rule_id in names} if names else REGISTRY


def _merge_rules(base: dict[str, dict], top: dict[str, dict]) -> dict[str, dict]:
    merged = copy.deepcopy(base)
    for rule_id, settings in top.items():
        target = merged.setdefault(rule_id, {})
        if "level" in settings:
            target["level"] = settings["level"]
        if "conf" in settings:
            target["conf"] = {**target.get("conf", {}), **settings["conf"]}
    return merged


def load_config(path: Path = POLICY_FILE, known_rules: Iterable[str] | Mapping[str, Any] | None = None,
                extra: Path | None = None) -> PolicyConfig:
    """Read and check ``path`` (policy.yaml), the environments' policy files beside it, and ``extra`` (--policy).

    ``extra`` is in the format of an environment's policy file and is merged over the root settings.
    """
    registry = _registry(known_rules)
    files: list[_File] = []
    if path.exists():
        data = _read(path)
        root = _File(path, registry)
        files.append(root)
        root.keys(data, ROOT_KEYS, "policy.yaml")
        scalars = {key: root.typed(data, key, str | None, "") for key in ("namespace", "gitCredentialsSecret")
                   if key in data}
        role_label = root.typed(data, "roleLabel", str, "") if "roleLabel" in data else "dox-asdlc.io/role"
        base = root.layer(data, ROOT_KEYS, "")  # the keys checked above; reads the shared ones
        environments = {}
        env_node = data.get("environments")
        if env_node is not None and not isinstance(env_node, dict):
            raise UsageError(f"{root.at(data, 'environments')}: environments must be a map of environment name to "
                             "settings")
        for env, settings in (env_node or {}).items():
            environments[str(env)] = root.layer(settings, ENV_KEYS, f"environments.{env}")
    else:
        scalars, role_label, environments = {}, "dox-asdlc.io/role", {}
        base = {"rules": {}, "providedSecrets": {}, "providedConfigMaps": [], "roles": {}}
    # An environment is a directory: environments/<env>/policy.yaml holds its own policy settings.
    for env_file in sorted((path.parent / "environments").glob("*/policy.yaml")):
        reader = _File(env_file, registry)
        files.append(reader)
        mine = reader.layer(_read(env_file), ENV_KEYS, "")
        merged = environments.setdefault(env_file.parent.name,
                                         {"rules": {}, "providedSecrets": {}, "providedConfigMaps": [], "roles": {}})
        merged["rules"] = _merge_rules(merged["rules"], mine["rules"])
        merged["providedSecrets"] = {**merged["providedSecrets"], **mine["providedSecrets"]}
        merged["providedConfigMaps"] = merged["providedConfigMaps"] + mine["providedConfigMaps"]
        merged["roles"] = {**merged["roles"], **mine["roles"]}
    if extra is not None:
        if not extra.is_file():
            raise UsageError(f"{extra}: --policy file not found; give a file in the format of "
                             "environments/<env>/policy.yaml")
        reader = _File(extra, registry)
        files.append(reader)
        mine = reader.layer(_read(extra), ENV_KEYS, "")
        base["rules"] = _merge_rules(base["rules"], mine["rules"])
        base["providedSecrets"] = {**base["providedSecrets"], **mine["providedSecrets"]}
        base["providedConfigMaps"] = base["providedConfigMaps"] + mine["providedConfigMaps"]
        base["roles"] = {**base["roles"], **mine["roles"]}
    config = PolicyConfig(
        path=path, role_label=role_label, namespace=scalars.get("namespace"), rules=base["rules"],
        environments=environments, provided_secrets=base["providedSecrets"],
        provided_configmaps=base["providedConfigMaps"], git_credentials_secret=scalars.get("gitCredentialsSecret"),
        roles=base["roles"],
    )
    _check_roles(config, registry, files)
    return config


def _check_roles(config: PolicyConfig, registry: Mapping[str, Any], files: list[_File]) -> None:
    """A declared role must be one some rule looks for (its ``role`` option), or it would silently do nothing."""
    used: set[str] = set()
    for rule_id, module in registry.items():
        default = opts.defaults(module.Options).get("role") if hasattr(module, "Options") else None
        layers = [config.rules.get(rule_id, {})] + [e["rules"].get(rule_id, {}) for e in config.environments.values()]
        for value in [default] + [layer.get("conf", {}).get("role") for layer in layers]:
            if isinstance(value, str):
                used.add(value)
    for reader in files:
        for where, role in reader.roles_seen:
            if role not in used:
                raise UsageError(f"{where}: unknown role {role!r}; the rules look for: {', '.join(sorted(used))}")
