"""diff.yaml: noise and masking settings, with their defaults."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .. import yamlio
from ..errors import UsageError
from ..paths import REPO_ROOT

DIFF_CONFIG = REPO_ROOT / "diff.yaml"
MASK = "(masked)"

#: Words that make a key name a credential's (``REDIS_PASSWORD``, ``apiKey``, ``client-secret``), matched
#: against the key split into words (camelCase, ``_``, ``-`` and ``.`` separate words).
CREDENTIAL_WORDS = (r"(pass(word|wd|phrase)?|pwd|secret|token|credentials?|creds|"
                    r"api_?key|private_?key|access_?key|auth_?key|bearer)")


@dataclass
class Settings:
    noise: list[str] = field(default_factory=lambda: [r"metadata\.annotations\.checksum/.*",
                                                      r"spec\.template\.metadata\.annotations\.checksum/.*"])
    #: A regular expression over a key's words joined by ``_`` (``TOKEN_BUDGET`` -> ``token_budget``).
    mask_keys: str = rf"(?i)(^|_){CREDENTIAL_WORDS}(_|$)"
    masked_kinds: tuple[str, ...] = ("Secret", "ExternalSecret")


def load_settings(path: Path = DIFF_CONFIG) -> Settings:
    if not path.exists():
        return Settings()
    data = yamlio.load_one(path) or {}
    known = {"noise", "maskKeys", "maskedKinds"}
    unknown = set(data) - known
    if unknown:
        raise UsageError(f"{path.name}: unknown key(s) {', '.join(sorted(unknown))} (known: {', '.join(sorted(known))})")
    settings = Settings()
    if "noise" in data:
        settings.noise = list(data["noise"])
    if "maskKeys" in data:
        settings.mask_keys = str(data["maskKeys"])
    if "maskedKinds" in data:
        settings.masked_kinds = tuple(data["maskedKinds"])
    return settings
