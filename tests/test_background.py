"""The transport's long-lived helper threads: one alarm thread keeps every deadline (in
order, cancellations honoured, cancelled ones not piling up), finished helpers are reused,
and a call to the local server starts no thread of its own."""

from __future__ import annotations

import threading
import time

from qwen_nb import _background, api
from qwen_nb._background import Alarms, Helpers
from qwen_nb._config import resolve_settings


def _wait_idle(helpers: Helpers) -> None:
    deadline = time.monotonic() + 10
    while helpers.busy and time.monotonic() < deadline:
        time.sleep(0.005)
    assert not helpers.busy


def test_alarms_fire_in_deadline_order_and_cancelled_ones_never():
    alarms = Alarms()
    fired: list[str] = []
    done = threading.Event()

    def note(name: str):
        def callback() -> None:
            fired.append(name)
            if len(fired) == 3:
                done.set()
        return callback

    alarms.call_after(0.30, note("third"))
    alarms.call_after(0.10, note("first"))
    alarms.call_after(0.05, note("cancelled")).cancel()
    alarms.call_after(0.20, note("second"))
    started = time.monotonic()
    assert done.wait(5)
    assert fired == ["first", "second", "third"]
    assert time.monotonic() - started >= 0.29


def test_an_earlier_alarm_set_later_wakes_the_sleeping_thread():
    alarms = Alarms()
    early = threading.Event()
    alarms.call_after(3600, lambda: None)  # the thread now sleeps for an hour
    alarms.call_after(0.05, early.set)
    assert early.wait(5)


def test_a_failing_alarm_does_not_stop_the_others():
    alarms = Alarms()
    after = threading.Event()
    alarms.call_after(0.01, lambda: 1 / 0)
    alarms.call_after(0.05, after.set)
    assert after.wait(5)


def test_cancelled_alarms_do_not_wait_for_their_deadline_in_memory():
    alarms = Alarms()
    for _ in range(10_000):  # as a long batch cancels each call's 30-minute --max-time
        alarms.call_after(1800, lambda: None).cancel()
    assert len(alarms._heap) < 200


def test_idle_helpers_are_reused():
    helpers = Helpers("test-helper")
    names: list[str] = []
    for _ in range(5):
        finished = threading.Event()
        helpers.submit(lambda f=finished: (names.append(threading.current_thread().name),
                                           f.set()))
        assert finished.wait(5)
        _wait_idle(helpers)
    assert len({id(t) for t in threading.enumerate() if t.name == "test-helper"}) == 1
    assert names == ["test-helper"] * 5


def test_a_blocked_helper_does_not_hold_up_the_next_job():
    helpers = Helpers("test-blocked")
    release, second = threading.Event(), threading.Event()
    helpers.submit(lambda: release.wait(10))
    helpers.submit(second.set)
    assert second.wait(5)
    release.set()


def test_calls_start_no_thread_each(server, monkeypatch):
    settings = resolve_settings(max_attempts=1)
    request = api.build_request(["hello"], model="qwen3-vl-32b-thinking")
    api.run(request, settings)  # the first call may start the alarm and a helper thread
    _wait_idle(_background.helpers)
    started: list[str] = []
    original = threading.Thread.start

    def counting_start(thread: threading.Thread) -> None:
        started.append(thread.name)
        original(thread)

    monkeypatch.setattr(threading.Thread, "start", counting_start)
    for _ in range(10):
        assert api.run(request, settings).complete
        _wait_idle(_background.helpers)  # the connection is released before the next call
    monkeypatch.undo()
    # A threading.Timer for --max-time and a thread to release the connection, per call,
    # made this 20.
    assert len(started) <= 2, started
