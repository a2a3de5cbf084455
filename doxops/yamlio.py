"""YAML in and out: strict loading with ``path:line:col`` errors, stable dumping.

Loading uses libyaml through PyYAML (fast) with one addition YAML itself lacks:
a duplicate key is an error, not a silent overwrite. Every document keeps the
line it starts on, so diagnostics can point into the file.

Tool output that Kubernetes will read (kustomize's stream) is loaded with
:func:`loads_go`: plain scalars mean what Go's reader (kubectl, Argo CD) takes
them for, not what PyYAML's resolver says. :func:`dump` writes every string that
any reader could take for something else quoted (:mod:`doxops.yamlscalars`), so
the text means one thing to every YAML reader.
"""

from __future__ import annotations

import operator
import re
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import yaml

from . import yamlscalars
from .errors import UsageError
from .paths import relative

try:  # libyaml is in the PyYAML wheels; the pure-Python loader is the fallback
    _BaseLoader = yaml.CSafeLoader
    _BaseDumper = yaml.CSafeDumper
except AttributeError:  # pragma: no cover - depends on the wheel
    _BaseLoader = yaml.SafeLoader
    _BaseDumper = yaml.SafeDumper

#: Files larger than this are refused before parsing (a pasted binary, a runaway values file).
MAX_BYTES = 8 * 1024 * 1024


class StrictLoader(_BaseLoader):
    """SafeLoader that refuses duplicate mapping keys."""

    def construct_mapping(self, node, deep=False):
        if not isinstance(node, yaml.MappingNode):
            raise yaml.constructor.ConstructorError(None, None, f"expected a mapping node, but found {node.id}",
                                                    node.start_mark)
        self.flatten_mapping(node)  # YAML merge keys (<<), as SafeLoader does
        mapping: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in mapping
            except TypeError:
                raise yaml.constructor.ConstructorError("while constructing a mapping", node.start_mark,
                                                        "found unhashable key", key_node.start_mark) from None
            if duplicate:
                # the first key ``in`` matched: identity or equality (.nan is one float object, not equal to itself)
                first = next(k for k, _ in node.value if (other := self.construct_object(k, deep=True)) is key
                             or other == key)
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark,
                    f"found duplicate key {key!r} (first at line {first.start_mark.line + 1})", key_node.start_mark,
                )
            mapping[key] = self.construct_object(value_node, deep=deep)
        return mapping


StrictLoader.add_constructor("tag:yaml.org,2002:map", lambda loader, node: loader.construct_mapping(node, deep=True))

_MAP, _SEQ, _STR_TAG = "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq", "tag:yaml.org,2002:str"
_MERGE, _INT_TAG = "tag:yaml.org,2002:merge", "tag:yaml.org,2002:int"
_Scalar, _Mapping, _Sequence = yaml.ScalarNode, yaml.MappingNode, yaml.SequenceNode
#: Plain scalars already resolved, per loader class (keys and common values repeat in every file).
_RESOLVED: dict[tuple[type, str], str] = {}
_RESOLVED_MAX = 1 << 15


class _Slow(Exception):
    """A document the fast construction leaves to PyYAML's own: merge keys, other tags, a duplicate key."""


def _resolve(self, kind, value, implicit):
    """PyYAML's resolver, answered without a regular expression where none can match.

    Most scalars are keys and names whose first character starts no implicit type (``apiVersion``); a
    quoted scalar is always a string. Everything else goes to PyYAML's resolver, memoised per class.
    """
    if self.yaml_path_resolvers:
        return yaml.resolver.BaseResolver.resolve(self, kind, value, implicit)
    if kind is _Mapping:
        return self.DEFAULT_MAPPING_TAG
    if kind is _Sequence:
        return self.DEFAULT_SEQUENCE_TAG
    if not implicit[0]:
        return self.DEFAULT_SCALAR_TAG
    resolvers = self.yaml_implicit_resolvers
    if None not in resolvers and (value[:1] if value else "") not in resolvers:
        return self.DEFAULT_SCALAR_TAG
    key = (type(self), value)
    tag = _RESOLVED.get(key)
    if tag is None:
        tag = yaml.resolver.BaseResolver.resolve(self, kind, value, implicit)
        if len(_RESOLVED) < _RESOLVED_MAX:
            _RESOLVED[key] = tag
    return tag


