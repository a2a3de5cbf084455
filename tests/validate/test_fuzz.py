"""Rules never crash: every scalar of the real rendered output, turned into a string, a list, a map and null.

The fuzz test calls each rule's ``check`` directly, not through the engine, so the engine's safety net
(``engine.checked``) cannot hide a crash: a rule meeting an ill-typed field must skip it (the schema stage
reports it). A sample of the mutations, seeded, keeps it well under a minute; ``DOX_FUZZ_ALL=1`` runs all.
"""

from __future__ import annotations

import os
import random
import traceback

import pytest

from doxops import environments
from doxops.paths import REPO_ROOT
from doxops.validate import engine
from doxops.validate.manifests import load_directory
from doxops.validate.rules import REGISTRY

#: no-credentials scans files on disk, not the parsed objects; in-memory mutations cannot reach it.
RULES = {rule_id: module for rule_id, module in REGISTRY.items() if rule_id != "no-credentials"}
SAMPLE = 700  # mutations per environment (of about 3,000 to 3,500)
SEED = 16


def scalars(node, path=()):
    """(path, value) of every scalar, keys excluded."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from scalars(value, path + (key,))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from scalars(value, path + (i,))
    else:
        yield path, node


def mutations(value):
    as_string = "fuzz" if isinstance(value, str) else str(value)  # 2 -> "2", true -> "True"
    return [("string", as_string), ("list", [as_string]), ("map", {"fuzz": as_string}), ("null", None)]


def set_at(data, path, value):
    node = data
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value


def setup(env_name):
    env = next(e for e in environments.discover() if e.name == env_name)
    manifests = load_directory(REPO_ROOT / "rendered" / env_name)
    cases = [(i, path, name, new) for i, m in enumerate(manifests) for path, value in scalars(m.data)
             for name, new in mutations(value)]
    return env, manifests, cases


def run_rules(manifests, env, paths_cache) -> list[str]:
    ctx = engine.Context(manifests, engine.load_config(), env=env.name, namespace=env.namespace, root=REPO_ROOT)
    ctx._argocd_paths = paths_cache  # what the Applications point at: the committed output, parsed once
    crashes = []
    for rule_id, module in RULES.items():
        level, conf = ctx.config.rule_settings(rule_id, module.LEVEL, module.CONF, env.name)
        try:
            for _ in module.check(ctx, conf):
                pass
        except Exception as exc:  # noqa: BLE001 - this is what the test looks for
            crashes.append(f"{rule_id}: {type(exc).__name__}: {exc} at "
                           f"{traceback.extract_tb(exc.__traceback__)[-1].filename.rsplit('/', 1)[-1]}:"
                           f"{traceback.extract_tb(exc.__traceback__)[-1].lineno}")
    return crashes


@pytest.mark.parametrize("env_name", ["prod", "minikube"])
def test_no_rule_raises_on_any_sampled_mutation_of_the_rendered_output(env_name):
    env, manifests, cases = setup(env_name)
    paths_cache: dict = {}
    assert run_rules(manifests, env, paths_cache) == []
    rng = random.Random(SEED)
    sample = cases if os.environ.get("DOX_FUZZ_ALL") else rng.sample(cases, min(SAMPLE, len(cases)))
    # The case of issue 16: the HPA's minReplicas as the string "2" (a JSON patch in prod) crashed autoscaled-pool.
    hpa = next(i for i, m in enumerate(manifests) if m.kind == "HorizontalPodAutoscaler")
    sample.append((hpa, ("spec", "minReplicas"), "string", "2"))
    failures = []
    for index, path, name, new in sample:
        data = manifests[index].data
        old = data
        for part in path:
            old = old[part]
        set_at(data, path, new)
        try:
            for crash in run_rules(manifests, env, paths_cache):
                failures.append(f"{manifests[index].path.name} {'.'.join(map(str, path))} -> {name} {new!r}: {crash}")
        finally:
            set_at(data, path, old)
    assert failures == [], f"{len(failures)} crashes, first 20:\n" + "\n".join(failures[:20])
