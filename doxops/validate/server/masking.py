"""No secret value in any message: the strings the diff would mask, found in an object and hidden in text."""

from __future__ import annotations

import base64
import functools
import json
from typing import Any



def mask_text() -> str:
    """What a hidden value is shown as (the diff's mask). Imported when needed: the diff loads deepdiff."""
    from ...diff import MASK  # noqa: PLC0415 - the diff's masking is the one rule

    return MASK


@functools.lru_cache(maxsize=1)
def mask_settings():
    """The diff's masking settings (diff.yaml): the one rule for what is secret."""
    from ...diff import load_settings  # noqa: PLC0415

    return load_settings()


def secret_strings(data: dict) -> list[str]:
    """Every value the diff would mask in ``data`` (and the decoded form of base64 Secret data)."""
    from ...diff.mask import Masker  # noqa: PLC0415

    mask = mask_text()
    masked = Masker(mask_settings()).mask(data)
    found: set[str] = set()

    def walk(original: Any, hidden: Any) -> None:
        if hidden == mask and not isinstance(original, (dict, list)):
            if original is not None and len(str(original)) >= 3:
                found.add(str(original))
                try:
                    decoded = base64.b64decode(str(original), validate=True).decode()
                    if len(decoded) >= 3:
                        found.add(decoded)
                except (ValueError, UnicodeDecodeError):
                    pass
            return
        if isinstance(original, dict) and isinstance(hidden, dict):
            for key, value in original.items():
                walk(value, hidden.get(key, mask))
        elif isinstance(original, list) and isinstance(hidden, list):
            for a, b in zip(original, hidden):
                walk(a, b)
        elif isinstance(original, dict) or isinstance(original, list):
            walk_all(original)
        elif isinstance(original, str) and isinstance(hidden, str) and original != hidden:
            found.add(original)  # free text with a credential inside: hide the whole text

    def walk_all(node: Any) -> None:
        if isinstance(node, dict):
            for v in node.values():
                walk_all(v)
        elif isinstance(node, list):
            for v in node:
                walk_all(v)
        elif node is not None and len(str(node)) >= 3:
            found.add(str(node))

    walk(data, masked)
    return sorted(found, key=len, reverse=True)


def hide(text: str, secrets: list[str]) -> str:
    """``text`` with every one of ``secrets`` (as written, and as escaped in JSON) replaced by the mask."""
    mask = mask_text() if secrets else ""
    for value in secrets:
        for form in {value, json.dumps(value)[1:-1]}:
            if form and form in text:
                text = text.replace(form, mask)
    return text
