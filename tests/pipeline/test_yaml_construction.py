"""yamlio's fast loading gives exactly what PyYAML's own loader gives: the real component is the oracle.

:mod:`doxops.yamlio` builds common documents straight from libyaml's node tree (``_construct_document``) and
answers PyYAML's implicit resolution with a first-character shortcut and a memo (``_resolve``), falling back
to PyYAML's constructor for everything else. The reference below is PyYAML's loader as it ships: libyaml
(``yaml.CSafeLoader``) with PyYAML's ``SafeConstructor`` and ``BaseResolver``, plus the strict loader's
additions written out again here, independently of yamlio:

* a key that is already in the mapping (Python equality: ``1``, ``1.0`` and ``true`` are one key; keys merged
  with ``<<`` count) is an error ``found duplicate key``, at the second key;
* every mapping is built deep, in document order (as ``StrictLoader`` has since it checks duplicates): an
  anchored mapping holding an alias to itself is an error, not a recursive dict, and of two errors in a
  document the first in that order is the one reported.

Inputs: random data dumped by PyYAML in every style (look-alike strings, numbers, nulls, multi-document
streams), the same with a key repeated; hand-made YAML templates (quoted, literal and tagged scalars, anchors
and aliases, merge keys, complex and duplicate keys, comments, empty documents), the same texts with one random
edit (mostly errors), flow documents holding several errors (which one is reported depends on the order of
construction), a fixed list of edge cases, and every YAML file of the repository. For each, ``load_all`` and
``loads_all`` must give the reference's documents, compared type-strictly (``1``, ``True``, ``1.0`` and
``"1"`` differ; key order counts), each starting on the same line, or the reference's error at the same
``path:line:col``. Documents the reference reads without an error must also be exactly what a bare
``yaml.load_all(text, Loader=yaml.CSafeLoader)`` returns. ``GoLoader`` (``loads_go``) is compared with
itself less the fast path.

Hypothesis runs derandomized (the same examples every run), with a bounded count and no example database.
"""

from __future__ import annotations

import atexit
import collections.abc
import datetime
import json
import math
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, configuration, given, settings
from hypothesis import strategies as st

from doxops import yamlio
from doxops.errors import UsageError
from doxops.paths import REPO_ROOT, relative

# Hypothesis keeps caches in ``.hypothesis`` of the working directory from the moment a test is defined: point
# it at a temporary directory, removed at exit, so nothing is written in the clone.
_HOME = tempfile.mkdtemp(prefix="dox-hypothesis-")
configuration.set_hypothesis_home_dir(_HOME)
atexit.register(shutil.rmtree, _HOME, True)

#: Examples per property test (each example is a whole stream, read by yamlio's loaders and the references).
EXAMPLES = {"dumped": 300, "repeated": 150, "templates": 600, "errors": 400, "edited": 400, "go": 400}
RUNS = settings(derandomize=True, database=None, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

_ConstructorError = yaml.constructor.ConstructorError
_MAP_TAG = "tag:yaml.org,2002:map"


# --------------------------------------------------------------------------- the references

class Reference(yaml.CSafeLoader):
    """PyYAML's loader (libyaml, SafeConstructor, BaseResolver) with the strict loader's two additions."""

    def construct_mapping(self, node, deep=False):
        # SafeConstructor.construct_mapping (merge keys flattened first) and BaseConstructor's loop, with the
        # duplicate check between the hashability check and the value.
        if not isinstance(node, yaml.MappingNode):
            raise _ConstructorError(None, None, f"expected a mapping node, but found {node.id}", node.start_mark)
        self.flatten_mapping(node)
        mapping: dict = {}
        first: dict = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, collections.abc.Hashable):
                raise _ConstructorError("while constructing a mapping", node.start_mark,
                                        "found unhashable key", key_node.start_mark)
            if key in mapping:
                raise _ConstructorError(
                    "while constructing a mapping", node.start_mark,
                    f"found duplicate key {key!r} (first at line {first[key].start_mark.line + 1})",
                    key_node.start_mark,
                )
            first[key] = key_node
            mapping[key] = self.construct_object(value_node, deep=deep)
        return mapping


Reference.add_constructor(_MAP_TAG, lambda loader, node: loader.construct_mapping(node, deep=True))


class _NoFastPath(yamlio.StrictLoader):
    """StrictLoader with PyYAML's own document construction and resolution back in place."""

    construct_document = yaml.constructor.BaseConstructor.construct_document
    resolve = yaml.resolver.BaseResolver.resolve
    descend_resolver = yaml.resolver.BaseResolver.descend_resolver
    ascend_resolver = yaml.resolver.BaseResolver.ascend_resolver


class ReferenceGo(yamlio.GoLoader, _NoFastPath):
    """GoLoader less the fast path. Its MRO is ReferenceGo, GoLoader, _NoFastPath, StrictLoader, ...: GoLoader's
    own ``resolve`` runs unchanged and its ``super().resolve`` (non-plain scalars, collections, ``<<``) is
    PyYAML's BaseResolver.resolve, not the shortcut; construction is BaseConstructor's, with GoLoader's
    constructors (plain scalars as Go reads them, ``<<`` as a value) and StrictLoader's mapping."""


