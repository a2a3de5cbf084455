"""The server's answers as findings: rejections, warnings, and fields not stored as written.

A finding is a plain dict (``pointer``, ``level``, ``rule``, ``message``), the form the result cache keeps.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ..manifests import Manifest
from .common import RULE, STORED_RULE
from .masking import hide, mask_settings, mask_text
from .modes import Mode

_SEGMENT = re.compile(r"([^.\[\]]+)|\[([^\]]*)\]")


def field_pointer(path: str) -> str:
    """``spec.template.spec.containers[0].env[1]`` -> ``/spec/template/spec/containers/0/env/1``."""
    parts = []
    for name, index in _SEGMENT.findall(path or ""):
        part = name or index
        if part:
            parts.append(part.replace("~", "~0").replace("/", "~1"))
    return "/" + "/".join(parts) if parts else ""


def pointer_field(pointer: str) -> str:
    """``/spec/containers/0/env`` -> ``spec.containers[0].env``."""
    out = ""
    for part in [p for p in pointer.split("/") if p]:
        part = part.replace("~1", "/").replace("~0", "~")
        out += f"[{part}]" if part.isdigit() or not re.fullmatch(r"[A-Za-z0-9_-]+", part) else f".{part}"
    return out.lstrip(".")


def warning_text(header: str) -> str:
    """A ``Warning`` response header (``299 - "text"``) as its text."""
    match = re.match(r'^\s*\d{3}\s+\S+\s+"(.*)"\s*(?:"[^"]*")?\s*$', header, re.DOTALL)
    text = match.group(1) if match else header
    return text.replace('\\"', '"').replace("\\\\", "\\")


def causes(answer: Any) -> list[dict]:
    """The ``details.causes`` of a Status answer (each with ``field``, ``reason``, ``message``)."""
    if not isinstance(answer, dict) or not isinstance(answer.get("details"), dict):
        return []
    found = answer["details"].get("causes")
    return [c for c in found if isinstance(c, dict)] if isinstance(found, list) else []


def rejection(answer: Any, status: int, secrets: list[str]) -> list[dict]:
    """An error per cause the server names (at its field), with the server's own message."""
    if not isinstance(answer, dict):
        return [{"pointer": "", "level": "error", "rule": RULE,
                 "message": hide(f"the API server answered {status}: {str(answer)[:500]}", secrets)}]
    message = str(answer.get("message") or answer.get("reason") or f"HTTP {status}")
    prefix = message.split(" is invalid: ", 1)[0] if " is invalid: " in message else ""
    out = []
    for cause in causes(answer):
        field_path = str(cause.get("field") or "")
        text = f"{field_path}: {cause.get('message', '')}" if field_path else str(cause.get("message", ""))
        out.append({"pointer": field_pointer(field_path), "level": "error", "rule": RULE,
                    "message": hide(f"{prefix} is invalid: {text}" if prefix else text, secrets)})
    if not out:
        out.append({"pointer": "", "level": "error", "rule": RULE, "message": hide(message, secrets)})
    return out


def warnings(texts: list[str], secrets: list[str]) -> list[dict]:
    """A warning per ``Warning`` header, at the field it starts with when it names one."""
    out = []
    for text in texts:
        head = text.split(": ", 1)[0] if ": " in text else ""
        pointer = field_pointer(head) if re.fullmatch(r"[A-Za-z][\w.\-/\[\]]*", head or "-") else ""
        out.append({"pointer": pointer, "level": "warning", "rule": RULE,
                    "message": hide(f"the API server warns: {text}", secrets)})
    return out


# --------------------------------------------------------------------------- stored as written


_QUANTITY = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+|[numkMGTPE]|[KMGTPE]i)?$")


def is_quantity(value: Any) -> bool:
    return isinstance(value, (str, int, float)) and not isinstance(value, bool) and bool(_QUANTITY.match(str(value)))


def _same(written: Any, stored: Any) -> bool:
    if isinstance(written, bool) or isinstance(stored, bool):
        return type(written) is type(stored) and written == stored
    if isinstance(written, (int, float)) and isinstance(stored, str):
        return str(written) == stored  # a number written where the type is a string (a quantity)
    if isinstance(written, (int, float)) and isinstance(stored, (int, float)):
        return written == stored
    return type(written) is type(stored) and written == stored


def _empty(value: Any) -> bool:
    return value in ({}, [], "", None)


def stored_differences(written: Any, stored: Any, pointer: str = "") -> list[tuple[str, Any, Any]]:
    """``(pointer, written, stored)`` for every value the manifest sets that the server stores otherwise.

    Fields the manifest does not set (defaults) are ignored; so are ``null`` (unset) and empty values
    that the server omits."""
    if written is None:
        return []
    if isinstance(written, dict):
        if not isinstance(stored, dict):
            return [] if _empty(written) and stored is None else [(pointer, written, stored)]
        out = []
        for key, value in written.items():
            child = f"{pointer}/{str(key).replace('~', '~0').replace('/', '~1')}"
            if key not in stored:
                if not _empty(value):
                    out.append((child, value, None))
                continue
            out += stored_differences(value, stored[key], child)
        return out
    if isinstance(written, list):
        if not isinstance(stored, list):
            return [] if _empty(written) and stored is None else [(pointer, written, stored)]
        if len(written) != len(stored):
            return [(pointer, written, stored)]
        out = []
        for i, (a, b) in enumerate(zip(written, stored)):
            out += stored_differences(a, b, f"{pointer}/{i}")
        return out
    return [] if _same(written, stored) else [(pointer, written, stored)]


def _shown(value: Any) -> str:
    if value is None:
        return "nothing (the server drops it)"
    text = json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else repr(value) \
        if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= 200 else text[:200] + "..."


def not_stored_as_written(manifest: Manifest, stored: Any, mode: Mode, custom: bool, secrets: list[str]) -> list[dict]:
    """``stored-as-written`` findings: every set field back with the value written."""
    if not isinstance(stored, dict):
        return []
    out = []
    for pointer, written, value in stored_differences(manifest.data, stored):
        quantity = is_quantity(written) and is_quantity(value)
        masked = manifest.kind in mask_settings().masked_kinds or \
            any(s in json.dumps(written) or s in json.dumps(value) for s in secrets)
        shown_written, shown_stored = (mask_text(), mask_text()) if masked else (_shown(written), _shown(value))
        what = "a non-canonical quantity" if quantity else "a value the server rewrites"
        if mode.server_side:
            consequence = "the committed file never equals the live object (`kubectl diff` shows it)"
        elif quantity and not custom:
            consequence = ("Argo CD normalises quantities of built-in kinds and stays Synced, but the committed file "
                           "never equals the live object (`kubectl diff` and anyone comparing with the cluster see it)")
        else:
            consequence = ("a perpetual diff: Argo CD's comparison keeps showing it"
                           + (" (it normalises built-in kinds only, and this is a custom resource)" if custom else ""))
        out.append({"pointer": pointer, "level": "warning", "rule": STORED_RULE,
                    "message": hide(f"{manifest.ref}: {pointer_field(pointer)} is written {shown_written} but "
                                    f"stored {shown_stored} ({what}); {consequence}; write the stored form", secrets)})
    return out
