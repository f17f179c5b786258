"""Bounded memory and CPU against hostile servers (issue 11 §3): caps that keep the partial
reply, gzip bombs, endless lines, trickling and silent servers, --max-time, and a batch that
one huge Retry-After must not stall. Every server here is local and started by the tests."""

from __future__ import annotations

import threading
import tracemalloc
import zlib

import pytest
from fake_server import Reply
from hostile import chunk, events, gzip_bomb
from support import run_cell

import qwen_nb
from qwen_nb import api
from qwen_nb._config import resolve_settings
from qwen_nb._errors import APIError, APITimeoutError, QwenError, RateLimitError, StreamError
from qwen_nb.render import details_rows

MB = 1_000_000


def run(*, stream: bool = True, **settings):
    """One call through the shared request path: the response, or the error it raised."""
    request = api.build_request(["hello"], model="qwen3-vl-32b-thinking",
                                options=api.make_options(stream=stream))
    try:
        return api.run(request, resolve_settings(max_attempts=1, **settings))
    except QwenError as error:
        return error


def peak_memory(action):
    """(result, peak bytes allocated while `action` ran)."""
    tracemalloc.start()
    try:
        result = action()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


# --- size caps -----------------------------------------------------------------------------


def test_a_gzip_bomb_json_body_stops_at_the_body_cap(server):
    """1 MB on the wire, 1 GB inflated: read up to the 32 MB cap, never more."""
    server.queue(Reply(raw=gzip_bomb(), raw_content_type="application/json",
                       headers={"Content-Encoding": "gzip"}))
    error, peak = peak_memory(lambda: run(stream=False))
    assert isinstance(error, StreamError), error
    assert "larger than 32 MB" in error.message and "QWEN_NB_MAX_BODY_MB" in error.message
    assert peak < 150 * MB, f"{peak / MB:.0f} MB held while reading a gzip bomb"


def test_a_gzip_bomb_stream_stops_at_the_line_cap_keeping_the_partial(server):
    bomb = gzip_bomb(1 << 30, fill=b"a")
    # The stream first brings a real answer, then the bomb (one endless line of "a").
    prefix = zlib.compressobj(9, zlib.DEFLATED, 31)
    opening = prefix.compress(events(chunk({"content": "partial answer"}), done=False)
                              + b"data: ") + prefix.flush(zlib.Z_SYNC_FLUSH)
    # Two gzip members: the prefix, then the bomb (a decoder must not stop at the first).
    server.queue(Reply(raw=opening + prefix.flush() + bomb,
                       headers={"Content-Encoding": "gzip"}))
    error, peak = peak_memory(lambda: run(max_line_mb=2))
    assert isinstance(error, StreamError), error
    assert "longer than 2 MB" in error.message
    assert error.response.answer == "partial answer"
    assert peak < 100 * MB


def test_an_endless_sse_line_fails_at_the_default_cap_without_reading_it_all(server):
    sent = [0]

    def endless():
        yield events(chunk({"content": "kept"}), done=False) + b"data: "
        for _ in range(40 * 16):  # 40 MB if nobody stops reading
            sent[0] += 1
            yield b"x" * 65536

    server.queue(Reply(raw=endless))
    error, peak = peak_memory(lambda: run())
    assert isinstance(error, StreamError), error
    assert "longer than 16 MB" in error.message and "QWEN_NB_MAX_LINE_MB" in error.message
    assert error.response.answer == "kept" and not error.response.complete
    assert peak < 80 * MB


def test_total_reply_text_is_capped_and_the_partial_kept(server):
    body = events(*[chunk({"content": "y" * 1000}) for _ in range(300)], chunk(finish="stop"))
    server.queue(Reply(raw=body))
    error = run(max_reply_mb=0.1)
    assert isinstance(error, StreamError), error
    assert "passed 0.1 MB of text" in error.message and "max_reply_mb" in error.message
    assert 100_000 <= len(error.response.answer) < 200_000


def test_the_reply_cap_resolves_like_every_setting():
    assert resolve_settings(env={}).max_reply_chars == 8 * MB
    assert resolve_settings(env={"QWEN_NB_MAX_REPLY_MB": "2"}).max_reply_chars == 2 * MB
    assert resolve_settings(env={}, config={"max_reply_mb": 3}).max_reply_chars == 3 * MB
    assert resolve_settings(max_reply_mb=1, env={"QWEN_NB_MAX_REPLY_MB": "2"}
                            ).max_reply_chars == MB
    assert resolve_settings(env={}).max_line_chars == 16 * MB
    assert resolve_settings(env={}).max_body_bytes == 32 * MB