def reference(text: str, loader: type = Reference) -> tuple[list[tuple[int, object]], BaseException | None]:
    """The reference's (line, data) of every non-empty document before the first error, and that error."""
    docs: list[tuple[int, object]] = []
    reader = loader(text)
    try:
        while reader.check_node():
            node = reader.get_node()
            data = reader.construct_document(node)
            if data is not None:
                docs.append((node.start_mark.line + 1, data))
    except Exception as exc:  # noqa: BLE001 - every error is compared, whatever its class
        return docs, exc
    finally:
        reader.dispose()
    return docs, None


def plain_pyyaml(text: str) -> tuple[list, BaseException | None]:
    """What ``yaml.load_all(text, Loader=yaml.CSafeLoader)`` returns, less empty documents."""
    docs = []
    try:
        for doc in yaml.load_all(text, Loader=yaml.CSafeLoader):
            if doc is not None:
                docs.append(doc)
    except Exception as exc:  # noqa: BLE001
        return docs, exc
    return docs, None


# --------------------------------------------------------------------------- type-strict comparison

def _set_key(value) -> tuple[str, str]:
    return type(value).__name__, repr(value)


def assert_same(got, want, where: str = "document", _seen: set | None = None) -> None:
    """``got`` is ``want``'s value exactly: the same type at every level (bool is not int, int is not float,
    date is not datetime), dict keys in the same order, nan equal to nan, -0.0 not 0.0; recursive data ok."""
    seen = set() if _seen is None else _seen
    assert type(got) is type(want), f"{where}: {type(got).__name__} {got!r} != {type(want).__name__} {want!r}"
    if isinstance(want, (dict, list)):
        pair = (id(got), id(want))
        if pair in seen:  # compared already, or being compared (a recursive alias)
            return
        seen.add(pair)
        assert len(got) == len(want), f"{where}: {len(got)} entries != {len(want)}: {got!r} != {want!r}"
        if isinstance(want, dict):
            for index, ((gk, gv), (wk, wv)) in enumerate(zip(got.items(), want.items())):
                assert_same(gk, wk, f"{where} key #{index}", seen)
                assert_same(gv, wv, f"{where}[{wk!r}]", seen)
        else:
            for index, (g, w) in enumerate(zip(got, want)):
                assert_same(g, w, f"{where}[{index}]", seen)
    elif isinstance(want, float):
        same = (math.isnan(got) and math.isnan(want)) or (got == want and math.copysign(1, got) == math.copysign(1, want))
        assert same, f"{where}: {got!r} != {want!r}"
    elif isinstance(want, (set, frozenset)):
        assert {_set_key(v) for v in got} == {_set_key(v) for v in want}, f"{where}: {got!r} != {want!r}"
    elif isinstance(want, (datetime.date, datetime.time)):  # datetime too: repr names the time zone
        assert repr(got) == repr(want), f"{where}: {got!r} != {want!r}"
    else:  # str, int, bool, None, bytes
        assert got == want and repr(got) == repr(want), f"{where}: {got!r} != {want!r}"


