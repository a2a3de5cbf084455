"""``./dox diff``: what a change does to each environment, as Argo CD will do it (a plan, not a patch).

By default both sides are the committed ``rendered/`` trees, read straight from git (exactly what
Argo CD syncs before and after). Without ``--head`` the head side is a fresh render of the working
tree; ``--rerender`` renders both sides from their sources (the base in a temporary worktree, cached
by commit).

Modules: ``sources`` (the two sides), ``resources`` (identity keys, named lists), ``compare`` (the
resource-by-resource comparison), ``semantics`` and ``quantity`` (values the API server stores
identically), ``mask`` (secrets only), ``plan`` (Argo CD: prune policy, waves, rollouts, the immutable
verdict seam), ``formats`` (text, markdown, json, unified), ``settings`` (diff.yaml).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .. import lazy
from ..paths import REPO_ROOT
from ..progress import stderr as _stderr

# Eager: the function ``compare`` has its module's name, and importing the module later would rebind the
# package attribute to the module (cheap: DeepDiff is loaded when a resource changed).
from .compare import ADD, CHANGE, REMOVE, SAME, Change, compare

if TYPE_CHECKING:
    from .plan import ImmutableVerdict, SyncPolicy
    from .resources import Key
    from .settings import Settings
    from .sources import Progress

#: Public name -> the module that defines it, loaded on first use (PEP 562): the masking rule that
#: validation shares (:mod:`.mask`, :mod:`.settings`) is imported without the comparison and the formats.
_EXPORTS = {
    **dict.fromkeys(("FORMATS", "MARKDOWN_LIMIT", "PART_BREAK", "UNIFIED_LIMIT", "VALUE_LIMIT", "summary_lines",
                     "to_json", "to_markdown", "to_text", "unified"), ".formats"),
    **dict.fromkeys(("ImmutableVerdict", "SyncPolicy", "arrange", "settings_policy", "uncovered"), ".plan"),
    **dict.fromkeys(("Key", "parse_files"), ".resources"),
    **dict.fromkeys(("MASK", "Settings", "load_settings"), ".settings"),
    **dict.fromkeys(("STATE_DIR", "Progress", "file_at", "rendered_side", "resolve_ref"), ".sources"),
}

__all__ = ["ADD", "CHANGE", "REMOVE", "SAME", "Change", "FORMATS", "ImmutableVerdict", "Key", "MASK",
           "MARKDOWN_LIMIT", "PART_BREAK", "Settings", "UNIFIED_LIMIT", "VALUE_LIMIT", "changes_in_cluster",
           "build_plan", "compare", "load_settings", "run_diff", "summary_lines", "to_json", "to_markdown", "to_text",
           "unified"]


__getattr__, __dir__ = lazy.exports(__name__, _EXPORTS)


def changes_in_cluster(changes: list[Change]) -> list[Change]:
    """The changes the cluster sees (resources only written differently left out): ``--exit-code``."""
    return [c for c in changes if c.action != SAME]


def build_plan(before: dict[Key, dict], after: dict[Key, dict], files: dict[Key, str], settings: Settings,
         fallback: dict[str, SyncPolicy] | None = None, immutable: ImmutableVerdict | None = None,
         scan_cache: Path | None = None) -> list[Change]:
    """Compare two sides and arrange the changes as Argo CD will apply them."""
    from .plan import arrange, settings_policy  # noqa: PLC0415

    envs = {k[0] for k in before} | {k[0] for k in after}
    fallback = {env: (fallback or {}).get(env) or settings_policy(env, None) for env in envs}
    changes = compare(before, after, settings, scan_cache=scan_cache)
    return arrange(changes, before, after, files, fallback, immutable)


def run_diff(base: str = "HEAD", head: str | None = None, env: str | None = None, rerender: bool = False,
             root: Path = REPO_ROOT, progress: Progress = _stderr,
             immutable: ImmutableVerdict | None = None) -> list[Change]:
    """The plan between ``base`` and ``head`` (the working tree when None), for ``env`` or all.

    ``immutable``: the API server's verdict on changed objects (see :data:`ImmutableVerdict`)."""
    from .. import environments  # noqa: PLC0415
    from ..errors import UsageError  # noqa: PLC0415
    from .plan import settings_policy, uncovered  # noqa: PLC0415
    from .resources import parse_files  # noqa: PLC0415
    from .settings import load_settings  # noqa: PLC0415
    from .sources import STATE_DIR, file_at, rendered_side, resolve_ref  # noqa: PLC0415

    if not (root / ".git").exists():
        raise UsageError(f"{root}: not a git repository; diff compares git refs")
    base_commit = resolve_ref(base, root)
    head_commit = resolve_ref(head, root) if head else None
    settings = load_settings(root / "diff.yaml")
    before, files_before = parse_files(rendered_side(base_commit, root, rerender, progress))
    wanted = {n.strip() for n in env.split(",") if n.strip()} if env else None
    if wanted:  # checked before the head side is rendered, which then renders only these
        known = {k[0] for k in before} | {e.name for e in environments.discover(root)}
        unknown = sorted(wanted - known)
        if unknown:
            raise UsageError(f"unknown environment {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        before = {k: v for k, v in before.items() if k[0] in wanted}
    after, files_after = parse_files(rendered_side(head_commit, root, rerender, progress, only=wanted))
    if wanted:
        after = {k: v for k, v in after.items() if k[0] in wanted}
    files = {**files_before, **files_after}
    fallback = {e: settings_policy(e, file_at(head_commit, f"{environments.ENV_DIR}/{e}/argocd/settings.yaml", root))
                for e in uncovered(before, after, files)}
    return build_plan(before, after, files, settings, fallback, immutable,
                scan_cache=root / STATE_DIR / "diff-cache")
