"""`./dox test` installs the system programs it needs, or says the one command to run (exit 3).

Every case runs against a fake PATH (fake apt-get and sudo that only write files), never the real one.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from doxops import prereqs
from doxops.errors import ToolError
from tests.conftest import assert_no_traceback, run_dox

PROGRAM_OF = {"redis-server": "redis-server", "util-linux": "setpriv", "openssl": "openssl", "git": "git"}


def script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


@pytest.fixture
def machine(tmp_path):
    """A PATH with git and openssl, no redis-server or setpriv; apt-get 'installs' by writing a script."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for program in ("git", "openssl"):
        script(bin_dir / program, "exit 0\n")
    log = tmp_path / "apt.log"
    cases = "\n".join(f"    {pkg}) printf '#!/bin/sh\\n' > {bin_dir}/{prog}; /bin/chmod 755 {bin_dir}/{prog};;"
                      for pkg, prog in PROGRAM_OF.items())
    script(bin_dir / "apt-get", f"""echo "$DEBIAN_FRONTEND $*" >> {log}
[ -e {tmp_path}/apt-fails-once ] && /bin/rm {tmp_path}/apt-fails-once && [ "$1" = install ] && exit 100
[ "$1" = install ] || exit 0
for arg in "$@"; do
  case "$arg" in
{cases}
  esac
done
""")
    return bin_dir, log


def with_sudo(bin_dir: Path, works: bool) -> None:
    then = 'PATH=/usr/bin:/bin exec "$@"' if works else "echo 'sudo: a password is required' >&2; exit 1"
    script(bin_dir / "sudo", f'[ "$1" = -n ] || exit 2\nshift\n{then}\n')


def test_nothing_runs_when_everything_is_there(machine):
    bin_dir, log = machine
    for program in ("redis-server", "setpriv"):
        script(bin_dir / program, "exit 0\n")
    assert prereqs.ensure(path=str(bin_dir), euid=1000) == []
    assert not log.exists()


def test_root_installs_the_missing_packages_with_apt(machine):
    bin_dir, log = machine
    notes = []
    assert prereqs.ensure(path=str(bin_dir), euid=0, progress=notes.append) == ["redis-server", "util-linux"]
    assert log.read_text().splitlines() == [
        "noninteractive install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=300 redis-server util-linux"]
    assert prereqs.missing(path=str(bin_dir)) == {}
    assert "redis-server (Argo CD's cache" in notes[0]


def test_a_user_with_passwordless_sudo_installs_through_sudo(machine):
    bin_dir, log = machine
    with_sudo(bin_dir, works=True)
    assert prereqs.ensure(["redis-server"], path=str(bin_dir), euid=1000) == ["redis-server"]
    assert log.read_text().split()[:3] == ["noninteractive", "install", "-y"]


def test_stale_package_lists_are_updated_once(machine, tmp_path):
    bin_dir, log = machine
    (tmp_path / "apt-fails-once").touch()
    assert prereqs.ensure(["redis-server"], path=str(bin_dir), euid=0) == ["redis-server"]
    assert [line.split()[1] for line in log.read_text().splitlines()] == ["install", "update", "install"]


@pytest.mark.parametrize("sudo", [None, False])
def test_a_user_without_passwordless_sudo_is_told_the_one_command(machine, sudo):
    bin_dir, log = machine
    if sudo is not None:
        with_sudo(bin_dir, works=sudo)
    with pytest.raises(ToolError) as info:
        prereqs.ensure(path=str(bin_dir), euid=1000)
    assert info.value.code == 3 and "`sudo apt-get install redis-server util-linux`" in str(info.value)
    assert "setpriv (the e2e harness" in str(info.value)
    assert not log.exists()  # nothing was tried


def test_a_failing_install_names_the_command(machine):
    bin_dir, _ = machine
    script(bin_dir / "apt-get", "echo 'E: Unable to locate package redis-server' >&2; exit 100\n")
    with pytest.raises(ToolError) as info:
        prereqs.ensure(["redis-server"], path=str(bin_dir), euid=0)
    message = str(info.value)
    assert "Unable to locate package" in message and "`sudo apt-get install redis-server`" in message


def test_an_install_that_brings_no_program_is_an_error(machine):
    bin_dir, _ = machine
    script(bin_dir / "apt-get", "exit 0\n")
    with pytest.raises(ToolError, match="redis-server is still not on PATH"):
        prereqs.ensure(["redis-server"], path=str(bin_dir), euid=0)


def test_dox_test_without_apt_get_exits_3_naming_the_command(repo_copy, tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    proc = run_dox(repo_copy, "test", env={"PATH": f"{bin_dir}:{os.path.dirname(sys.executable)}"})
    assert proc.returncode == 3, proc.stderr
    assert "redis-server" in proc.stderr and "sudo apt-get install" in proc.stderr and "no apt-get" in proc.stderr
    assert_no_traceback(proc)
