"""The loopback proof: every TCP and UDP socket of the harness's processes, read from /proc, in every state.

:func:`sockets` lists ``(process, protocol, state, "local -> remote")`` for every socket whose
inode one of the processes (or a process they started) holds open, whatever its state: a
half-open ``SYN_SENT`` to a distant address, a ``CLOSE_WAIT`` or a ``FIN_WAIT2`` is reported
as well as ``LISTEN`` and ``ESTABLISHED`` (a state this module has no name for is reported by
its number, never skipped). :func:`non_loopback_sockets` keeps those touching anything but
127.0.0.0/8 or ::1, and :class:`SocketSampler` takes that reading every second for as long as a
run goes on, so a connection opened and closed between two checks is still seen.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import threading
from pathlib import Path
from typing import Callable, Iterable

from .process import Process

#: ``(process, protocol, state, "local -> remote")``
Socket = tuple[str, str, str, str]

#: The kernel's TCP states (include/net/tcp_states.h), by the hex code /proc/net/tcp shows.
TCP_STATES = {"01": "ESTABLISHED", "02": "SYN_SENT", "03": "SYN_RECV", "04": "FIN_WAIT1", "05": "FIN_WAIT2",
              "06": "TIME_WAIT", "07": "CLOSE", "08": "CLOSE_WAIT", "09": "LAST_ACK", "0A": "LISTEN",
              "0B": "CLOSING", "0C": "NEW_SYN_RECV"}
#: UDP sockets use two of them: connected (01) or not (07).
UDP_STATES = {"01": "ESTABLISHED", "07": "UNCONNECTED"}


def _decode_v4(hex_address: str) -> str:
    address, port = hex_address.split(":")
    octets = [str(int(address[i:i + 2], 16)) for i in range(6, -1, -2)]
    return f"{'.'.join(octets)}:{int(port, 16)}"


def _decode_v6(hex_address: str) -> str:
    address, port = hex_address.split(":")
    words = [address[i:i + 8] for i in range(0, 32, 8)]
    raw = b"".join(bytes.fromhex(w)[::-1] for w in words)
    ip = ipaddress.IPv6Address(raw)
    shown = str(ip.ipv4_mapped) if ip.ipv4_mapped else str(ip)
    return f"[{shown}]:{int(port, 16)}"


def state_name(protocol: str, code: str) -> str:
    """The name of a /proc/net state code; an unknown code is named by its number (never dropped)."""
    names = UDP_STATES if protocol == "udp" else TCP_STATES
    return names.get(code.upper(), f"STATE_{code.upper()}")


def parse_table(text: str, table: str, inodes: set[str]) -> list[tuple[str, str, str]]:
    """``(protocol, state, "local -> remote")`` of the rows of a /proc/net/{tcp,tcp6,udp,udp6} table
    whose inode is in ``inodes``, in every state."""
    decode = _decode_v6 if table.endswith("6") else _decode_v4
    protocol = table.rstrip("6")
    out = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) > 9 and fields[9] in inodes:
            out.append((protocol, state_name(protocol, fields[3]), f"{decode(fields[1])} -> {decode(fields[2])}"))
    return out


def descendants(pid: int) -> list[int]:
    """``pid`` and every process it started (and they started), from /proc's children lists."""
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{current}/task"):
                with contextlib.suppress(OSError):
                    todo += [int(c) for c in Path(f"/proc/{current}/task/{task}/children").read_text().split()]
    return out


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
    return inodes


def sockets(processes: Iterable[Process]) -> list[Socket]:
    """``(process, protocol, state, "local -> remote")`` of every TCP and UDP socket, in any state, that
    ``processes`` or their descendants hold, from /proc."""
    out = []
    tables: dict[tuple[str, str], str] = {}  # read once per network namespace and table
    for process in processes:
        pids = descendants(process.pid)
        inodes = set().union(*(_socket_inodes(pid) for pid in pids))
        if not inodes:
            continue
        namespace = ""
        with contextlib.suppress(OSError):
            namespace = os.readlink(f"/proc/{process.pid}/ns/net")
        for table in ("tcp", "tcp6", "udp", "udp6"):
            with contextlib.suppress(OSError):
                if (namespace, table) not in tables or not namespace:
                    tables[(namespace, table)] = Path(f"/proc/{process.pid}/net/{table}").read_text()
                out += [(process.name, *row) for row in parse_table(tables[(namespace, table)], table, inodes)]
    return out


def is_loopback_endpoint(endpoint: str) -> bool:
    host = endpoint.rsplit(":", 1)[0].strip("[]")
    return host.startswith("127.") or host == "::1"


def _unset(endpoint: str) -> bool:
    return endpoint.rsplit(":", 1)[1] == "0"


def non_loopback_sockets(report: list[Socket], allowed: Callable[[Socket], bool] = lambda entry: False) -> list[str]:
    """The sockets of a :func:`sockets` report that touch anything but 127.0.0.0/8 (or ::1), except ``allowed``.

    A listening socket is judged by its local address; any other by both ends (an unset remote, port 0, is
    an unconnected UDP socket, or a TCP socket not yet connected, and has no peer)."""
    bad = []
    for entry in report:
        name, protocol, state, pair = entry
        if allowed(entry):
            continue
        local, remote = pair.split(" -> ")
        ends = [local] if state == "LISTEN" else [e for e in (local, remote) if not _unset(e)]
        if not all(is_loopback_endpoint(e) for e in ends):
            bad.append(f"{name}: {protocol} {state} {pair}")
    return bad


class SocketSampler:
    """Reads the sockets of ``processes()`` every ``interval`` seconds while a run goes on (a context manager).

    ``samples`` counts the readings, ``states`` holds every state seen, ``bad`` every non-loopback socket
    (but ``allowed`` ones), ``errors`` any reading that failed: a proof needs samples and no errors.
    """

    def __init__(self, processes: Callable[[], list[Process]], allowed: Callable[[Socket], bool] = lambda e: False,
                 interval: float = 1.0, name: str = "dox-sockets") -> None:
        self.processes, self.allowed, self.interval = processes, allowed, interval
        self.samples = 0
        self.sockets_seen = 0
        self.states: set[str] = set()
        self.bad: set[str] = set()
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name=name)

    def sample(self) -> list[Socket]:
        """One reading, recorded."""
        report = sockets([p for p in self.processes() if p.alive])
        self.samples += 1
        self.sockets_seen = max(self.sockets_seen, len(report))
        self.states.update(f"{protocol} {state}" for _, protocol, state, _ in report)
        self.bad.update(non_loopback_sockets(report, self.allowed))
        return report

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.sample()
            except Exception as exc:  # noqa: BLE001 - recorded; the proof then fails
                self.errors.append(f"{type(exc).__name__}: {exc}")
            self._stop.wait(self.interval)

    def summary(self) -> str:
        return (f"{self.samples} samples, up to {self.sockets_seen} sockets, states {sorted(self.states)}; "
                f"non-loopback: {sorted(self.bad) or 'none'}" + (f"; errors: {self.errors[:3]}" if self.errors else ""))

    def proved(self) -> bool:
        """Sampled at least once, without errors, and never a socket beyond loopback."""
        return self.samples > 0 and not self.errors and not self.bad

    def __enter__(self) -> "SocketSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
