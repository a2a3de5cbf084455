"""What every part of the API-server stage shares: rule ids, Argo CD's annotations, the hint, the error type."""

from __future__ import annotations

from ...errors import ToolError
from ...progress import Progress, stderr as stderr_progress  # noqa: F401 - re-exported

RULE = "api-server"
STORED_RULE = "stored-as-written"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
TRACKING = "argocd.argoproj.io/tracking-id"
SYNC_OPTIONS = "argocd.argoproj.io/sync-options"
FIELD_MANAGER = "argocd-controller"
EXEMPT_PREFIX = "exempt.dox-asdlc.io/"
HINT = "run with --no-server to skip the API-server stage (validation is then weaker: schema and policy only)"
#: Parallel dry-run requests per server (the API server does the work; two cores are shared).
WORKERS = 4


class StageError(ToolError):
    """The stage cannot answer: no server for a version, a server that does not start (exit 3)."""
