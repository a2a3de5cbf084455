"""Kubernetes resource quantities as the API server stores them.

``canonical("1024Mi") == "1Gi"``: the string the API server keeps for a quantity is
``resource.ParseQuantity(s).String()`` of ``k8s.io/apimachinery/pkg/api/resource``
(JSON/protobuf serialisation writes ``String()``). Two values with the same canonical
form are stored identically, so changing one into the other changes nothing in the
cluster (not even a pod template's hash, which is computed from the decoded object).

This is a port of that parser's observable behaviour at apimachinery v0.36.1
(Kubernetes v1.36.1), including its quirks:

* a non-zero value is rounded up, away from zero, to a multiple of 1n (10^-9);
* binary-SI values (``Ki`` .. ``Ei``) are capped at 2^63-1 and shown in decimal SI when
  they are below 1024 or not whole numbers;
* an input already in canonical form is kept as written (``+3Ki``, ``1E3``, ``1.``);
* a decimal exponent outside the SI table (``1000E`` = 10^21) is printed without a suffix.

The kubernetes Python client's ``parse_quantity`` returns a ``Decimal`` without the
rounding, the cap or the format, so it cannot tell whether two values are stored
identically; this module can, and ``tests/pipeline/test_diff_quantity.py`` proves it
against the real Go parser (``gobuild/quantity``) on generated inputs.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

__all__ = ["canonical", "same"]

_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_BINARY = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL_SUFFIX = {v: k for k, v in _DECIMAL.items()}
_BINARY_SUFFIX = {v: k for k, v in _BINARY.items()}
_SUFFIX_CHARS = set("eEinumkKMGTP")
_MAX_INT64 = 2**63 - 1
_INT = re.compile(r"[+-]?[0-9]+")
DECIMAL_SI, BINARY_SI, DECIMAL_EXPONENT = "DecimalSI", "BinarySI", "DecimalExponent"


def _split(text: str) -> tuple[bool, str, str, str]:
    """(positive, numerator digits, denominator digits, suffix), as Go's parseQuantityString."""
    positive, pos, end = True, 0, len(text)
    if text[:1] in ("-", "+"):
        positive = text[0] == "+"
        pos = 1
    while pos < end and text[pos] == "0":
        pos += 1
    if pos >= end:
        return positive, "0", "", ""
    start = pos
    while pos < end and text[pos].isascii() and text[pos].isdigit():
        pos += 1
    num = text[start:pos] or "0"
    if pos >= end:
        return positive, num, "", ""
    denom = ""
    if text[pos] == ".":
        pos += 1
        start = pos
        while pos < end and text[pos].isascii() and text[pos].isdigit():
            pos += 1
        denom = text[start:pos]
        if pos >= end:
            return positive, num, denom, ""
    suffix_start = pos
    while pos < end and text[pos] in _SUFFIX_CHARS:
        pos += 1
    if pos < end and text[pos] in "+-":
        pos += 1
    while pos < end and text[pos].isascii() and text[pos].isdigit():
        pos += 1
    if pos < end:
        raise ValueError(f"quantity {text!r}: must match ^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$")
    return positive, num, denom, text[suffix_start:]


def _interpret(suffix: str) -> tuple[int, int, str]:
    """(base, exponent, format) of a suffix, as Go's suffixer.interpret."""
    if suffix in _DECIMAL:
        return 10, _DECIMAL[suffix], DECIMAL_SI
    if suffix in _BINARY:
        return 2, _BINARY[suffix], BINARY_SI
    if len(suffix) > 1 and suffix[0] in "eE" and _INT.fullmatch(suffix[1:]):
        parsed = int(suffix[1:])
        if -2**63 <= parsed < 2**63:
            return 10, (parsed + 2**31) % 2**32 - 2**31, DECIMAL_EXPONENT  # Go's int32(parsed)
    raise ValueError(f"quantity suffix {suffix!r} is not one Kubernetes knows (n u m k M G T P E, Ki..Ei, e<N>)")


