"""policy.yaml, environments/<env>/policy.yaml and --policy files are checked when read: every rule's options."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from doxops.errors import UsageError
from doxops.validate import options as opts
from doxops.validate.policy import load_config
from doxops.validate.rules import REGISTRY

CANDIDATES = ["a string", 7, 2.5, True, ["a", "list"], {"a": "map"}, None]
OPTIONS = [(rule_id, name) for rule_id, module in REGISTRY.items() for name in opts.fields(module.Options)]


def write(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def env_policy(tmp_path: Path, rule_id: str, conf: dict) -> Path:
    """A repository with an empty policy.yaml and an environment file setting ``conf`` on line 4 onwards."""
    write(tmp_path, "policy.yaml", "rules: {}\n")
    body = "".join(f"      {key}: {json.dumps(value)}\n" for key, value in conf.items())
    write(tmp_path, "environments/prod/policy.yaml", f"# prod\nrules:\n  {rule_id}:\n    conf:\n{body}")
    return tmp_path / "policy.yaml"


def wrong_value(annotation) -> object:
    return next(v for v in CANDIDATES if not opts.fits(v, annotation))


def test_every_rule_declares_typed_options_with_defaults():
    for rule_id, module in REGISTRY.items():
        assert hasattr(module, "Options"), f"{rule_id} declares no Options dataclass"
        assert module.CONF == opts.defaults(module.Options), f"{rule_id}: CONF is not defaults(Options)"
        hints = opts.hints(module.Options)
        for name, value in opts.defaults(module.Options).items():
            assert opts.fits(value, hints[name]), f"{rule_id}: default of {name} does not fit its own type"


@pytest.mark.parametrize("rule_id, name", OPTIONS, ids=[f"{r}.{n}" for r, n in OPTIONS])
def test_each_option_accepts_its_default_and_rejects_a_wrong_type_with_file_line(tmp_path, rule_id, name):
    module = REGISTRY[rule_id]
    default = opts.defaults(module.Options)[name]
    config = load_config(env_policy(tmp_path / "ok", rule_id, {name: default}))
    level, conf = config.rule_settings(rule_id, module.LEVEL, module.CONF, "prod")
    assert conf[name] == default

    bad = wrong_value(opts.hints(module.Options)[name])
    with pytest.raises(UsageError) as caught:
        load_config(env_policy(tmp_path / "bad", rule_id, {name: bad}))
    message = str(caught.value)
    assert message.startswith("environments/prod/policy.yaml:5: ") or "/environments/prod/policy.yaml:5: " in message
    assert f"rule {rule_id}: option {name} is {bad!r}" in message and "expected " in message
    assert caught.value.code == 2


@pytest.mark.parametrize("rule_id", list(REGISTRY))
def test_an_unknown_option_of_each_rule_is_an_error_naming_the_known_ones(tmp_path, rule_id):
    module = REGISTRY[rule_id]
    with pytest.raises(UsageError) as caught:
        load_config(env_policy(tmp_path, rule_id, {"requires": "version"}))
    message = str(caught.value)
    assert "environments/prod/policy.yaml:5: " in message and f"rule {rule_id}: unknown option 'requires'" in message
    for name in opts.fields(module.Options):
        assert name in message.split("known options:", 1)[1]
    if not opts.fields(module.Options):
        assert "takes no options" in message


def test_the_reported_typo_in_prod_is_exit_2(tmp_path):
    """issue 14/18: `image-tag: conf: {requires: version}` in prod used to keep the weaker default silently."""
    with pytest.raises(UsageError, match=r"unknown option 'requires'; known options: require \(one of 'tag', "
                                         r"'version', 'digest'"):
        load_config(env_policy(tmp_path, "image-tag", {"requires": "version"}))


def test_a_rules_own_check_of_a_well_typed_value_names_the_line(tmp_path):
    with pytest.raises(UsageError, match=r"environments/prod/policy.yaml:5: rule no-credentials: option "
                                         r"disableRules: unknown gitleaks rule\(s\) github-token .*; known: "):
        load_config(env_policy(tmp_path, "no-credentials", {"disableRules": ["github-pat", "github-token"]}))
    load_config(env_policy(tmp_path / "ok", "no-credentials", {"disableRules": ["github-pat"]}))


def test_a_value_outside_a_literal_is_rejected(tmp_path):
    with pytest.raises(UsageError, match=r"option require is 'versions' \(a string\); expected one of 'tag'"):
        load_config(env_policy(tmp_path, "image-tag", {"require": "versions"}))


@pytest.mark.parametrize("rel, text, words", [
    ("policy.yaml", "roleLabel: x\nrulez: {}\n", ["policy.yaml:2: unknown key 'rulez'", "known keys: roleLabel"]),
    ("environments/prod/policy.yaml", "rules: {}\nprovidedSecret: {a: null}\n",
     ["environments/prod/policy.yaml:2: unknown key 'providedSecret'", "known keys: rules, providedSecrets"]),
    ("policy.yaml", "rules:\n  no-such-rule: {level: error}\n",
     ["policy.yaml:2: unknown rule 'no-such-rule'", "known rules: api-server, argocd-project"]),
    ("policy.yaml", "rules:\n  probes: {level: fatal}\n", ["policy.yaml:2: rule probes: level 'fatal' is not one of"]),
    ("policy.yaml", "rules:\n  probes: {levle: error}\n", ["policy.yaml:2: rule probes: unknown setting 'levle'"]),
    ("policy.yaml", "rules:\n  probes: [error]\n", ["policy.yaml:2: rule probes: expected a map"]),
    ("policy.yaml", "rules:\n  probes:\n    conf: [a]\n", ["policy.yaml:3: rule probes: conf must be a map"]),
    ("policy.yaml", "roleLabel: 3\n", ["policy.yaml:1: roleLabel is 3 (an integer); expected a string"]),
    ("policy.yaml", "providedSecrets:\n  creds: api-key\n",
     ["policy.yaml:2: providedSecrets: creds is 'api-key' (a string); expected a list of strings or null"]),
    ("policy.yaml", "providedConfigMaps: settings\n", ["policy.yaml:1: providedConfigMaps is 'settings'"]),
    ("policy.yaml", "roles:\n  singelton: {matchLabels: {app: x}}\n",
     ["policy.yaml:2: unknown role 'singelton'; the rules look for: autoscaled-pool, singleton"]),
    ("policy.yaml", "roles:\n  singleton: {app: x}\n", ["policy.yaml:2: role singleton: unknown selector key(s) app"]),
    ("policy.yaml", "roles:\n  singleton: {matchExpressions: [{key: a, operator: Has}]}\n",
     ["policy.yaml:2: role singleton: bad matchExpressions entry"]),
    ("policy.yaml", "- rules\n", ["policy.yaml:1: expected a mapping of policy settings, found a list"]),
    ("environments/prod/policy.yaml", "# prod\nrules: [image-tag]\n",
     ["environments/prod/policy.yaml:2: rules must be a map of rule id to settings", "found a list"]),
    ("policy.yaml", "rules: {a: [\n", ["policy.yaml:", "invalid YAML"]),
])
def test_bad_policy_files_are_usage_errors_with_file_and_line(tmp_path, rel, text, words):
    write(tmp_path, "policy.yaml", "rules: {}\n")
    write(tmp_path, rel, text)
    with pytest.raises(UsageError) as caught:
        load_config(tmp_path / "policy.yaml")
    for word in words:
        assert word in str(caught.value), str(caught.value)


def test_levels_and_options_layer_root_then_environment(tmp_path):
    write(tmp_path, "policy.yaml", "rules:\n  image-tag: {level: warning, conf: {require: tag}}\n"
                                   "  probes: {conf: {skipKinds: [Job]}}\n")
    write(tmp_path, "environments/prod/policy.yaml", "rules:\n  image-tag: {conf: {require: version}}\n")
    config = load_config(tmp_path / "policy.yaml")
    assert config.rule_settings("image-tag", "error", {"require": "tag"}, "prod") == ("warning", {"require": "version"})
    assert config.rule_settings("image-tag", "error", {"require": "tag"}, "minikube") == ("warning", {"require": "tag"})
    assert config.rule_settings("probes", "error", {"skipKinds": []}, "prod") == ("error", {"skipKinds": ["Job"]})


def test_a_policy_file_for_path_merges_over_the_root(tmp_path):
    write(tmp_path, "policy.yaml", "gitCredentialsSecret: git-credentials\nrules:\n  image-tag: {conf: {require: tag}}\n")
    extra = write(tmp_path, "elsewhere/chart-policy.yaml",
                  "rules:\n  image-tag: {level: warning}\nprovidedSecrets:\n  api-key: [token]\n"
                  "roles:\n  singleton: {matchLabels: {app.kubernetes.io/component: scheduler}}\n")
    config = load_config(tmp_path / "policy.yaml", extra=extra)
    assert config.rule_settings("image-tag", "error", {"require": "tag"}, None) == ("warning", {"require": "tag"})
    assert config.provided_secrets == {"api-key": ["token"]}
    assert config.roles == {"singleton": [{"matchLabels": {"app.kubernetes.io/component": "scheduler"}}]}
    assert config.git_credentials_secret == "git-credentials"
    write(tmp_path, "elsewhere/chart-policy.yaml", "rules: {}\nnamespace: shop\n")
    with pytest.raises(UsageError, match=r"chart-policy.yaml:2: unknown key 'namespace'"):
        load_config(tmp_path / "policy.yaml", extra=extra)
    with pytest.raises(UsageError, match="--policy file not found"):
        load_config(tmp_path / "policy.yaml", extra=tmp_path / "missing.yaml")


def test_the_repository_policy_files_load():
    config = load_config()
    assert config.rule_settings("image-tag", "error", {"require": "tag"}, "prod")[1] == {"require": "version"}


def test_an_environments_roles_and_provided_objects_apply_to_that_environment_only(tmp_path):
    write(tmp_path, "policy.yaml", "providedSecrets: {shared: null}\n")
    write(tmp_path, "environments/prod/policy.yaml",
          "providedSecrets: {api-key: [token]}\nprovidedConfigMaps: [ca]\n"
          "roles:\n  autoscaled-pool:\n    - matchLabels: {app: pool}\n    - matchExpressions: [{key: tier, operator: In, values: [batch]}]\n")
    config = load_config(tmp_path / "policy.yaml")
    prod, other = config.for_env("prod"), config.for_env("minikube")
    assert prod.provided_secrets == {"shared": None, "api-key": ["token"]} and prod.provided_configmaps == ["ca"]
    assert prod.roles == {"autoscaled-pool": [{"matchLabels": {"app": "pool"}},
                                              {"matchExpressions": [{"key": "tier", "operator": "In",
                                                                     "values": ["batch"]}]}]}
    assert other.provided_secrets == {"shared": None} and other.roles == {}