StrictLoader.resolve = _resolve
if not StrictLoader.yaml_path_resolvers:
    # libyaml's composer calls these two for every node; without path resolvers (none is ever added) they
    # do nothing. Builtins that take the same arguments and do nothing save a Python call each:
    # descend_resolver(parent, index) and ascend_resolver().
    StrictLoader.descend_resolver = operator.is_
    StrictLoader.ascend_resolver = tuple


def _construct_document(self, node):
    """The document's data, built directly from the node tree for the common case (mappings, sequences and
    scalars of the standard tags, no merge keys, no duplicate keys); anything else, every error included,
    goes through PyYAML's constructor (``construct_mapping`` above), so results and messages are PyYAML's.
    An aliased mapping or sequence is built once and shared by every use, as PyYAML does: a copy per use
    would grow exponentially with nested aliases (a few hundred bytes could take minutes and gigabytes)."""
    constructors = self.yaml_constructors
    built: dict[int, Any] = {}  # id(node) -> its value; nodes outlive the build, so ids are stable

    def build(node):
        cls = node.__class__
        if cls is not _Scalar:
            done = built.get(id(node))
            if done is not None:
                return done
            value = build_collection(node, cls)
            built[id(node)] = value
            return value
        return build_scalar(node)

    def build_collection(node, cls):
        if cls is _Mapping and node.tag == _MAP:
            mapping = {}
            for key_node, value_node in node.value:
                if key_node.__class__ is _Scalar and key_node.tag == _STR_TAG:
                    key = key_node.value
                elif key_node.tag == _MERGE:
                    raise _Slow
                else:
                    key = build(key_node)
                try:
                    if key in mapping:
                        raise _Slow
                except TypeError:  # an unhashable key
                    raise _Slow from None
                mapping[key] = build(value_node)
            return mapping
        if cls is _Sequence and node.tag == _SEQ:
            return [build(child) for child in node.value]
        raise _Slow

    def build_scalar(node):
        tag = node.tag
        if tag == _STR_TAG:
            return node.value
        if tag == _INT_TAG:  # a plain decimal: what construct_yaml_int returns, without its branches
            value = node.value
            if value.isdigit() and value.isascii() and (value[0] != "0" or value == "0"):
                return int(value)
        constructor = constructors.get(tag)
        if constructor is None:
            raise _Slow
        value = constructor(self, node)
        if isinstance(value, types.GeneratorType):
            raise _Slow
        return value

    try:
        return build(node)
    except Exception:  # noqa: BLE001 - _Slow; RecursionError (a recursive alias, nesting too deep for the fast
        # path); or a constructor's error (!!int abc, 2001-13-45): PyYAML's constructor reports the error it meets
        # first in its own order (merge keys before values, nested sequences last), as it would without this path
        return yaml.constructor.BaseConstructor.construct_document(self, node)


StrictLoader.construct_document = _construct_document


@dataclass(frozen=True)
class Document:
    """One YAML document of a file and the 1-based line where it starts."""

    data: Any
    path: Path
    line: int


def _error(path: Path, exc: yaml.YAMLError) -> UsageError:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    where = f"{relative(path)}:{mark.line + 1}:{mark.column + 1}" if mark else relative(path)
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    detail = f"{context}: {problem}" if context and "duplicate" not in problem else problem
    return UsageError(f"{where}: invalid YAML: {detail}; fix the file and run again")


