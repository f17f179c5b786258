"""Long-lived daemon threads for the transport: alarms and after-the-reply work.

A `threading.Timer` for each stream's --max-time and a new thread to release each
connection cost two thread starts per call (about 1 to 2 ms of wall time on a busy
2-core machine, against 3 ms for a whole short reply). Here one alarm thread serves every
deadline and finished helper threads wait for the next job. Both start on first use and
again in a forked child (threads do not survive a fork).
"""

from __future__ import annotations

import heapq
import itertools
import os
import queue
import threading
import time
from collections.abc import Callable

# Compact the heap once this many cancelled alarms are in it (a batch of a million calls
# cancels a million 30-minute alarms; they must not wait there for their deadline).
_COMPACT_AFTER = 64


class Alarm:
    """One pending call; `cancel()` from any thread before it fires stops it."""

    __slots__ = ("deadline", "order", "callback", "_owner")

    def __init__(self, deadline: float, order: int, callback: Callable[[], object],
                 owner: Alarms) -> None:
        self.deadline, self.order, self.callback, self._owner = deadline, order, callback, owner

    def __lt__(self, other: Alarm) -> bool:
        return (self.deadline, self.order) < (other.deadline, other.order)

    def cancel(self) -> None:
        self._owner.cancel(self)


class Alarms:
    """Calls each callback on one daemon thread when its delay has passed."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._heap: list[Alarm] = []
        self._cancelled = 0
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def call_after(self, delay: float, callback: Callable[[], object]) -> Alarm:
        with self._condition:
            alarm = Alarm(time.monotonic() + delay, next(self._order), callback, self)
            heapq.heappush(self._heap, alarm)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, daemon=True,
                                                name="qwen-nb-alarms")
                self._thread.start()
            elif self._heap[0] is alarm:
                self._condition.notify()  # the thread sleeps until a later deadline
        return alarm

    def cancel(self, alarm: Alarm) -> None:
        with self._condition:
            if alarm.callback is None:
                return
            alarm.callback = None  # stays in the heap until popped or compacted
            self._cancelled += 1
            if self._cancelled > _COMPACT_AFTER and self._cancelled * 2 > len(self._heap):
                self._heap = [entry for entry in self._heap if entry.callback is not None]
                heapq.heapify(self._heap)
                self._cancelled = 0

    def _run(self) -> None:
        while True:
            with self._condition:
                callback = self._next_due()
            try:
                callback()
            except Exception:  # noqa: S110 - one failing alarm must not stop the others
                pass

    def _next_due(self) -> Callable[[], object]:
        """Wait (holding the condition) for the earliest live alarm to fall due; pop it."""
        while True:
            heap = self._heap
            while heap and heap[0].callback is None:
                heapq.heappop(heap)
                self._cancelled -= 1
            if not heap:
                self._condition.wait()
                continue
            wait = heap[0].deadline - time.monotonic()
            if wait > 0:
                self._condition.wait(wait)
                continue
            alarm = heapq.heappop(heap)
            callback, alarm.callback = alarm.callback, None
            assert callback is not None
            return callback


class Helpers:
    """Runs jobs on daemon threads, reusing idle ones and starting one when none is idle
    (a job may block for as long as a read timeout; it never holds up the next one)."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._jobs: queue.SimpleQueue[Callable[[], object]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0
        self._threads = 0

    @property
    def busy(self) -> int:
        """Jobs submitted and not finished yet."""
        with self._lock:
            return self._threads - self._idle

    def submit(self, job: Callable[[], object]) -> None:
        with self._lock:
            start = self._idle == 0
            if start:
                self._threads += 1
            else:
                self._idle -= 1
        self._jobs.put(job)
        if start:
            threading.Thread(target=self._work, daemon=True, name=self._name).start()

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                job()
            except Exception:  # noqa: S110 - the job's own business; the thread carries on
                pass
            with self._lock:
                self._idle += 1


alarms = Alarms()
helpers = Helpers("qwen-nb-release")


def _after_fork_in_child() -> None:
    global alarms, helpers
    alarms, helpers = Alarms(), Helpers("qwen-nb-release")


os.register_at_fork(after_in_child=_after_fork_in_child)
