"""no-secret-data: rendered output carries no secret values.

Subjects: every Secret. Its ``data`` and ``stringData`` must be absent or
empty: a value in Git is a leaked value. Create the Secret from an external
store with an ExternalSecret, or outside the repository (list it under
``providedSecrets`` in policy.yaml). Messages name the keys, never the values.

Passing::

    kind: ExternalSecret
    metadata: {name: cache-password}
    spec: {data: [{secretKey: password, remoteRef: {key: demo/cache}}]}

Failing::

    kind: Secret
    metadata: {name: cache-password}
    stringData: {password: hunter2}
"""

from __future__ import annotations

from dataclasses import dataclass

from ..engine import Context, Finding
from ..options import defaults

ID = "no-secret-data"
LEVEL = "error"


@dataclass(frozen=True)
class Options:
    """No options."""


CONF = defaults(Options)


def check(ctx: Context, conf: dict):
    for secret in ctx.of_kind("Secret"):
        for field in ("data", "stringData"):
            values = secret.data.get(field)
            if not values:
                continue
            keys = ", ".join(sorted(str(k) for k in values)) if isinstance(values, dict) else "?"
            yield Finding(secret, f"/{field}", f"{secret.ref}: {field} holds values in rendered output (keys: {keys});"
                                               " create the Secret with an ExternalSecret or outside Git (then list"
                                               " it in providedSecrets) and remove the values")
