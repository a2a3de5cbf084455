"""Packages whose public names load their module on first use (PEP 562), so a light caller stays light."""

from __future__ import annotations

import importlib
import sys
from typing import Callable


def exports(package: str, names: dict[str, str]) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: ``names`` maps each public name to the module defining it
    (relative to the package, or absolute). A name is imported on first use and kept in the package."""
    namespace = sys.modules[package].__dict__

    def getattr_(name: str) -> object:
        try:
            module = names[name]
        except KeyError:
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        value = getattr(importlib.import_module(module, package), name)
        namespace[name] = value
        return value

    def dir_() -> list[str]:
        return sorted(set(namespace) | set(names))

    return getattr_, dir_
