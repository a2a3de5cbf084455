"""The exit-code contract at the entry point: 0 ok, 1 findings, 2 usage, 3 tool."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import assert_no_traceback, run_dox


@pytest.mark.parametrize("args, code, words", [
    (["--list"], 0, "render"),
    (["no-such-task"], 2, "No idea what 'no-such-task' is"),
    (["render", "--no-such-flag"], 2, "No idea what '--no-such-flag' is"),
    (["validate", "--format", "xml"], 2, "unknown --format 'xml'"),
    (["validate", "--env", "prod", "--path", "."], 2, "give --env or --path"),
])
def test_exit_codes_and_messages(repo_copy, args, code, words):
    proc = run_dox(repo_copy, *args)
    assert proc.returncode == code, proc.stderr
    assert words in proc.stdout + proc.stderr
    assert_no_traceback(proc)


def test_validation_errors_exit_1(repo_copy):
    target = repo_copy / "rendered/prod/workloads/deployment-orchestrator.yaml"
    target.write_text(target.read_text().replace("replicas: 1", "replicas: 2"))
    proc = run_dox(repo_copy, "validate", "--env", "prod")
    assert proc.returncode == 1
    assert "rendered/prod/workloads/deployment-orchestrator.yaml:" in proc.stdout and "(singleton)" in proc.stdout


def test_missing_tool_without_go_exits_3(repo_copy, tmp_path):
    env = {"DOX_CACHE_DIR": str(tmp_path / "empty-cache"), "PATH": os.path.dirname(sys.executable)}
    proc = run_dox(repo_copy, "tools", "--check", env=env)
    assert proc.returncode == 3 and "not built yet" in proc.stderr
    proc = run_dox(repo_copy, "tools", env=env)
    assert proc.returncode == 3 and "install Go" in proc.stderr
    assert_no_traceback(proc)


def _program(body):
    from invoke import Collection, task

    from doxops.cli import DoxProgram

    @task
    def boom(c):
        body()

    return DoxProgram(name="dox", namespace=Collection(boom), version="0")


@pytest.mark.parametrize("raised, code", [
    (KeyboardInterrupt, 3),
    (RuntimeError("unexpected"), 3),
])
def test_interrupt_and_unexpected_errors_exit_3_without_traceback(capsys, raised, code):
    def body():
        raise raised
    with pytest.raises(SystemExit) as info:
        _program(body).run(["dox", "boom"])
    assert info.value.code == code
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.startswith("dox: ")


def test_sigterm_is_handled_like_ctrl_c(capsys):
    from doxops import cli

    previous = signal.signal(signal.SIGTERM, cli._terminate)
    try:
        with pytest.raises(SystemExit) as info:
            _program(lambda: (os.kill(os.getpid(), signal.SIGTERM), time.sleep(5))).run(["dox", "boom"])
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert info.value.code == 3 and "interrupted" in capsys.readouterr().err


def test_every_task_documents_every_option():
    from doxops.cli import load_namespace

    ns = load_namespace()
    for name in ns.task_names:
        task = ns[name]
        assert (task.__doc__ or "").strip(), f"task {name} has no docstring"
        options = [a for a in task.get_arguments() if a.name != "c"]
        missing = [a.name for a in options if not a.help]
        assert not missing, f"task {name}: options without :param help: {missing}"


def test_every_short_flag_is_a_letter_the_parser_reads():
    """invoke would give validate's --no-server the short flag "-" (its letters are taken): never offered."""
    import tasks

    for name, task in tasks.ns.tasks.items():
        for argument in task.get_arguments():
            shorts = [n for n in argument.names if len(n) == 1]
            assert all(n.isalpha() for n in shorts), f"{name} --{argument.name}: short flag {shorts}"


@pytest.mark.parametrize("dont_write", ["1", None], ids=["PYTHONDONTWRITEBYTECODE=1", "unset"])
def test_the_wrapper_keeps_bytecode_in_the_cache_not_beside_the_sources(repo_copy, tmp_path, dont_write):
    import hashlib
    import shutil
    import subprocess

    from doxops.paths import REPO_ROOT

    shutil.copy2(REPO_ROOT / "dox", repo_copy / "dox")  # the copy holds the repository's files, not the wrapper
    cache = tmp_path / "cache"
    lock_hash = hashlib.sha256((repo_copy / "requirements.lock").read_bytes()).hexdigest()[:16]
    venv = Path(sys.prefix).resolve()
    if venv.name != lock_hash:
        pytest.skip("not running in ./dox's virtualenv for this requirements.lock")
    (cache / "venvs").mkdir(parents=True)
    (cache / "venvs" / lock_hash).symlink_to(venv, target_is_directory=True)  # the venv, not rebuilt
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update({"DOX_CACHE_DIR": str(cache), **({"PYTHONDONTWRITEBYTECODE": dont_write} if dont_write else {})})
    proc = subprocess.run(["bash", "./dox", "--list"], cwd=repo_copy, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    compiled = {p.name for p in (cache / "pycache").rglob("*.pyc")}
    assert {"__init__.cpython-311.pyc", "__main__.cpython-311.pyc", "cli.cpython-311.pyc"} <= compiled
    assert "enum.cpython-311.pyc" in compiled  # the interpreter's own start-up modules too: nothing compiled twice
    assert not list(repo_copy.rglob("__pycache__"))  # nothing beside the sources