def read_text(path: Path) -> str:
    """The file as UTF-8 text, refusing binaries and oversized files clearly."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise UsageError(f"{relative(path)}: no such file") from None
    if size > MAX_BYTES:
        raise UsageError(
            f"{relative(path)}: {size / 1048576:.1f} MB is larger than the {MAX_BYTES // 1048576} MB limit "
            "for YAML input; is this the right file?"
        )
    raw = path.read_bytes()
    if b"\0" in raw:
        raise UsageError(f"{relative(path)}: binary file (NUL bytes); YAML expected")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{relative(path)}: not UTF-8 text (byte {exc.start}); YAML must be UTF-8") from None


def load_all(path: Path, text: str | None = None) -> list[Document]:
    """Every non-empty document of a YAML file, with its starting line."""
    path = Path(path)
    text = read_text(path) if text is None else text
    docs: list[Document] = []
    loader = StrictLoader(text)
    line = 1
    try:
        while loader.check_node():
            node = loader.get_node()
            line = node.start_mark.line + 1
            data = loader.construct_document(node)
            if data is not None:
                docs.append(Document(data, path, line))
    except yaml.YAMLError as exc:
        raise _error(path, exc) from None
    except RecursionError:
        raise UsageError(f"{relative(path)}:{line}: this document nests too deeply to read (hundreds of levels); "
                         "is this the right file?") from None
    except (ValueError, KeyError, TypeError, OverflowError) as exc:  # a value PyYAML's constructors refuse
        raise UsageError(f"{relative(path)}:{line}: a value of this document cannot be read ({exc}), e.g. a "
                         "date that does not exist (2001-02-30) or a tag whose value does not fit (!!int abc); "
                         "quote it if it is meant as a string") from None
    finally:
        loader.dispose()
    return docs


def load_one(path: Path) -> Any:
    """A single-document YAML file (a kustomization, a values file); empty -> None."""
    docs = load_all(path)
    if len(docs) > 1:
        raise UsageError(f"{relative(path)}:{docs[1].line}: expected one YAML document, found {len(docs)}")
    return docs[0].data if docs else None


def loads_all(text: str, origin: str = "<stream>", loader: type = StrictLoader) -> Iterator[Any]:
    """Documents of a YAML string (tool output); errors name ``origin``."""
    try:
        for doc in yaml.load_all(text, Loader=loader):
            if doc is not None:
                yield doc
    except yaml.YAMLError as exc:
        raise UsageError(f"{origin}: tool output is not valid YAML: {exc}") from None


_STR = "tag:yaml.org,2002:str"
_GO_PLAIN = "tag:dox-asdlc.io,2026:go-plain"  # a plain scalar of a Go-read stream; never written


class GoLoader(StrictLoader):
    """StrictLoader whose plain scalars resolve as go-yaml v2 resolves them (y is true, 0o17 is 15)."""

    def resolve(self, kind, value, implicit):
        if kind is yaml.ScalarNode and implicit[0] and value != "<<":
            return _GO_PLAIN
        return super().resolve(kind, value, implicit)


GoLoader.add_constructor(_GO_PLAIN, lambda loader, node: yamlscalars.go_plain(node.value))
# A plain << merges as a key (flatten_mapping) and, as Go reads it, is the string "<<" as a value.
GoLoader.add_constructor("tag:yaml.org,2002:merge", lambda loader, node: loader.construct_scalar(node))


def loads_go(text: str, origin: str = "<stream>") -> Iterator[Any]:
    """Documents of a stream that Kubernetes tools will read, as they read it; errors name ``origin``."""
    return loads_all(text, origin, loader=GoLoader)


_NOT_PLAIN = "tag:dox-asdlc.io,2026:not-plain"  # never written: only denies the plain style
#: Characters that YAML readers disagree on inside plain or quoted text: control characters, line and
#: paragraph separators, the byte order mark. A string holding one is written double-quoted (escaped).
_ESCAPE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\ufeff\ud800-\udfff\ufffe\uffff]")


class _Dumper(_BaseDumper):
    """Block style, literal blocks for multi-line strings, no aliases; ambiguous strings quoted."""

    def ignore_aliases(self, data):
        return True

    def resolve(self, kind, value, implicit):
        tag = super().resolve(kind, value, implicit)
        if kind is yaml.ScalarNode and implicit[0] and tag == _STR and yamlscalars.ambiguous(value):
            return _NOT_PLAIN
        return tag


def _str_representer(dumper, value: str):
    if _ESCAPE.search(value):
        return dumper.represent_scalar(_STR, value, style='"')
    if "\n" in value:
        return dumper.represent_scalar(_STR, value, style="|")
    return dumper.represent_scalar(_STR, value)


_Dumper.add_representer(str, _str_representer)


def dump(data: Any) -> str:
    """Stable YAML text: key order kept, block style, UTF-8, no line folding."""
    return yaml.dump(
        data, Dumper=_Dumper, sort_keys=False, default_flow_style=False,
        allow_unicode=True, width=1 << 16, indent=2,
    )
