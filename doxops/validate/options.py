"""Typed rule options: each rule declares an ``Options`` dataclass; configuration is checked against it.

A rule module declares its options with types and defaults::

    @dataclass(frozen=True)
    class Options:
        require: Literal["tag", "version", "digest"] = "tag"

    CONF = defaults(Options)

The policy loader (``policy.py``) checks every ``conf`` in ``policy.yaml``,
``environments/<env>/policy.yaml`` and a ``--policy`` file against the rule's
``Options``: an unknown option or a value of the wrong type is a usage error
naming ``file:line``, the option and the known ones. Rules receive the merged
options as a plain dict (``conf["require"]``).

A rule may add ``Options.validate(name, value)``, a static method returning why
a well-typed value is still wrong (an unknown plugin name), or None.

Supported annotations: ``str``, ``int``, ``float``, ``bool``, ``None``,
``Literal[...]``, unions (``str | None``), ``list[X]`` and ``dict[K, V]``.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Literal, Union, get_args, get_origin


def fields(options: type) -> dict[str, dataclasses.Field]:
    """The declared options of an ``Options`` dataclass, by name."""
    return {f.name: f for f in dataclasses.fields(options)}


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    raise TypeError(f"option {f.name} has no default; every rule option needs one")


def defaults(options: type) -> dict:
    """The default options as the dict rules receive (fresh containers each call)."""
    return {name: _default(f) for name, f in fields(options).items()}


def hints(options: type) -> dict[str, Any]:
    """The resolved type annotation of each option."""
    return typing.get_type_hints(options)


def fits(value: Any, annotation: Any) -> bool:
    """Whether a configuration value (as YAML gives it) has the declared type."""
    if annotation is Any:
        return True
    if annotation is None or annotation is type(None):
        return value is None
    origin = get_origin(annotation)
    if origin is Literal:
        return any(value == choice and isinstance(value, type(choice)) and isinstance(value, bool) == isinstance(choice, bool)
                   for choice in get_args(annotation))
    if origin in (Union, types.UnionType):
        return any(fits(value, arm) for arm in get_args(annotation))
    if origin in (list, tuple):
        args = get_args(annotation)
        return isinstance(value, list) and all(fits(item, args[0] if args else Any) for item in value)
    if origin is dict:
        key_type, value_type = get_args(annotation) or (Any, Any)
        return isinstance(value, dict) and all(fits(k, key_type) and fits(v, value_type) for k, v in value.items())
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is str:
        return isinstance(value, str)
    return isinstance(value, annotation)


_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false", type(None): "null"}


def describe(annotation: Any) -> str:
    """The declared type in words: ``a list of strings``, ``one of 'tag', 'version'``."""
    if annotation is None:
        return "null"
    origin = get_origin(annotation)
    if origin is Literal:
        return "one of " + ", ".join(repr(c) for c in get_args(annotation))
    if origin in (Union, types.UnionType):
        return " or ".join(describe(arm) for arm in get_args(annotation))
    if origin in (list, tuple):
        args = get_args(annotation)
        inner = describe(args[0]) if args else "anything"
        return f"a list of {_plural(inner)}"
    if origin is dict:
        key_type, value_type = get_args(annotation) or (Any, Any)
        return f"a map of {_plural(describe(key_type))} to {_plural(describe(value_type))}"
    return _NAMES.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _plural(words: str) -> str:
    for article in ("an ", "a "):
        if words.startswith(article):
            return words[len(article):] + "s"
    return words


def kind_of(value: Any) -> str:
    """What a YAML value is, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a map"
    return type(value).__name__


def known(options: type) -> str:
    """Every option with its type and default, for messages: ``require (one of 'tag', ...; default 'tag')``."""
    types_ = hints(options)
    described = [f"{name} ({describe(types_[name])}; default {_default(f)!r})" for name, f in fields(options).items()]
    return "; ".join(described) if described else "none (this rule takes no options)"


def problem(options: type, name: str, value: Any) -> str | None:
    """Why ``name: value`` is not a valid option of ``options``; None when it is."""
    declared = fields(options)
    if name not in declared:
        return f"unknown option {name!r}; known options: {known(options)}"
    expected = hints(options)[name]
    if not fits(value, expected):
        return f"option {name} is {value!r} ({kind_of(value)}); expected {describe(expected)}"
    validate = getattr(options, "validate", None)  # a rule's own check of a well-typed value
    why = validate(name, value) if validate else None
    return f"option {name}: {why}" if why else None
