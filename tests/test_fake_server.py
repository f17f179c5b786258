"""The test server itself: stopping it right after starting never hangs the suite."""

from __future__ import annotations

import threading

from fake_server import FakeServer


def test_a_server_stopped_before_its_thread_runs_still_stops():
    # Under load, a test that never connects can stop the server before its thread first
    # runs; that thread used to read the cleared attribute and die, and shutdown() then
    # waited forever (it hung CI in test_framing's redirect test).
    def cycle() -> None:
        for _ in range(300):
            with FakeServer():
                pass

    worker = threading.Thread(target=cycle, daemon=True)
    worker.start()
    worker.join(timeout=120)
    assert not worker.is_alive(), "FakeServer.stop() hung"