def _failure(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


# --------------------------------------------------------------------------- the checks

GENERATED = REPO_ROOT / "tests" / "pipeline" / "generated.yaml"  # only named in messages; never written


def check_load_all(text: str, path: Path = GENERATED, from_file: bool = False) -> None:
    """``yamlio.load_all`` against the reference: documents, lines, or the error and where it is."""
    want, error = reference(text)
    try:
        got = yamlio.load_all(path) if from_file else yamlio.load_all(path, text)
    except UsageError as exc:
        if isinstance(error, (ValueError, KeyError, TypeError, OverflowError, RecursionError)) \
                and not isinstance(error, yaml.YAMLError):
            # a value PyYAML's constructors refuse (!!int abc, 2001-02-30): the same refusal, as an input error
            # naming the file and the document's line, never the bare exception
            assert re.match(rf"{re.escape(relative(path))}:\d+: ", str(exc)) and str(error) in str(exc), \
                f"{exc}\n!= {_failure(error)}\n--- input:\n{text}"
            return
        assert isinstance(error, yaml.YAMLError), (
            f"yamlio rejects what the reference {'reads' if error is None else 'fails differently on'}: "
            f"{exc}; reference: {_failure(error) if error else want!r}\n--- input:\n{text}")
        mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
        where = f"{relative(path)}:{mark.line + 1}:{mark.column + 1}" if mark else relative(path)
        assert str(exc).startswith(f"{where}: invalid YAML: "), f"{exc}\n!= {where}: {error}\n--- input:\n{text}"
        assert (getattr(error, "problem", None) or str(error)) in str(exc), f"{exc}\n!= {error}\n--- input:\n{text}"
        return
    except Exception as exc:  # noqa: BLE001 - a non-YAML error (e.g. ValueError of !!int abc): the reference's
        assert error is not None and type(exc) is type(error) and str(exc) == str(error), (
            f"yamlio: {_failure(exc)}; reference: {_failure(error) if error else want!r}\n--- input:\n{text}")
        return
    assert error is None, f"yamlio reads what the reference rejects ({_failure(error)}): {got!r}\n--- input:\n{text}"
    assert [d.line for d in got] == [line for line, _ in want], f"lines differ\n--- input:\n{text}"
    assert all(d.path == path for d in got)
    for index, (doc, (_, data)) in enumerate(zip(got, want)):
        assert_same(doc.data, data, f"document #{index}")
    # The reference is PyYAML's loader plus only errors: what it reads, PyYAML reads the same.
    plain, plain_error = plain_pyyaml(text)
    assert plain_error is None, f"bare PyYAML fails ({_failure(plain_error)}) where the reference reads\n{text}"
    assert len(plain) == len(want)
    for index, (data, (_, expected)) in enumerate(zip(plain, want)):
        assert_same(expected, data, f"document #{index} (reference vs bare PyYAML)")


def check_stream(text: str, read=yamlio.loads_all, loader: type = Reference) -> None:
    """``loads_all``/``loads_go`` against a reference: the documents before an error, then the same error."""
    want, error = reference(text, loader)
    got, failure = [], None
    try:
        for doc in read(text):
            got.append(doc)
    except Exception as exc:  # noqa: BLE001
        failure = exc
    label = f"{read.__name__} vs {loader.__name__}"
    if error is None:
        assert failure is None, f"{label}: {_failure(failure)} where the reference reads\n--- input:\n{text}"
    elif isinstance(error, yaml.YAMLError):
        assert isinstance(failure, UsageError) and str(failure) == f"<stream>: tool output is not valid YAML: {error}", (
            f"{label}: {_failure(failure) if failure else 'no error'}; reference: {_failure(error)}\n--- input:\n{text}")
    else:
        assert type(failure) is type(error) and str(failure) == str(error), (
            f"{label}: {_failure(failure) if failure else 'no error'}; reference: {_failure(error)}\n--- input:\n{text}")
    assert len(got) == len(want), f"{label}: {len(got)} documents != {len(want)}\n--- input:\n{text}"
    for index, (doc, (_, data)) in enumerate(zip(got, want)):
        assert_same(doc, data, f"{label} document #{index}")


def check_all(text: str) -> None:
    check_load_all(text)
    check_stream(text)
    check_stream(text, yamlio.loads_go, ReferenceGo)


# --------------------------------------------------------------------------- 1. random data, dumped by PyYAML

LOOKALIKES = [
    "yes", "Yes", "YES", "No", "no", "on", "Off", "y", "n", "true", "False", "~", "null", "Null", "NULL",
    "0x1F", "0o17", "017", "0b101", "1_000", "+12", "-0", "0", "00", "007", "08", "09.5", "1.0", "-1.5", ".5",
    "1.", "+.5", "1e3", "1.5E-3", "6.8523015e+5", "685_230.15", ".inf", "-.Inf", "+.INF", ".nan", ".NaN",
    "2001-12-14", "2001-12-14t21:59:43.10-05:00", "2001-12-14 21:59:43.10 -5", "2002-12-14T21:59:43Z",
    "2001-13-45", "12:30:00", "190:20:30.15", "-1:30", "1:60", "=", "<<", "", " ", "a b", "#", "- x", ": x",
    "a: b", "'q'", '"q"', "é", "日本", "😀", "\t", "line1\nline2", "trailing\n", "1__0", "+", "-", ".", "0x",
    "0xG", "1e", "1,000", "1:2:x", "123456789012345678901234567890", "٣", "²",
]
numberish = st.from_regex(r"[-+]?(0[xob]?)?[0-9_]{1,6}(\.[0-9_]*)?([eE][-+]?[0-9]{1,3})?", fullmatch=True)
sexagesimal = st.from_regex(r"[-+]?[0-9]{1,3}(:[0-9]{1,2}){1,2}(\.[0-9]*)?", fullmatch=True)
dateish = st.from_regex(r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}([Tt ][0-9]{1,2}:[0-9]{2}:[0-9]{2}(\.[0-9]*)?"
                        r"( ?(Z|[-+][0-9]{1,2}(:[0-9]{2})?))?)?", fullmatch=True)
strings = st.one_of(st.sampled_from(LOOKALIKES), st.text(max_size=12), numberish, sexagesimal, dateish)
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(-(1 << 70), 1 << 70), st.floats(), strings)
keys = st.one_of(strings, st.integers(-1000, 1000), st.booleans(), st.none(), st.floats(allow_nan=False))
data = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                     st.dictionaries(keys, inner, max_size=4)), max_leaves=20)
styles = st.fixed_dictionaries({
    "default_flow_style": st.sampled_from([False, True, None]),
    "default_style": st.sampled_from([None, None, None, "'", '"', "|", ">"]),
    "allow_unicode": st.booleans(),
    "explicit_start": st.booleans(),
    "explicit_end": st.booleans(),
    "width": st.sampled_from([80, 20, 1 << 16]),
    "indent": st.sampled_from([2, 4]),
})


def dumped(docs: list, style: dict) -> str:
    return yaml.dump_all(docs, Dumper=yaml.SafeDumper, sort_keys=False, **style)


