"""One-line rule tests: a fixture file and the diagnostics expected from it."""

from __future__ import annotations

from pathlib import Path

from doxops.validate import engine
from doxops.validate.manifests import load_directory
from doxops.validate.rules import REGISTRY

FIXTURES = Path(__file__).parent / "fixtures"


def config(**kwargs) -> engine.PolicyConfig:
    """A policy configuration independent of the repository's policy.yaml."""
    return engine.PolicyConfig(path=Path("policy.yaml"), **kwargs)


def run_rule(rule_id: str, fixture: str | Path, *, env: str | None = None, namespace: str | None = None,
             cfg: engine.PolicyConfig | None = None) -> list:
    """Diagnostics of ``rule_id`` alone over a fixture file or directory.

    A directory holding ``rendered/`` is a small repository (the Argo CD rules read the paths their Applications
    name): its ``rendered/*/argocd`` manifests are validated with the directory as the repository root.
    """
    assert rule_id in REGISTRY, f"unknown rule {rule_id}"
    path = Path(fixture)
    if not path.is_absolute():
        path = FIXTURES / rule_id / path
    root = None
    if path.is_dir() and (path / "rendered").is_dir():
        root = path
        manifests = [m for d in sorted((path / "rendered").glob("*/argocd")) for m in load_directory(d)]
    else:
        manifests = load_directory(path if path.is_dir() else path.parent)
    if path.is_file():
        manifests = [m for m in manifests if m.path == path]
    extra = {"root": root} if root else {}
    return [d for d in engine.run(manifests, env=env, namespace=namespace, config=cfg or config(), only=[rule_id],
                                  **extra) if d.rule == rule_id]
