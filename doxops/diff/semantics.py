"""Values the API server stores identically, although they are written differently.

Today: quantities (``1024Mi`` and ``1Gi``, ``2000m`` and ``2``) in the fields whose type is
``resource.Quantity``; equality is :func:`doxops.diff.quantity.same`, proved against the real
parser. A field listed here whose two values are stored identically is "no change to the cluster".
"""

from __future__ import annotations

import re
from typing import Any

from . import quantity

#: Dotted paths (lists of named items appear as ``name=<name>``) of ``resource.Quantity`` fields in
#: the core/v1, apps/v1, autoscaling/v2 and storage types.
QUANTITY_FIELDS = [re.compile(p) for p in (
    r"(^|\.)resources\.(requests|limits)\.[^.]+$",          # containers, pod-level resources, PVCs
    r"(^|\.)overhead\.[^.]+$",
    r"(^|\.)emptyDir\.sizeLimit$",
    r"^spec\.(hard|capacity)\.[^.]+$",                       # ResourceQuota, PersistentVolume
    r"^spec\.limits(\.[^.]+|\[\d+\])\.(max|min|default|defaultRequest|maxLimitRequestRatio)\.[^.]+$",
    r"(^|\.)target\.(averageValue|value)$",                  # HorizontalPodAutoscaler metrics
)]


def stored_identically(path: str, old: Any, new: Any) -> bool:
    """Whether the API server would store ``old`` and ``new`` at ``path`` the same way."""
    if isinstance(old, (dict, list)) or isinstance(new, (dict, list)) or old is None or new is None:
        return False
    return any(p.search(path) for p in QUANTITY_FIELDS) and quantity.same(old, new)
