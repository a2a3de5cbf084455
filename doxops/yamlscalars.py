"""What a plain YAML scalar means, to Go's reader and to every other one.

Two questions the render must answer exactly (README: "How an environment is rendered"):

* :func:`go_plain`: what does kubectl, kubeconform or Argo CD read from a plain (unquoted)
  scalar? They read YAML through ``sigs.k8s.io/yaml``, which decodes with go-yaml v2's resolver
  (a YAML 1.1 one): ``y``, ``N``, ``on`` are booleans, ``0x1F``, ``0o17``, ``017`` and ``1_000``
  integers, ``1e3`` and ``.5`` floats, ``~`` null, and a timestamp stays a string. This is a
  port of that resolver (go.yaml.in/yaml/v2 resolve.go, with Go's ``strconv`` number syntax),
  used to read kustomize's output as the cluster will. The oracle test checks it against the
  real Go reader (``gobuild/yamljson``).
* :func:`ambiguous`: could *any* reader take this string, written plain, for something else?
  The union of Go's resolver, the YAML 1.1 types (PyYAML, SnakeYAML, Psych: booleans in any
  case, sexagesimal ``12:30``, timestamps, ``=`` and ``<<``) and the YAML 1.2 core schema
  (``0o17``, ``1e3``, ``.inf``). Such a string is written quoted; quoting a string is harmless,
  so the test errs on the side of quoting.
"""

from __future__ import annotations

import math
import re
from typing import Any

# --------------------------------------------------------------------------- Go (go-yaml v2)

_GO_BOOL = {**{w: True for w in ("y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON")},
            **{w: False for w in ("n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF")}}
_GO_SPECIAL: dict[str, Any] = {
    **_GO_BOOL,
    **{w: None for w in ("", "~", "null", "Null", "NULL")},
    **{w: math.nan for w in (".nan", ".NaN", ".NAN")},
    **{w: math.inf for w in (".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF")},
    **{w: -math.inf for w in ("-.inf", "-.Inf", "-.INF")},
}
#: First characters after which go-yaml v2 tries anything but a string.
_GO_MAP_HINTS = set("yYnNtTfFoO~")
_GO_NUMBER_HINTS = set("+-0123456789")

#: strconv.ParseInt/ParseUint(s, 0, 64) syntax, underscores already removed.
_GO_INT = re.compile(r"(?P<sign>[-+]?)(?:0[xX](?P<hex>[0-9a-fA-F]+)|0[oO](?P<oct>[0-7]+)|0[bB](?P<bin>[01]+)"
                     r"|(?P<old>0[0-7]*)|(?P<dec>[1-9][0-9]*))\Z")
_GO_UINT = re.compile(r"(?:0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)\Z")
#: go-yaml v2's yamlStyleFloat.
_GO_YAML_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?\Z")
#: strconv.ParseFloat of a string starting with "." (decimal only; "_" only between digits).
_GO_DOT_FLOAT = re.compile(r"\.[0-9]+(?:_[0-9]+)*(?:[eE][-+]?[0-9]+(?:_[0-9]+)*)?\Z")
_INT64 = (-(1 << 63), (1 << 63) - 1)
_UINT64_MAX = (1 << 64) - 1


def _go_int(text: str, signed: bool) -> int | None:
    match = (_GO_INT if signed else _GO_UINT).match(text)
    if not match:
        return None
    body = text.lstrip("+-") if signed else text
    if body[:2].lower() in ("0x", "0o", "0b"):
        value = int(body[2:], {"x": 16, "o": 8, "b": 2}[body[1].lower()])
    elif body.startswith("0") and len(body) > 1:
        value = int(body, 8)
    else:
        value = int(body)
    if signed and text.startswith("-"):
        value = -value
    low, high = _INT64 if signed else (0, _UINT64_MAX)
    return value if low <= value <= high else None


def _go_float(text: str) -> float | None:
    """strconv.ParseFloat(text, 64) for the decimal forms go-yaml hands it; None where Go errs."""
    try:
        value = float(text.replace("_", ""))
    except ValueError:
        return None
    return None if math.isinf(value) else value  # Go: out of range is an error (ErrRange)


def go_plain(text: str) -> Any:
    """The value go-yaml v2 (so kubectl, kubeconform, Argo CD) decodes from a plain scalar ``text``.

    A timestamp (``2026-01-02``) stays a string, as go-yaml v2 decodes it into ``interface{}``; no
    timestamp reads as a number either, so this needs no test for one.
    """
    if text in _GO_SPECIAL:
        return _GO_SPECIAL[text]
    first = text[0]
    if first in _GO_MAP_HINTS:
        return text
    if first == ".":
        if _GO_DOT_FLOAT.match(text):
            value = _go_float(text)
            if value is not None:
                return value
        return text
    if first not in _GO_NUMBER_HINTS:
        return text
    plain = text.replace("_", "")
    for value in (_go_int(plain, True), _go_int(plain, False)):
        if value is not None:
            return value
    if _GO_YAML_FLOAT.match(plain):
        value = _go_float(plain)
        if value is not None:
            return value
    if plain.startswith(("0b", "-0b")):
        digits = plain[3:] if plain.startswith("-") else plain[2:]
        if re.fullmatch(r"[01]+", digits):
            value = int(digits, 2) * (-1 if plain.startswith("-") else 1)
            if _INT64[0] <= value <= _UINT64_MAX:
                return value
    return text


# --------------------------------------------------------------------------- every reader

_WORDS = {"", "~", "null", "y", "n", "yes", "no", "true", "false", "on", "off", "<<", "=",
          ".inf", "+.inf", "-.inf", ".nan", "+.nan", "-.nan"}
#: YAML 1.1 int and float (type repository, with the sexagesimal forms) and YAML 1.2 core int and
#: float, case-insensitively (over-quoting is harmless).
_OTHER_READERS = re.compile(
    r"""[-+]?(?:
          0b[01_]+ | 0o?[0-7_]+ | 0x[0-9a-f_]+                           # binary, octal, hex
        | [0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?                    # sexagesimal 12:30, 1:20:30.5
        | (?:[0-9_]+(?:\.[0-9_]*)?|\.[0-9_]+)(?:e[-+]?[0-9]+)?         # 1, 1.5, 1., .5, 1e3, 1.0e+3, -_ (ruamel)
    )\Z""", re.IGNORECASE | re.VERBOSE)
_TIMESTAMP_ANY = re.compile(r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:$|[Tt ]|[ \t]+[0-9])")


def ambiguous(text: str) -> bool:
    """True if some YAML reader (Go's YAML 1.1, YAML 1.1, YAML 1.2 core) reads plain ``text`` as no string."""
    if text.lower() in _WORDS:
        return True
    if _OTHER_READERS.match(text):
        return True
    if _TIMESTAMP_ANY.match(text):
        return True
    return not isinstance(go_plain(text), str)
