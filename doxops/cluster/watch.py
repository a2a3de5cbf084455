"""The pod watch: a timeline of the pods matching a selector, and the verdicts read from it.

:class:`PodWatch` lists the pods, then watches them from that list's resourceVersion (so no event
falls between the two) and records each pod's ``created``, ``terminating`` and ``gone`` in a
timeline. It never swallows how it ended: :attr:`PodWatch.ended` says whether the harness stopped
it (:data:`STOPPED`), the server closed the stream, the server sent an ``ERROR`` event (for
example a 410 Gone), or reading failed. A verdict is read from the timeline by the pure functions
below, so that "never two pods at once" cannot pass on a watch that saw nothing:
:func:`never_two` also requires the old pod gone, a new one created, and the watch alive until
the harness stopped it.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from typing import Iterable, Sequence

from .api import Api, end_watch

#: :attr:`PodWatch.ended` when the harness stopped the watch (the only ending that proves it saw everything).
STOPPED = "stopped by the harness"


@dataclass(frozen=True)
class Event:
    """One change of one pod, ``at`` seconds after the watch started: ``created``, ``terminating`` or ``gone``."""

    at: float
    what: str
    pod: str


def max_at_once(initial: Iterable[str], timeline: Iterable[Event]) -> int:
    """The most pods that existed at once (terminating ones count), replaying ``timeline`` over ``initial``."""
    present = set(initial)
    peak = len(present)
    for event in timeline:
        if event.what == "created":
            present.add(event.pod)
        elif event.what == "gone":
            present.discard(event.pod)
        peak = max(peak, len(present))
    return peak


def story(timeline: Iterable[Event]) -> str:
    return "; ".join(f"{e.at:.1f}s {e.what} {e.pod}" for e in timeline) or "no events"


def never_two(initial: Sequence[str], timeline: Sequence[Event], ended: str | None) -> tuple[bool, str]:
    """Whether a watched replacement of one pod by another never had two pods at once, and why (not).

    Holds only when exactly one pod existed at the start, that pod is ``gone`` in the timeline, a pod
    not there at the start was ``created``, at most one pod existed at any time, and the watch ran
    until the harness stopped it. A watch that died at once, or saw nothing, fails.
    """
    problems = []
    if ended != STOPPED:
        problems.append(f"the watch ended before the harness stopped it ({ended or 'still running'})")
    if len(initial) != 1:
        problems.append(f"{len(initial)} pods at the start, not 1")
    gone = {e.pod for e in timeline if e.what == "gone"}
    missing = [name for name in initial if name not in gone]
    if missing:
        problems.append(f"the timeline does not show {', '.join(missing)} gone")
    created = [e.pod for e in timeline if e.what == "created" and e.pod not in initial]
    if not created:
        problems.append("the timeline shows no new pod created")
    peak = max_at_once(initial, timeline)
    if peak > 1:
        problems.append(f"{peak} pods at once")
    detail = f"at most {peak} pod(s); {story(timeline)}; watch {ended or 'still running'}"
    return not problems, ("; ".join(problems) + f" ({detail})") if problems else detail


def overlap_seen(initial: Sequence[str], timeline: Sequence[Event], ended: str | None) -> tuple[bool, str]:
    """Whether the watch saw two pods at once (the test of the test: a RollingUpdate with maxSurge 1)."""
    peak = max_at_once(initial, timeline)
    detail = f"at most {peak} pod(s); {story(timeline)}; watch {ended or 'still running'}"
    return peak >= 2 and ended == STOPPED, detail


class PodWatch:
    """Watches the pods of ``namespace`` matching ``selector`` in a thread; :meth:`stop` ends it."""

    def __init__(self, api: Api, namespace: str, selector: str, *, timeout: float = 600) -> None:
        self.api, self.path, self.selector = api, f"/api/v1/namespaces/{namespace}/pods", selector
        listing = api.get(self.path, labelSelector=selector)
        self.present: dict[str, dict] = {p["metadata"]["name"]: p for p in listing.get("items") or []}
        self.initial: tuple[str, ...] = tuple(sorted(self.present))
        self.started = time.monotonic()
        self.timeline: list[Event] = []
        self.ended: str | None = None
        self._stopping = False
        self._lock = threading.Lock()
        self._response = api.open_watch(self.path, listing["metadata"]["resourceVersion"], timeout=timeout,
                                        labelSelector=selector)
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"watch {selector}")
        self._thread.start()

    def _record(self, what: str, name: str) -> None:
        self.timeline.append(Event(round(time.monotonic() - self.started, 3), what, name))

    def apply(self, event: dict) -> str | None:
        """Record one watch event; returns why the watch must end (an ``ERROR`` event), else None."""
        kind, pod = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            return f"the API server sent an ERROR event: {pod.get('code')} {pod.get('reason')} {pod.get('message')}"
        name = (pod.get("metadata") or {}).get("name", "")
        with self._lock:
            if kind in ("ADDED", "MODIFIED"):
                if name not in self.present:
                    self._record("created", name)
                elif pod["metadata"].get("deletionTimestamp") and \
                        not self.present[name]["metadata"].get("deletionTimestamp"):
                    self._record("terminating", name)
                self.present[name] = pod
            elif kind == "DELETED":
                self.present.pop(name, None)
                self._record("gone", name)
        return None

    def _run(self) -> None:
        reason = "the API server closed the stream"
        try:
            while True:
                line = self._response.readline()
                if not line:
                    break
                reason = self.apply(json.loads(line)) or reason
                if reason.startswith("the API server sent"):
                    break
        except Exception as exc:  # noqa: BLE001 - why the watch ended is reported, never swallowed
            reason = f"reading the watch failed: {type(exc).__name__}: {exc}"
        self.ended = STOPPED if self._stopping else reason

    def stop(self) -> "PodWatch":
        self._stopping = True
        end_watch(self._response)
        self._thread.join(timeout=5)
        try:
            self._response.close()
        except Exception:  # noqa: BLE001 - closing a finished stream
            pass
        if self._thread.is_alive():
            self.ended = "the watch thread did not end within 5 s of being stopped"
        return self

    @property
    def max_present(self) -> int:
        with self._lock:
            return max_at_once(self.initial, list(self.timeline))

    def story(self) -> str:
        with self._lock:
            return story(list(self.timeline))

    def never_two(self) -> tuple[bool, str]:
        with self._lock:
            return never_two(self.initial, list(self.timeline), self.ended)

    def overlap_seen(self) -> tuple[bool, str]:
        with self._lock:
            return overlap_seen(self.initial, list(self.timeline), self.ended)
