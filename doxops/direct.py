"""``./dox render``, ``./dox validate`` and ``./dox render validate`` (each ``validate`` optionally with
``--no-server``) run without the CLI framework.

These plain forms are the commonest commands; invoke and the task file cost about 0.1 s of start-up (invoke
imports asyncio and unittest.mock), a tenth of a cold render and validation. For exactly these argument lists
(:data:`doxops.noop.FORMS`) the task bodies (:mod:`doxops.commands`, the ones tasks.py calls) run here, in
order, with the full CLI's endings: ``dox <task>: <message>`` and the error's code for a DoxError (the next
task does not run), ``dox <task>: interrupted`` and 3 for Ctrl-C or SIGTERM, one ``dox: internal error`` line
and 3 for anything else; a closed standard output (``| head``) is one line and 3. Any other argument list returns None and the full CLI runs. tests/pipeline/test_noop.py
compares the two on the same inputs.
"""

from __future__ import annotations

import sys

from .noop import FORMS


def run(argv: list[str]) -> int | None:
    """The exit code after running ``argv``'s tasks, or None when ``argv`` is not a form run here."""
    form = FORMS.get(tuple(argv))
    if form is None:
        return None
    from .errors import DoxError, report_closed_output, report_internal  # noqa: PLC0415

    render, server = form
    steps = (["render"] if render else []) + (["validate"] if server is not None else [])
    name = steps[0]
    if render and server is not None:
        _prepare_validation()
    try:
        from . import commands  # noqa: PLC0415
        from .noop import DIGESTS  # noqa: PLC0415
        from .paths import REPO_ROOT  # noqa: PLC0415
        from .render.sources import remember_digest, walks_remembered  # noqa: PLC0415

        with walks_remembered():  # one reading of the sources for the render and the validation
            for env, digest in DIGESTS.items():  # what the cached path's check hashed before its miss
                remember_digest(REPO_ROOT, env, digest)
            for name in steps:
                if name == "render":
                    commands.render()
                else:
                    commands.validate(no_server=not server)
    except DoxError as exc:  # the next task does not run, as with invoke
        print(f"dox {name}: {exc.message}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print(f"dox {name}: interrupted", file=sys.stderr)
        return 3
    except BrokenPipeError:  # | head: a report cut short is no result
        return report_closed_output()
    except Exception as exc:  # noqa: BLE001 - no traceback for users
        return report_internal(exc)
    return 0


def _prepare_validation() -> None:
    """For ``render validate``: once the render's first kustomize build has started (the main thread then waits
    for it), import the validation stage and read the policy files on a thread, so that the validation starts
    at once when the render ends. Nothing is validated or kept here but modules and parsed files; a failure is
    left to the validation itself, which reports it."""
    import threading  # noqa: PLC0415

    def prepare() -> None:
        try:
            from .render.tools import BUILDING  # noqa: PLC0415

            if not BUILDING.wait(timeout=60):
                return
            import importlib  # noqa: PLC0415

            importlib.import_module("doxops.validate.runner")
            from .validate import engine  # noqa: PLC0415
            from .validate.rules import REGISTRY  # noqa: PLC0415

            engine.load_config(known_rules=REGISTRY)
        except Exception:  # noqa: BLE001 - see the docstring
            pass

    threading.Thread(target=prepare, name="prepare-validation", daemon=True).start()