@settings(RUNS, max_examples=EXAMPLES["dumped"])
@given(st.lists(data, min_size=1, max_size=3), styles)
def test_dumped_data_reads_as_pyyaml_reads_it(docs, style):
    check_all(dumped(docs, style))


def _twins(key) -> list:
    """``key`` and the keys of other types Python takes for the same key (1, 1.0, True)."""
    if isinstance(key, bool) or (isinstance(key, int) and key in (0, 1)):
        return [key, int(key), float(key), bool(key)]
    if isinstance(key, int) and abs(key) < 1 << 53:
        return [key, float(key)]
    if isinstance(key, float) and key.is_integer():
        return [key, int(key)] + ([bool(key)] if key in (0, 1) else [])
    return [key]


@st.composite
def dumped_with_a_key_repeated(draw) -> str:
    """A block mapping dumped by PyYAML and one of its keys (or an equal key of another type) again below it:
    two block mappings at column 0 are one mapping, whose repeated key is a duplicate."""
    mapping = draw(st.dictionaries(keys, data, min_size=1, max_size=4))
    repeated = draw(st.sampled_from(_twins(draw(st.sampled_from(list(mapping))))))
    style = {**draw(styles), "default_flow_style": False, "explicit_start": False, "explicit_end": False}
    more = draw(st.dictionaries(keys, data, max_size=2))
    return "".join(dumped([part], style) for part in (mapping, {repeated: draw(data)}, more) if part)


@settings(RUNS, max_examples=EXAMPLES["repeated"])
@given(dumped_with_a_key_repeated())
def test_dumped_data_with_a_key_repeated_is_a_duplicate_key(text):
    assert "found duplicate key" in str(reference(text)[1])
    check_all(text)


# --------------------------------------------------------------------------- 2. hand-made YAML templates

#: Plain scalars that stay one plain scalar in block and flow context.
PLAIN = [
    "a", "name", "yes", "No", "on", "OFF", "y", "n", "true", "False", "~", "null", "0x1F", "0o17", "017",
    "0b101", "1_000", "+12", "-0", "0", "00", "007", "08", "1.0", ".5", "1e3", "1.5E-3", ".inf", "-.Inf", ".nan",
    "2001-12-14", "2001-12-14t21:59:43.10-05:00", "2001-12-14 21:59:43.10 -5", "2001-13-45", "12:30:00",
    "190:20:30.15", "=", "<<", "é", "日本 語", "a b", "x-y", "1_0_", "123456789012345678901234567890", "٣",
    "3", "42", "-7", "1.5", "10",
]
#: Explicit tags, good and bad.
TAGGED = [
    "!!str 12", "!!str yes", "!!str", "!!int \"7\"", "!!int '017'", "!!int 0x1F", "!!int 1_000", "!!int 42",
    "!!int 190:20:30", "!!int abc", "!!int \"\"", "!!float 1", "!!float \"1e3\"", "!!float .nan", "!!float x",
    "!!bool yes", "!!bool \"NO\"", "!!bool maybe", "!!null \"\"", "!!null ~", "!!null x",
    "!!binary aGVsbG8=", "!!binary \"aGVs bG8=\"", "!!binary \"%%%\"", "!!binary aGVsbG8", "!!binary 'ä'",
    "!!timestamp 2001-12-14", "!!timestamp \"2001-12-14t21:59:43.10-05:00\"", "!!timestamp 2001-13-45",
    "!!timestamp nope", "!custom x", "!<tag:yaml.org,2002:str> 5", "!<tag:yaml.org,2002:int> '5'", "! 12",
    "!!python/tuple [1]", "!!str [1]", "!!map [1]", "!!seq {a: 1}", "!!set {a, b, 1}", "!!set {a: 1}",
    "!!omap [a: 1, b: 2]", "!!omap [a: 1, a: 2]", "!!omap [a]", "!!pairs [a: 1, a: 2]", "!!map {a: 1}",
    "!!seq [1, 2]", "!!merge <<", "!!value =",
]
#: The tags the fast path builds itself (standard scalar tags, plain collections).
TAGGED_FAST = [t for t in TAGGED if t.split(" ")[0] in (
    "!!str", "!!int", "!!float", "!!bool", "!!null", "!!binary", "!!timestamp", "!<tag:yaml.org,2002:str>", "!",
    "!!map", "!!seq")]
#: Scalars whose constructor raises (a Python error, not a YAML one, for most).
BAD = ["!!int abc", "!!int \"\"", "!!float x", "!!bool maybe", "!!binary \"%%%\"", "!!binary 'ä'",
       "!!timestamp 2001-13-45", "!!timestamp nope", "2001-13-45", "2001-02-30"]
KEYS = ["a", "b", "k1", "k2", "k3", "k4", "name", "1", "true", "1.0", "on", "null", "~", "2001-12-14", "\"1\"",
        "'a'", "!!str 1", "!!int \"1\"", "0x1", "=", "!!binary aGk=", ".nan", "? a", "-0", "0", "2001-12-14 1:2:3"]
