"""A warm no-op ``./dox render validate`` answered from the caches before the CLI framework is imported.

Rendering and validating again when nothing changed is the commonest command of all. When every
environment's render cache and validation cache answer, no tool runs and nothing is parsed, so the cost
is start-up: this module answers that case with only the cache modules loaded (not invoke, not the
kustomize runner, the rules or the API-server stage).

It answers only these argument lists, only when ``$DOX_ENV`` (and ``$DOX_HELM``, ``$DOX_KUSTOMIZE``) are
unset, only when the pinned helm and kustomize are in the cache as checked and none is on PATH, and only when
every answer is a hit with no error: ``render``, ``validate``, ``render validate``, each ``validate`` optionally followed
by ``--no-server``. Anything else (another option, a changed input, output of a removed environment or a
killed render's leftovers, a render holding the lock, a corrupt cache, a cached report with errors, any
exception) returns None *before printing anything*, and the full CLI
runs as if this module did not exist. The decisions are the full path's own functions
(:func:`doxops.render.cache.up_to_date` under :func:`doxops.render.write.render_lock`,
:func:`doxops.validate.cache.cached_report`, :func:`doxops.validate.report.emit`), so the messages are
the same; tests/pipeline/test_noop.py compares the two paths' output on the same clone.
"""

from __future__ import annotations

import os
import sys
import time

#: The argument lists answered here (after ``./dox``).
FORMS = {
    ("render",): (True, None),
    ("validate",): (False, True),
    ("validate", "--no-server"): (False, False),
    ("render", "validate"): (True, True),
    ("render", "validate", "--no-server"): (True, False),
}


#: The digests :func:`answer` computed (environment -> :func:`doxops.render.sources.shaping_digest`): after a
#: miss, the render and validation that follow in this process (:mod:`doxops.direct`) use them instead of
#: hashing the same inputs again a few milliseconds later.
DIGESTS: dict = {}


class _Miss(Exception):
    """Something the full CLI would say (a corrupt cache, a render holding the lock): let it say it."""


def _miss(message: str) -> None:
    raise _Miss(message)


def answer(argv: list[str]) -> int | None:
    """0 after printing what the full CLI prints for a cache hit; None (nothing printed) otherwise.

    Ctrl-C (and SIGTERM, which ``__main__`` turns into it) ends with the full CLI's message and exit 3; a
    closed output pipe (``| head``) ends quietly."""
    form = FORMS.get(tuple(argv))
    if form is None or os.environ.get("DOX_ENV") or any(os.environ.get(v) for v in ("DOX_HELM", "DOX_KUSTOMIZE")):
        return None
    try:
        lines = _hits(*form)
        if lines is None:
            return None
        for stream, line in lines:
            print(line, file=getattr(sys, stream), flush=True)
    except KeyboardInterrupt:
        print(f"dox {argv[0]}: interrupted", file=sys.stderr, flush=True)
        return 3
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python flushes
        return 0
    except Exception:  # noqa: BLE001 - any doubt goes to the full CLI, which reports it properly
        return None
    return 0


def _tools_in_place() -> bool:
    """Whether the full render would find helm and kustomize in the cache as they are and say nothing: both
    pinned builds present and stamped as checked (the stamp alone; the full CLI compares it), and neither on
    PATH (a binary there is checked, used or refused with a note, by the full CLI). Otherwise the full CLI
    resolves (and if need be builds) them."""
    import shutil  # noqa: PLC0415

    from . import gotools, toolchain  # noqa: PLC0415

    specs = toolchain.load_specs()
    for name in ("helm", "kustomize"):
        directory = gotools.tool_dir(specs[name])
        if shutil.which(name) or not (directory / name).is_file() or not (directory / gotools.STAMP).is_file():
            return False
    return True


def _hits(render: bool, validate: bool | None) -> list[tuple[str, str]] | None:
    """(stream name, line) of what the full CLI prints for a full hit, or None at the first miss."""
    from .render.sources import walks_remembered  # noqa: PLC0415 - imported only when the argument list qualifies

    with walks_remembered():  # the render check's digests are the validation keys' (one reading, as in direct)
        return _hits_remembered(render, validate)


def _hits_remembered(render: bool, validate: bool | None) -> list[tuple[str, str]] | None:
    from . import environments  # noqa: PLC0415
    from .paths import REPO_ROOT  # noqa: PLC0415
    from .render.cache import up_to_date  # noqa: PLC0415
    from .render.sources import shaping_digest  # noqa: PLC0415
    from .render.write import orphans, render_lock, result_line  # noqa: PLC0415

    envs = environments.discover(REPO_ROOT)
    if not envs:
        return None
    lines: list[tuple[str, str]] = []
    if render:
        rendered = REPO_ROOT / "rendered"
        if not _tools_in_place() or any(rendered.glob(".*")):  # leftovers: the full render cleans up
            return None
        with render_lock(REPO_ROOT, _miss):  # another render holds it: the full CLI waits and says so
            for env in envs:
                started = time.monotonic()
                digest = DIGESTS[env] = shaping_digest(REPO_ROOT, env)
                if not up_to_date(REPO_ROOT, env, digest, _miss):
                    return None
                lines.append(("stderr", result_line(env.name, None, REPO_ROOT, time.monotonic() - started)))
            if orphans(envs, REPO_ROOT):  # the full render removes them and says so
                return None
    if validate is not None:
        from .validate.cache import cached_report  # noqa: PLC0415
        from .validate.report import emit  # noqa: PLC0415

        reports = [cached_report(env, REPO_ROOT, validate, progress=_miss) for env in envs]
        if any(r is None or r.errors for r in reports):
            return None
        emit(reports, "text", out=_Lines(lines), progress=lambda message: lines.append(("stderr", message)))
    return lines


class _Lines:
    """Standard output as :func:`emit` writes it, collected, so nothing is printed before every answer is in."""

    def __init__(self, lines: list[tuple[str, str]]) -> None:
        self.lines = lines
        self._pending = ""

    def write(self, text: str) -> int:
        self._pending += text
        *done, self._pending = self._pending.split("\n")
        self.lines.extend(("stdout", line) for line in done)
        return len(text)

    def flush(self) -> None:
        pass
