"""The bodies of ``./dox render`` and ``./dox validate``: one definition, called by the invoke tasks
(``tasks.py``, which parses every option) and by :mod:`doxops.direct` (the plain forms, without invoke).

Both raise :class:`doxops.errors.DoxError` (UsageError exit 2, Findings exit 1, ToolError exit 3); the caller
prints it as ``dox <task>: <message>``.
"""

from __future__ import annotations

from pathlib import Path

from . import errors


def render(env: str | None = None, check: bool = False, jobs: int = 0, force: bool = False) -> None:
    """Render the selected environments (``env``: comma-separated names; None: ``$DOX_ENV``, else all) into
    rendered/<env>/; ``check``: render afresh without writing and raise Findings naming every stale file;
    ``jobs``: parallel renders (0: one per core); ``force``: ignore the render cache."""
    from . import environments, render as render_mod  # noqa: PLC0415 - only what this command needs
    from .render.sources import walks_remembered  # noqa: PLC0415

    selected = environments.select(env)
    every = len(selected) == len(environments.discover())
    with walks_remembered():
        if check:
            render_mod.check(selected, every=every)
        else:
            render_mod.render_all(selected, jobs=jobs or None, use_cache=not force)
            if every:
                with render_mod.render_lock(render_mod.REPO_ROOT, render_mod.stderr_progress):
                    render_mod.remove_orphans(selected)


def validate(env: str | None = None, path: str | None = None, format: str = "text",  # noqa: A002 - the option
             kubernetes_version: str | None = None, namespace: str | None = None, force: bool = False,
             policy: str | None = None, no_server: bool = False) -> None:
    """Validate rendered/<env> (or the directory ``path``) and print the reports in ``format``; raises Findings
    when a report has errors. The options are ``./dox validate``'s (see ``./dox --help validate``)."""
    from . import environments  # noqa: PLC0415
    from .validate import runner  # noqa: PLC0415

    if format not in runner.FORMATS:
        raise errors.UsageError(f"unknown --format {format!r}; use one of {', '.join(runner.FORMATS)}")
    if path:
        if env:
            raise errors.UsageError("give --env or --path, not both")
        stage = runner.server_stage(not no_server)
        try:
            reports = [runner.validate_path(Path(path), kubernetes_version or runner.DEFAULT_KUBERNETES, namespace,
                                            policy=Path(policy) if policy else None, stage=stage)]
        finally:
            if stage is not None:
                stage.close()
    else:
        if policy:
            raise errors.UsageError("--policy goes with --path; an environment's policy is "
                                    "environments/<env>/policy.yaml")
        from .render.sources import walks_remembered  # noqa: PLC0415

        with walks_remembered():
            reports = runner.validate_envs(environments.select(env), use_cache=not force, server=not no_server)
    runner.emit(reports, format)