def _fast_path(num: str, denom: str, exponent: int, fmt: str) -> tuple[bool, bool]:
    """(taken, kept as written) for Go's int64 fast path; the input is kept when already canonical."""
    if fmt == BINARY_SI:
        if denom or exponent < 0:
            return False, False
        precision = 15 - len(num) - int(exponent * 3 / 10) - 1
        value = int(num)
        if precision < 0 or value << exponent > _MAX_INT64:
            return False, False
        return True, exponent % 10 == 0 and value & 0x07 != 0
    scale = exponent - len(denom)
    shifted = num + denom
    if 18 - len(shifted) < 0 or scale < -9:
        return False, False
    return True, math.fmod(scale, 3) == 0 and not shifted.endswith("000") and shifted[0] != "0"


def _value(positive: bool, num: str, denom: str, base: int, exponent: int, fmt: str) -> tuple[Fraction, str]:
    """The amount the API server holds, rounded and capped as Go does, and its format."""
    amount = Fraction(int(num + denom), 10 ** len(denom))
    amount *= Fraction(10) ** exponent if base == 10 else 2**exponent
    if amount:
        amount = Fraction(math.ceil(amount * 10**9), 10**9)  # inf.RoundUp on the magnitude
    if fmt == BINARY_SI and amount > _MAX_INT64:
        amount = Fraction(_MAX_INT64)
    if fmt == BINARY_SI and 0 < amount < 1:
        fmt = DECIMAL_SI
    return (amount if positive else -amount), fmt


def _strip(value: int, base: int) -> tuple[int, int]:
    times, magnitude = 0, abs(value)
    while magnitude >= base and magnitude % base == 0:
        magnitude //= base
        times += 1
    return (magnitude if value >= 0 else -magnitude), times


def _format(amount: Fraction, fmt: str) -> str:
    """Go's Quantity.CanonicalizeBytes."""
    if amount == 0:
        return "0"
    if fmt == BINARY_SI and (-1024 < amount < 1024 or amount.denominator != 1):
        fmt = DECIMAL_SI
    if fmt == BINARY_SI:
        mantissa, times = _strip(int(amount), 1024)
        return f"{mantissa}{_BINARY_SUFFIX.get(times * 10, '')}"
    mantissa, exponent = int(amount * 10**9), -9  # rounded to 1n, so this is exact
    mantissa, times = _strip(mantissa, 10)
    exponent += times
    while exponent % 3:
        mantissa *= 10
        exponent -= 1
    if fmt == DECIMAL_SI:
        return f"{mantissa}{_DECIMAL_SUFFIX.get(exponent, '')}"
    return f"{mantissa}e{exponent}" if exponent else str(mantissa)


def canonical(text: str | int | float) -> str:
    """What the API server stores for ``text``; ``ValueError`` where the API server refuses it."""
    if isinstance(text, bool):
        raise ValueError(f"quantity {text!r}: a boolean is not a quantity")
    text = str(text) if not isinstance(text, str) else text
    if not text:
        raise ValueError("quantity '': empty")
    if text == "0":
        return "0"
    positive, num, denom, suffix = _split(text)
    base, exponent, fmt = _interpret(suffix)
    taken, kept = _fast_path(num, denom, exponent, fmt)
    if kept:
        return text
    if not taken and not any(c.isdigit() for c in text[:len(text) - len(suffix)]):
        raise ValueError(f"quantity {text!r}: no digits before the suffix")  # inf.Dec.SetString refuses it
    return _format(*_value(positive, num, denom, base, exponent, fmt))


def same(a: object, b: object) -> bool:
    """Whether the API server stores ``a`` and ``b`` identically (False if either is not a quantity)."""
    try:
        return canonical(a) == canonical(b)  # type: ignore[arg-type]
    except ValueError:
        return False