#: Keys of which two in one mapping are likely the same key (1, 1.0 and true are one Python key).
FEW_KEYS = ["a", "1", "1.0", "true", "'a'", ".nan"]
#: Keys that are collections: PyYAML refuses them (unhashable), the fast path must too.
COMPLEX_KEYS = ["[a, b]", "{a: 1}", "!!set {a}", "!!omap [a: 1]", "? [a]"]
quotable = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=8)


class Writer:
    """Builds one YAML stream from hypothesis draws, remembering the anchors defined so far (aliases refer back)."""

    def __init__(self, draw):
        self.draw = draw
        self.anchors: list[str] = []
        self.undefined = False  # whether an alias may name no anchor (a few streams only: it ends the stream)
        self.simple = False  # only what the fast path builds: no merge keys, complex keys, other tags
        self.bad = False  # scalars whose constructor fails are frequent

    def choice(self, options):
        return self.draw(st.sampled_from(options))

    def chance(self, p: float) -> bool:
        return self.draw(st.integers(0, 99)) < p * 100

    def alias(self) -> str:
        if self.anchors and not (self.undefined and self.chance(0.3)):
            return "*" + self.choice(self.anchors)
        return "*undefined"

    def anchor(self) -> str:
        if not self.chance(0.25):
            return ""
        # a new name, now and then one already used (libyaml refuses a second occurrence)
        name = self.choice(self.anchors) if self.anchors and self.chance(0.03) else f"a{len(self.anchors)}"
        self.anchors.append(name)  # before the children: an alias inside is recursive
        return f"&{name} "

    def scalar(self) -> str:
        kind = self.choice(["plain", "plain", "plain", "single", "double", "tagged"] + (["alias"] if self.anchors else []))
        if kind == "plain":
            return self.choice(PLAIN)
        if kind == "single":
            return "'" + self.draw(quotable).replace("'", "''") + "'"
        if kind == "double":
            return json.dumps(self.draw(st.one_of(quotable, st.sampled_from(LOOKALIKES))), ensure_ascii=self.chance(0.5))
        if kind == "tagged":
            if self.bad and self.chance(0.5):
                return self.choice(BAD)
            return self.choice(TAGGED_FAST if self.simple else TAGGED)
        return self.alias()

    def inline(self, depth: int, kind: str | None = None) -> str:
        """A node on one line: a scalar, an alias or a flow collection."""
        kind = kind or self.choice(["scalar", "scalar", "scalar", "seq", "map"] if depth < 3 else ["scalar"])
        if kind == "scalar":
            text = self.scalar()
            return text if text.startswith("*") else self.anchor() + text
        anchor = self.anchor()
        count = self.draw(st.integers(0, 3))
        if kind == "seq":
            return anchor + "[" + ", ".join(self.inline(depth + 1) for _ in range(count)) + "]"
        entries = []
        for _ in range(count):
            key = self.key()  # in text order: an alias refers to an anchor before it
            entries.append(f"{key}: {self.inline(depth + 1)}")
        if not self.simple and self.chance(0.1):
            entries.append("<<: " + self.alias())
        return anchor + "{" + ", ".join(entries) + "}"

    def key(self) -> str:
        kind = self.choice(["pool"] * 8 + ["few"] * 2 + ([] if self.simple else ["complex"])
                           + (["alias"] if self.anchors else []))
        if kind == "alias":
            return self.alias() + " "  # "*a : v": an alias key needs the space before the colon
        return self.choice({"pool": KEYS, "few": FEW_KEYS, "complex": COMPLEX_KEYS}[kind])

    def block(self, indent: int, depth: int, is_map: bool) -> list[str]:
        """A block mapping or sequence at ``indent``, as lines."""
        pad = " " * indent
        lines: list[str] = []
        for _ in range(self.draw(st.integers(1, 4))):
            if self.chance(0.1):
                lines.append(pad + "# " + self.choice(["comment", "a: b", "- x", "---"]))
            if not is_map:
                head, rest = self.value(indent, depth, same_indent_seq=False)
                lines.append(pad + "-" + head)
                lines.extend(rest)
                continue
            key = self.key()
            if not self.simple and self.chance(0.1):
                merge = self.choice(["alias", "list", "map", "flow"] if self.anchors else ["map", "map", "flow"])
                value = {"alias": lambda: self.alias(),
                         "list": lambda: "[" + ", ".join(self.alias() for _ in range(self.draw(st.integers(1, 3)))) + "]",
                         "map": lambda: self.inline(2, "map"),
                         "flow": lambda: self.inline(2)}[merge]()
                lines.append(f"{pad}<<: {value}")
                continue
            if not self.simple and self.chance(0.08):  # a complex key
                lines.append(f"{pad}? {self.inline(depth + 1)}")
                head, rest = self.value(indent, depth, same_indent_seq=False)
                lines.append(pad + ":" + head)
                lines.extend(rest)
                continue
            head, rest = self.value(indent, depth, same_indent_seq=True)
            lines.append(pad + key + ":" + head)
            lines.extend(rest)
        return lines

    def value(self, indent: int, depth: int, same_indent_seq: bool) -> tuple[str, list[str]]:
        """What follows ``key:`` or ``-``: the rest of the line, and the lines below it."""
        kinds = ["inline", "inline", "inline", "empty", "literal"] + (["block", "block"] if depth < 3 else [])
        kind = self.choice(kinds)
        if kind == "inline":
            comment = " # note" if self.chance(0.1) else ""
            return " " + self.inline(depth + 1) + comment, []
        if kind == "empty":
            return "", []
        if kind == "literal":
            header = self.choice(["|", "|-", "|+", ">", ">-", "!!str |", "!!binary |", "!!int |", "!!float >"])
            body = self.draw(st.lists(st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), max_size=10)
                                      .map(lambda s: s.lstrip(" ")), max_size=3))
            return " " + header, [" " * (indent + 2) + line if line else "" for line in body]
        is_map = self.chance(0.6)
        tags = ["!!set ", "!!map ", "!!omap "] if is_map else ["!!omap ", "!!pairs ", "!!seq ", "!!set "]
        prefix = self.anchor() + ("" if self.simple else self.choice(["", "", "", "", "", ""] + tags))  # last: wrong kind
        child_indent = indent if same_indent_seq and not is_map and self.chance(0.5) else indent + 2
        child = self.block(child_indent, depth + 1, is_map)
        return (" " + prefix.rstrip() if prefix else ""), child

    def document(self) -> list[str]:
        self.anchors = []  # anchors are per document
        kind = self.choice(["block", "block", "block", "inline", "empty", "literal"])
        if kind == "block":
            return self.block(0, 0, self.chance(0.65))
        if kind == "inline":
            return [self.inline(0)]
        if kind == "literal":
            return ["--- |", "  text", "  more"]
        return []

    def stream(self) -> str:
        parts: list[str] = []
        self.undefined = self.chance(0.05)
        self.simple = self.chance(0.35)
        self.bad = self.chance(0.25)
        if self.chance(0.1):
            parts.append("%YAML 1.1")
            parts.append("---")
        elif self.chance(0.3):
            parts.append(self.choice(["---", "--- # first", "# leading comment"]))
        for index in range(self.draw(st.integers(1, 3))):
            if index:
                parts.append(self.choice(["---", "--- # next", "...\n---", "---\n---"]))
            parts.extend(self.document())
        if self.chance(0.2):
            parts.append(self.choice(["...", "# the end", "---"]))
        return "\n".join(parts) + "\n"


