"""stored-as-written: every field a manifest sets is stored by the API server with the value written.

Findings come from validate's API-server stage (doxops/validate/server), not from this module: the
object the pinned kube-apiserver would store (its dry-run answer) is compared with the manifest; a field
stored otherwise (a non-canonical quantity such as ``1024Mi`` for ``1Gi``, a value the server rewrites)
is a warning naming the field, the written and the stored value, and saying whether Argo CD's comparison
keeps showing a perpetual diff. Defaults the server adds are ignored. The module registers the id, so
that policy.yaml can set its level (``error`` fails validation, ``off`` drops the findings) and an object
can be exempted with ``exempt.dox-asdlc.io/stored-as-written: "<reason>"``. ``--no-server`` skips it.

Passing::

    kind: ResourceQuota
    metadata: {name: quota}
    spec: {hard: {requests.memory: 1Gi}}

Failing (stored as ``1Gi``)::

    kind: ResourceQuota
    metadata: {name: quota}
    spec: {hard: {requests.memory: 1024Mi}}
"""

from __future__ import annotations

from dataclasses import dataclass

from ..engine import Context
from ..options import defaults

ID = "stored-as-written"
LEVEL = "warning"
#: Judged by this validate stage, not by the policy engine: its fixtures are run in tests/validate/test_server.py.
STAGE = "api-server"


@dataclass(frozen=True)
class Options:
    """No options."""


CONF = defaults(Options)


def check(ctx: Context, conf: dict):
    """Nothing for the policy engine to do: the API-server stage reports this rule's findings."""
    return iter(())
