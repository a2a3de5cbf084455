"""api-server: the pinned kube-apiserver accepts the object as its Application applies it, without warnings.

Findings come from validate's API-server stage (doxops/validate/server), not from this module: every
object is sent to the pinned kube-apiserver on 127.0.0.1 as a dry-run apply, exactly as its Argo CD
Application syncs it (client-side apply with the last-applied annotation, or server-side apply). A
rejection is an error with the server's own message at the field it names; a server warning is a
warning. The module registers the id, so that policy.yaml can set its level (``level: warning`` makes
every finding a warning, ``off`` drops them; unset, rejections are errors and warnings warnings) and an
object can be exempted with ``exempt.dox-asdlc.io/api-server: "<reason>"``. ``--no-server`` skips it.

Passing::

    kind: Service
    metadata: {name: web}
    spec: {selector: {app: web}, ports: [{port: 80, targetPort: 3000}]}

Failing (a string targetPort must name a container port; the server refuses it)::

    kind: Service
    metadata: {name: web}
    spec: {selector: {app: web}, ports: [{port: 80, targetPort: "3000"}]}
"""

from __future__ import annotations

from dataclasses import dataclass

from ..engine import Context
from ..options import defaults

ID = "api-server"
LEVEL = "error"
#: Judged by this validate stage, not by the policy engine: its fixtures are run in tests/validate/test_server.py.
STAGE = "api-server"


@dataclass(frozen=True)
class Options:
    """No options."""


CONF = defaults(Options)


def check(ctx: Context, conf: dict):
    """Nothing for the policy engine to do: the API-server stage reports this rule's findings."""
    return iter(())