@st.composite
def templates(draw) -> str:
    return Writer(draw).stream()


@st.composite
def edited(draw) -> str:
    """A template with one random edit: a character deleted or inserted, or a line repeated."""
    text = draw(templates())
    at = draw(st.integers(0, len(text)))
    edit = draw(st.sampled_from(["delete", "insert", "insert", "repeat"]))
    if edit == "delete":
        return text[:at] + text[at + 1:]
    if edit == "insert":
        return text[:at] + draw(st.sampled_from(list(":-[]{}&*!|>'\"#?, \t\n%@`") + ["\n  ", ": ", "- "])) + text[at:]
    lines = text.split("\n")
    index = draw(st.integers(0, len(lines) - 1))
    return "\n".join(lines[:index + 1] + lines[index:])


#: Nodes for a document with several errors: which one is reported depends on the order of construction.
GOOD_NODES = ["1", "a", "{x: 1}", "[1]", "!!binary aGk=", "2001-12-14", "yes", "'q'", "{}"]
BAD_NODES = BAD + ["{a: 1, a: 2}", "{1: a, true: b}", "{<<: 1}", "{<<: [1]}", "{[a]: 1}", "!x y", "!!set 1",
                   "{x: 1, <<: {x: 2}}", "{<<: {x: 1}, y: !!int abc}", "!!omap [1]"]
MERGES = ["{k0: 0}", "{z: 1}", "1", "[{z: 1}, 2]", "[{z: 1}]", "{k1: !!int abc}"]


@st.composite
def several_errors(draw) -> str:
    """Flow collections (nested sequences included, which PyYAML builds last) holding errors and merge keys."""

    def node(depth: int) -> str:
        kind = draw(st.sampled_from(["node", "node", "seq", "map"] if depth < 3 else ["node"]))
        if kind == "node":
            return draw(st.sampled_from(BAD_NODES if draw(st.booleans()) else GOOD_NODES))
        items = [node(depth + 1) for _ in range(draw(st.integers(1, 3)))]
        if kind == "seq":
            return "[" + ", ".join(items) + "]"
        entries = [f"k{index}: {item}" for index, item in enumerate(items)]
        if draw(st.integers(0, 2)) == 0:
            entries.insert(draw(st.integers(0, len(entries))), "<<: " + draw(st.sampled_from(MERGES)))
        return "{" + ", ".join(entries) + "}"

    return node(0) + "\n"


@settings(RUNS, max_examples=EXAMPLES["errors"])
@given(several_errors())
def test_of_several_errors_the_one_pyyaml_meets_first_is_reported(text):
    check_all(text)


