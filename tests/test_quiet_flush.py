"""A throttled live view still shows the latest text when the stream pauses."""

from __future__ import annotations

import threading
import time

from fake_server import Reply

from qwen_nb import api
from qwen_nb._config import resolve_settings
from qwen_nb.frontend.live import LiveView


def wait_for(predicate, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_text_held_back_by_the_throttle_is_drawn_when_the_stream_pauses(server, monkeypatch):
    import comm
    from support import FrontEndMessages

    sent = FrontEndMessages()
    monkeypatch.setattr(comm, "create_comm", sent.comm_class())
    release = threading.Event()
    # The thinking arrives in a fast burst (most chunks fall inside the throttle interval),
    # then the server holds the reply before the answer.
    thinking = "".join(f"step {i}; " for i in range(40))
    server.queue(Reply(thinking=thinking, answer="done", chunk_chars=3, hold_answer=release))
    view = LiveView(max_rate=2)  # at most one draw per 0.5 s: the burst is mostly skipped
    request = api.build_request(["hi"], model="m")
    stream = api.open_stream(request, resolve_settings())
    events = iter(stream)
    try:
        # Feed events by hand until the last thinking chunk; the server then holds.
        received = ""
        while received != thinking:
            event = next(events)
            view.update(event)
            received += getattr(event, "text", "") if event.type == "thinking" else ""
        # The last chunks came inside the throttle interval; only the quiet flush can
        # draw them while the stream is silent.
        assert wait_for(lambda: sent.thinking() == thinking), sent.thinking()[-200:]
    finally:
        release.set()
        for event in events:
            view.update(event)
        stream.close()
