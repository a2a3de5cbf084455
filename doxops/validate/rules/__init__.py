"""The rule registry: id -> module. Add a rule by adding its module here."""

from __future__ import annotations

from types import ModuleType

from . import autoscaled_pool, singleton

REGISTRY: dict[str, ModuleType] = {
    module.ID: module
    for module in (
        singleton,
        autoscaled_pool,
    )
}