FIXED = [
    # aliases to mappings and lists, used several times; merge keys; overrides of merged keys are duplicates
    "base: &b {x: 1, y: [1, 2]}\nl: &l [a, {z: 0}]\none: *b\ntwo: *b\nthree: [*l, *l, *b]\n",
    "base: &b {x: 1}\nother: &o {y: 2}\nm:\n  <<: *b\n  z: 3\nn:\n  <<: [*b, *o]\n",
    "base: &b {x: 1}\nm:\n  <<: *b\n  x: 2\n",
    "base: &b {x: 1}\nm: {<<: [*b, *b]}\n",
    "m:\n  <<: {a: 1}\n  <<: {b: 2}\n",
    "a: &s scalar\nm:\n  <<: *s\n",
    # a recursive alias: a list may hold itself, a mapping may not
    "&a [1, *a]\n", "&a {x: *a}\n", "- &a [*a]\n- &b {y: [*b]}\n",
    # explicit tags
    "a: !!str 12\nb: !!int \"7\"\nc: !!binary aGVsbG8=\nd: !!set {x, y}\ne: !!omap [p: 1, q: 2]\nf: !!timestamp 2001-12-14\n",
    "!!set {a: 1}\n", "!!omap [a, b]\n", "!!pairs [a: 1, a: 2]\n", "x: !!float 1\ny: !!bool NO\n",
    # complex and duplicate keys
    "? [a, b]\n: 1\n", "? {a: 1}\n: 1\n", "? !!binary aGk=\n: bytes\n? 2001-12-14\n: date\n",
    "a: 1\nb: 2\na: 3\n", "1: a\ntrue: b\n", "1: a\n1.0: b\n", "\"1\": a\n1: b\n", ".nan: a\n.nan: b\n",
    "x:\n  - {a: 1, a: 2}\n", "? a\n? a\n", "~: 1\nnull: 2\n",
    # errors in an order the fast path and PyYAML might see differently
    "- - !!int abc\n- {a: 1, a: 2}\n", "- [!!binary \"%%%\"]\n- {a: 1, a: 2}\n", "[[!!int abc], !!float x]\n",
    "- [2001-13-45]\n- {b: 1, b: 1}\n", "- [[{a: 1, a: 2}]]\n- !!int abc\n", "{x: [!!int abc], y: {a: 1, a: 2}}\n",
    # documents, comments, scalars
    "", "---\n", "---\n...\n", "---\n---\n--- ~\n", "# only a comment\n", "--- |\n  text\n--- >\n  folded\n  text\n",
    "a: 1 # comment\n# between\nb: |-\n  x\n\n  y\n...\n---\nc: 'it''s'\n", "%YAML 1.1\n---\na: b\n",
    "a: [1, 2\n", "a: b: c\n", "a:\n\t- b\n", "*undefined\n", "- a\nb: c\n", "'unclosed\n", "a: &x 1\nb: *x\nc: *y\n",
    "key: 12:30:00\nyes: no\non: off\n=: <<\n", "- 0\n- 00\n- 017\n- 0x1F\n- 0o17\n- 1_000\n- +12\n- -0\n- 1e3\n",
    "- .inf\n- -.Inf\n- .nan\n- 1.5E-3\n- 2001-12-14t21:59:43.10-05:00\n- 2001-12-14\n- ~\n- null\n- ''\n",
]


@pytest.mark.parametrize("text", FIXED, ids=range(len(FIXED)))
def test_fixed_templates_read_as_pyyaml_reads_them(text):
    check_all(text)


@settings(RUNS, max_examples=EXAMPLES["templates"])
@given(templates())
def test_templates_read_as_pyyaml_reads_them(text):
    check_load_all(text)
    check_stream(text)


@settings(RUNS, max_examples=EXAMPLES["edited"])
@given(edited())
def test_edited_templates_fail_where_pyyaml_fails(text):
    check_load_all(text)
    check_stream(text)


@settings(RUNS, max_examples=EXAMPLES["go"])
@given(st.one_of(templates(), edited(), st.builds(dumped, st.lists(data, min_size=1, max_size=3), styles)))
def test_go_loader_reads_as_itself_without_the_fast_path(text):
    check_stream(text, yamlio.loads_go, ReferenceGo)


def test_go_reference_is_go_loader_less_the_fast_path():
    assert ReferenceGo.__mro__[1:4] == (yamlio.GoLoader, _NoFastPath, yamlio.StrictLoader)
    assert ReferenceGo.resolve is yamlio.GoLoader.resolve
    assert ReferenceGo.construct_document is yaml.constructor.BaseConstructor.construct_document
    loader = ReferenceGo("")
    try:
        before = dict(yamlio._RESOLVED)
        assert loader.resolve(yaml.ScalarNode, "<<", (True, False)) == "tag:yaml.org,2002:merge"
        assert loader.resolve(yaml.ScalarNode, "12", (False, True)) == "tag:yaml.org,2002:str"
        assert yamlio._RESOLVED == before  # super().resolve was PyYAML's, not the memoised shortcut
    finally:
        loader.dispose()


# --------------------------------------------------------------------------- 3. the repository's YAML files