def test_an_error_body_is_read_only_to_64_kb(server):
    server.queue(Reply(status=500, raw=lambda: (b"<html>" + b"x" * 65536 for _ in range(800)),
                       raw_content_type="text/html"))
    error, peak = peak_memory(lambda: run())
    assert isinstance(error, APIError) and error.status_code == 500
    assert len(error.message) < 600
    assert peak < 20 * MB  # 50 MB were offered


# --- time -----------------------------------------------------------------------------------


def test_max_time_ends_a_server_trickling_one_byte_at_a_time(server):
    def trickle():
        yield events(chunk({"content": "so far"}), done=False)
        for _ in range(600):
            yield b":"  # a comment byte: never silent long enough for --timeout

    server.queue(Reply(raw=trickle, piece_delay=0.05))
    error = run(max_time=1.0, timeout=30)
    assert isinstance(error, APITimeoutError) and error.kind == "total", error
    assert "--max-time" in error.message and "QWEN_NB_MAX_TIME" in error.message
    assert error.response.answer == "so far" and not error.response.complete


def test_max_time_wakes_a_read_waiting_on_a_silent_server(server):
    # Without a watchdog the read would wait 20 s and then get a complete reply.
    pieces = [events(chunk({"content": "early"}), done=False),
              events(chunk(finish="stop"))]
    server.queue(Reply(raw=pieces, piece_delay=20))
    error = run(max_time=1.0, timeout=60)
    assert isinstance(error, APITimeoutError) and error.kind == "total", error
    assert error.response.answer == "early"


def test_max_time_option_of_the_magic_reaches_the_call(ip, server):
    def trickle():
        yield events(chunk({"content": "partial"}), done=False)
        for _ in range(400):
            yield b":"

    server.queue(Reply(raw=trickle, piece_delay=0.05))
    result = run_cell(ip, "%%qwen --max-time 1\nhello")
    assert isinstance(result.error_in_exec, APITimeoutError), result.error_in_exec
    assert "--max-time (1 s)" in result.error_in_exec.message
    assert ip.user_ns["_qwen"].answer == "partial"


def test_max_time_resolves_from_env_config_and_arguments():
    assert resolve_settings(env={}).max_time == 1800
    assert resolve_settings(env={"QWEN_NB_MAX_TIME": "5"}).max_time == 5
    assert resolve_settings(env={}, config={"max_time": 7}).max_time == 7
    assert resolve_settings(max_time=2, env={"QWEN_NB_MAX_TIME": "5"}).max_time == 2
    with pytest.raises(QwenError, match="max_time must be a positive"):
        resolve_settings(max_time=0, env={})
    with pytest.raises(QwenError, match="Unknown option"):
        qwen_nb.ask("hi", max_tme=3)


# --- batch and Retry-After -------------------------------------------------------------------


def test_a_huge_retry_after_fails_its_item_and_does_not_pause_the_batch(server):
    server.queue(Reply(status=429, headers={"Retry-After": "99999"},
                       error_body={"error": {"message": "slow down"}}))
    server.default_reply = Reply(answer="fine")
    box: dict = {}

    def work():
        box["result"] = qwen_nb.batch(["first", "second", "third"], concurrency=1,
                                      max_retry_time=5, progress=False)

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    worker.join(120)  # a stalled batch waits 99,999 s: this bound only turns a hang into a failure
    assert not worker.is_alive(), "one Retry-After: 99999 stalled the whole batch"
    result = box["result"]
    assert [item.status for item in result] == ["failed", "ok", "ok"]
    assert result.rate_limit_pauses == 0
    # The same message ask() gives for the same reply.
    server.queue(Reply(status=429, headers={"Retry-After": "99999"},
                       error_body={"error": {"message": "slow down"}}))
    with pytest.raises(RateLimitError) as caught:
        qwen_nb.ask("first", max_retry_time=5)
    assert str(result[0].error) == str(caught.value)
    assert "longer than the 5 s left of max_retry_time" in str(caught.value)


def test_a_short_retry_after_still_pauses_every_worker_once(server):
    server.queue(Reply(status=429, headers={"Retry-After": "0.2"}))
    server.default_reply = Reply(answer="fine")
    result = qwen_nb.batch(["a", "b"], concurrency=2, max_retry_time=5, progress=False)
    assert [item.status for item in result] == ["ok", "ok"]
    assert result.rate_limit_pauses == 1


def test_details_say_when_the_reply_ended_after_the_finish(server):
    server.queue(Reply(stall_before_done=30))
    response = run(timeout=0.5)
    assert not isinstance(response, QwenError), response
    assert response.complete and response.answer
    notes = [value for label, value in details_rows(response) if label == "Note"]
    assert any("silent after the finish reason" in note for note in notes)