def repository_yaml() -> list[str]:
    """The YAML files git tracks; in a copy without ``.git``, every YAML file outside hidden and venv folders."""
    listed = subprocess.run(["git", "ls-files", "*.yaml", "*.yml"], cwd=REPO_ROOT, capture_output=True, text=True)
    names = [name for name in listed.stdout.splitlines() if name] if listed.returncode == 0 else []
    if not names:
        names = [str(path.relative_to(REPO_ROOT)) for pattern in ("*.yaml", "*.yml") for path in REPO_ROOT.rglob(pattern)
                 if not any(part.startswith(".") or part in ("node_modules", "__pycache__")
                            for part in path.relative_to(REPO_ROOT).parts[:-1])]
    return sorted(names)


def test_every_repository_yaml_file_reads_as_pyyaml_reads_it():
    names = repository_yaml()
    assert names, "git ls-files found no YAML file"
    checked, failures = 0, []
    for name in names:
        path = REPO_ROOT / name
        try:
            text = path.read_text(encoding="utf-8")
        except (FileNotFoundError, UnicodeDecodeError):  # removed meanwhile, or a deliberately broken fixture
            continue
        if "{{" in text:  # a Helm template, not YAML until rendered
            continue
        try:
            check_load_all(text, path, from_file=True)
            check_stream(text)
        except AssertionError as exc:
            failures.append(f"{name}: {str(exc)[:500]}")
        checked += 1
    assert checked > 50, f"only {checked} repository YAML files checked"
    assert not failures, "\n".join(failures)


# --------------------------------------------------------------------------- the resolution memo

def test_resolved_memo_is_per_loader_class():
    """The same plain scalar resolved by StrictLoader, GoLoader and a subclass with its own implicit resolver:
    each gets its own answer, whichever class resolved it first."""

    class Custom(yamlio.StrictLoader):
        pass

    Custom.add_implicit_resolver("!yolo", re.compile(r"^(?:yolo|yes)$"), list("y"))  # after bool: yes stays bool
    Custom.add_constructor("!yolo", lambda loader, node: "YOLO")
    values = ["yolo", "yes", "12", "<<", "null", "", "1e3", "12:30:00", "2001-12-14", "on", "apiVersion", "~"]
    # each class less the shortcut: PyYAML's BaseResolver.resolve (GoLoader's own resolve first, for GoLoader)
    without = {
        yamlio.StrictLoader: _NoFastPath,
        Custom: type("CustomReference", (Custom,), {"resolve": yaml.resolver.BaseResolver.resolve}),
        yamlio.GoLoader: ReferenceGo,
    }
    expected = {}
    for cls, ref in without.items():
        loader = ref("")
        try:
            expected[cls] = {value: loader.resolve(yaml.ScalarNode, value, (True, False)) for value in values}
        finally:
            loader.dispose()
    assert expected[Custom]["yolo"] == "!yolo" and expected[yamlio.StrictLoader]["yolo"] == yamlio._STR
    assert expected[yamlio.GoLoader]["yes"] == yamlio._GO_PLAIN != expected[yamlio.StrictLoader]["yes"]
    for order in (list(without), list(reversed(without))):
        yamlio._RESOLVED.clear()  # a cache: emptied, so this test fills it and the size bound cannot hide a leak
        for _ in range(2):  # the second round answers from the memo
            for cls in order:
                loader = cls("")
                try:
                    for value in values:
                        got = loader.resolve(yaml.ScalarNode, value, (True, False))
                        assert got == expected[cls][value], (cls.__name__, value, got)
                finally:
                    loader.dispose()
        assert (Custom, "yolo") in yamlio._RESOLVED and (yamlio.StrictLoader, "yolo") in yamlio._RESOLVED
    assert yamlio._RESOLVED[(Custom, "yolo")] == "!yolo"
    assert yamlio._RESOLVED[(yamlio.StrictLoader, "yolo")] == "tag:yaml.org,2002:str"
    text = "[yolo, yes, 12]\n"
    for _ in range(2):
        assert_same(list(yamlio.loads_all(text)), [["yolo", True, 12]])
        assert_same(list(yamlio.loads_all(text, loader=Custom)), [["YOLO", True, 12]])
        assert_same(list(yamlio.loads_go(text)), [["yolo", True, 12]])


def test_an_aliased_collection_is_one_shared_object_as_pyyaml_builds_it():
    """A copy per alias use grows exponentially (ten uses per level, a few levels: minutes and gigabytes)."""
    text = "a0: &a0 [x, y]\n" + "".join(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 4))
    doc = yamlio.load_all(GENERATED, text)[0].data
    assert doc["a3"][0] is doc["a2"] and doc["a2"][9] is doc["a1"] and doc["a1"][0] is doc["a0"]
    assert doc == yaml.load(text, Loader=yaml.CSafeLoader)


def test_nesting_too_deep_for_python_is_an_input_error_naming_the_document():
    text = "a: 1\n---\nb: " + "[" * 990 + "]" * 990 + "\n"
    with pytest.raises(UsageError, match=r"generated\.yaml:3: this document nests too deeply"):
        yamlio.load_all(GENERATED, text)
