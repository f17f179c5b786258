"""Fault injection against the local server: retries, timeouts, broken streams, provider
errors, finish reasons, interrupts. Each test fails without the behaviour it names."""

from __future__ import annotations

import email.utils
import os
import signal
import socket
import threading
import time
from pathlib import Path

import pytest
from fake_server import Reply
from IPython.utils.capture import capture_output
from support import FAKE_KEY, run_cell

from qwen_nb import api
from qwen_nb._config import resolve_settings
from qwen_nb._errors import (
    APIConnectionError,
    APITimeoutError,
    BadRequestError,
    Interrupted,
    QwenError,
    RateLimitError,
    ServerError,
    StreamError,
)
from qwen_nb.client import ResponseStream, parse_retry_after, retry_delay
from qwen_nb.render import details_rows, static_bundle, status_message

THINKING = "Step one: look at it. Step two: think harder. Step three: decide."
ANSWER = "The answer is **forty-two**, give or take."


def make_settings(**overrides):
    """Settings from the environment the `server` fixture set, plus `overrides`."""
    return resolve_settings(**overrides)


def make_request(text: str = "hello", **options):
    return api.build_request([text], model="qwen3-vl-32b-thinking",
                             options=api.make_options(**options))


def call(**overrides):
    """One call through the shared request path; returns the response or the error."""
    try:
        return api.run(make_request(), make_settings(**overrides))
    except QwenError as error:
        return error


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- retries ---------------------------------------------------------------------------


def test_429_and_5xx_are_retried_and_the_result_says_how_many_attempts(server):
    server.queue(Reply(status=429, headers={"Retry-After": "0"}),
                 Reply(status=503, error_body={"error": {"message": "overloaded"}}),
                 Reply(thinking=THINKING, answer=ANSWER))
    response = call(max_attempts=4)
    assert response.answer == ANSWER and response.complete
    assert len(server.requests) == 3
    assert response.attempts == 3
    assert ("Attempts", "3") in details_rows(response)
    assert "Attempts" in static_bundle(response)[0]["text/html"]


def test_retries_stop_at_max_attempts_and_the_error_says_so(server):
    server.default_reply = Reply(status=503, headers={"Retry-After": "0"},
                                 error_body={"error": {"message": "try later"}})
    error = call(max_attempts=3)
    assert isinstance(error, ServerError)
    assert len(server.requests) == 3
    assert "after 3 attempts" in error.message and "try later" in error.message
    assert error.response is not None and error.response.attempts == 3
    assert not error.response.complete


def test_one_attempt_means_no_retry(server):
    server.default_reply = Reply(status=429, headers={"Retry-After": "0"})
    error = call(max_attempts=1)
    assert isinstance(error, RateLimitError)
    assert len(server.requests) == 1


def test_retry_after_seconds_is_honoured(server):
    server.queue(Reply(status=429, headers={"Retry-After": "1"}), Reply())
    response = call()
    assert response.complete and response.attempts == 2
    first, second = server.requests
    assert second.at - first.at >= 0.9  # waited as told (a lower bound only)


def test_retry_after_http_date_is_honoured(server):
    when = email.utils.formatdate(time.time() + 2.5, usegmt=True)
    server.queue(Reply(status=503, headers={"Retry-After": when}), Reply())
    response = call()
    assert response.complete and response.attempts == 2
    first, second = server.requests
    assert second.at - first.at >= 1.0  # the date has whole-second resolution


def test_retry_after_longer_than_the_time_budget_gives_up_at_once(server):
    server.default_reply = Reply(status=429, headers={"Retry-After": "3600"},
                                 error_body={"error": {"message": "slow down"}})
    error = call(max_retry_time=30)
    assert isinstance(error, RateLimitError)
    assert len(server.requests) == 1
    assert "3600 s" in error.message and "max_retry_time" in error.message


def test_total_retry_time_bounds_the_retries(server):
    server.default_reply = Reply(status=503, headers={"Retry-After": "0.4"})
    error = call(max_attempts=50, max_retry_time=1.0)
    assert isinstance(error, ServerError)
    assert 2 <= len(server.requests) <= 4


def test_parse_retry_after_reads_seconds_and_http_dates_and_ignores_junk():
    now = 1_767_000_000.0
    assert parse_retry_after("7", now=now) == 7
    assert parse_retry_after("1.5", now=now) == 1.5
    assert parse_retry_after("-3", now=now) == 0
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert parse_retry_after(date, now=now) == pytest.approx(30, abs=1)
    assert parse_retry_after(email.utils.formatdate(now + 30).replace("+0000", "-0000"),
                             now=now) == pytest.approx(30, abs=1)
    for junk in (None, "", "  ", "soon", "nan", "Wed, 99 Foo 2015 07:28:00 GMT"):
        assert parse_retry_after(junk, now=now) is None
    # Without a usable Retry-After: exponential backoff with jitter, capped.
    delays = [retry_delay(attempt, "soon") for attempt in (1, 2, 3, 10) for _ in range(50)]
    assert all(0 <= d <= 20 for d in delays)
    assert max(retry_delay(1, None) for _ in range(200)) <= 0.5
    assert len({round(retry_delay(3, None), 6) for _ in range(20)}) > 1  # jittered


def test_connection_refused_is_retried_then_reported(server, monkeypatch):
    port = free_port()  # nothing listens there now
    monkeypatch.setenv("QWEN_NB_BASE_URL", f"http://127.0.0.1:{port}/v1")
    error = call(max_attempts=3, max_retry_time=30)
    assert isinstance(error, APIConnectionError)
    assert "tried 3 times" in error.message and f"127.0.0.1:{port}" in error.message
    assert error.response.attempts == 3


@pytest.mark.parametrize("fault", ["close_before_response", "reset_before_response"])
def test_connection_closed_or_reset_before_the_first_byte_is_retried(server, fault):
    server.queue(Reply(**{fault: True}), Reply(thinking=THINKING, answer=ANSWER))
    response = call()
    assert response.answer == ANSWER and response.attempts == 2
    assert len(server.requests) == 2


@pytest.mark.parametrize("fault", [dict(cut_after=6), dict(malformed_at=6),
                                   dict(error_event_at=6), dict(stall_after=6,
                                                                stall_seconds=3)])
def test_never_retried_once_the_reply_started(server, fault):
    server.default_reply = Reply(thinking=THINKING, answer=ANSWER, chunk_chars=4, **fault)
    error = call(timeout=0.5, max_attempts=5)
    assert isinstance(error, QwenError)
    assert len(server.requests) == 1
    assert error.response.thinking == THINKING[:20]  # 5 thinking deltas of 4 characters
    assert error.response.attempts == 1


def test_thinking_budget_unknown_to_the_provider_is_dropped_with_a_note(server):
    server.queue(Reply(status=400, error_body={"error": {
        "message": "Unrecognized request argument supplied: thinking_budget"}}), Reply())
    response = api.run(make_request(thinking_budget=256), make_settings())
    assert response.complete
    first, second = server.requests
    assert first.json["thinking_budget"] == 256 and "thinking_budget" not in second.json
    assert any("thinking_budget" in note for note in response.notes)
    assert any(label == "Note" and "thinking_budget" in value
               for label, value in details_rows(response))


def test_a_bad_thinking_budget_value_is_reported_not_silently_dropped(server):
    server.queue(Reply(status=400, error_body={"error": {
        "message": "thinking_budget must be less than max_tokens"}}), Reply())
    with pytest.raises(BadRequestError, match="thinking_budget must be less"):
        api.run(make_request(thinking_budget=99999, max_tokens=10), make_settings())
    assert len(server.requests) == 1


def test_keyboard_interrupt_during_the_backoff_sleep_stops_cleanly(server):
    server.default_reply = Reply(status=503, headers={"Retry-After": "30"})
    stream = ResponseStream(make_request(), make_settings(max_retry_time=120))

    def interrupt_once_the_first_attempt_failed() -> None:
        deadline = time.monotonic() + 30
        while not server.requests and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.3)  # now in the 30 s backoff wait
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)

    threading.Thread(target=interrupt_once_the_first_attempt_failed, daemon=True).start()
    with pytest.raises(Interrupted) as caught:
        list(stream)
    assert "waiting to retry" in caught.value.message
    assert caught.value.response is not None and caught.value.response.attempts == 1
    assert len(server.requests) == 1


def test_close_from_another_thread_during_the_backoff_stops_it(server):
    server.default_reply = Reply(status=503, headers={"Retry-After": "30"})
    stream = ResponseStream(make_request(), make_settings(max_retry_time=120))

    def stop_soon() -> None:
        deadline = time.monotonic() + 30
        while not server.requests and time.monotonic() < deadline:
            time.sleep(0.02)
        stream.close()

    threading.Thread(target=stop_soon, daemon=True).start()
    with pytest.raises(Interrupted):
        list(stream)
    assert len(server.requests) == 1


# --- timeouts --------------------------------------------------------------------------


@pytest.fixture
def unaccepting_port():
    """A port whose listener never accepts and whose backlog is full: SYNs go unanswered,
    so connecting times out (reliably, on loopback)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(8):
        filler = socket.socket()
        filler.setblocking(False)
        try:
            filler.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        fillers.append(filler)
    time.sleep(0.2)
    yield port
    for sock in (*fillers, listener):
        sock.close()


def test_connect_timeout_fires_and_says_it_was_the_connect_timeout(server, monkeypatch,
                                                                   unaccepting_port):
    monkeypatch.setenv("QWEN_NB_BASE_URL", f"http://127.0.0.1:{unaccepting_port}/v1")
    monkeypatch.setenv("QWEN_NB_CONNECT_TIMEOUT", "0.5")
    error = call(max_attempts=2)
    assert isinstance(error, APITimeoutError) and error.kind == "connect"
    assert error.message.startswith("Connect timeout")
    assert "0.5 s" in error.message and "--connect-timeout" in error.message
    assert "tried 2 times" in error.message  # nothing was sent, so it is retried


def test_read_stall_between_chunks_fires_the_read_timeout_and_keeps_the_partial(server,
                                                                                monkeypatch):
    monkeypatch.setenv("QWEN_NB_TIMEOUT", "0.5")
    server.queue(Reply(thinking=THINKING, answer=ANSWER, chunk_chars=4, stall_after=6,
                       stall_seconds=3))
    error = call()
    assert isinstance(error, APITimeoutError) and error.kind == "read"
    assert error.message.startswith("Read timeout") and "between chunks" in error.message
    assert "--timeout" in error.message and "QWEN_NB_TIMEOUT" in error.message
    assert error.response.thinking == THINKING[:20] and not error.response.complete


def test_silence_before_the_first_byte_is_a_read_timeout_and_not_retried(server):
    server.queue(Reply(delay_first_byte=3), Reply())
    error = call(timeout=0.5)
    assert isinstance(error, APITimeoutError) and error.kind == "read"
    assert len(server.requests) == 1


def test_timeouts_and_retry_limits_come_from_args_env_and_config(monkeypatch, server):
    monkeypatch.setenv("QWEN_NB_TIMEOUT", "33")
    monkeypatch.setenv("QWEN_NB_CONNECT_TIMEOUT", "4")
    monkeypatch.setenv("QWEN_NB_MAX_ATTEMPTS", "7")
    monkeypatch.setenv("QWEN_NB_MAX_RETRY_TIME", "12")
    settings = resolve_settings()
    assert (settings.read_timeout, settings.connect_timeout, settings.max_attempts,
            settings.max_retry_time) == (33, 4, 7, 12)
    settings = resolve_settings(timeout=5, connect_timeout=1, max_attempts=2, max_retry_time=3)
    assert (settings.read_timeout, settings.connect_timeout, settings.max_attempts,
            settings.max_retry_time) == (5, 1, 2, 3)
    for name in ("QWEN_NB_TIMEOUT", "QWEN_NB_CONNECT_TIMEOUT", "QWEN_NB_MAX_ATTEMPTS",
                 "QWEN_NB_MAX_RETRY_TIME"):
        monkeypatch.delenv(name)
    settings = resolve_settings(config={"timeout": 9, "connect_timeout": 2, "max_attempts": 3,
                                        "max_retry_time": 8})
    assert (settings.read_timeout, settings.connect_timeout, settings.max_attempts,
            settings.max_retry_time) == (9, 2, 3, 8)


def test_magic_options_and_traitlets_set_attempts_and_timeouts(ip, server):
    server.default_reply = Reply(status=503, headers={"Retry-After": "0"})
    result = run_cell(ip, "%%qwen --max-attempts 2 --timeout 5 --connect-timeout 1\nhello")
    assert isinstance(result.error_in_exec, ServerError)
    assert len(server.requests) == 2
    assert ip.user_ns["_qwen"].attempts == 2
    server.requests.clear()
    ip.run_line_magic("config", "QwenMagics.max_attempts = 3")
    try:
        result = run_cell(ip, "%%qwen\nhello")
    finally:
        ip.run_line_magic("config", "QwenMagics.max_attempts = 0")
    assert isinstance(result.error_in_exec, ServerError)
    assert len(server.requests) == 3


# --- streams that break ----------------------------------------------------------------

BROKEN = {
    "cut": (dict(cut_after=6), "broke mid-stream"),
    "malformed": (dict(malformed_at=6), "malformed chunk"),
    "error event": (dict(error_event_at=6), "The model crashed mid-stream"),
    "no end": (dict(finish_reason=None, send_done=False, cut_after=None), "ended before"),
}


@pytest.mark.parametrize("name", list(BROKEN))
def test_broken_stream_keeps_the_partial_reply_marked_incomplete(server, name):
    fault, words = BROKEN[name]
    thinking_chunks = 6 if name != "no end" else 100
    server.queue(Reply(thinking=THINKING, answer=ANSWER, chunk_chars=4, **fault))
    error = call()
    assert isinstance(error, StreamError)
    assert words in error.message
    partial = error.response
    assert partial.complete is False and words in partial.error
    if name == "no end":
        assert partial.thinking == THINKING and partial.answer == ANSWER
    else:
        assert partial.thinking == THINKING[: 4 * (thinking_chunks - 1)]
    data, metadata = static_bundle(partial)
    assert "Incomplete reply" in data["text/html"] and words in data["text/html"]
    assert "Incomplete reply" in data["text/markdown"]
    assert "Incomplete reply" in data["text/plain"]
    assert metadata["qwen_nb"]["complete"] is False


def test_cut_after_the_finish_reason_still_counts_as_complete(server):
    chunks = 2 + len(THINKING) // 8 + 1 + len(ANSWER) // 8 + 1  # role, deltas, finish
    server.queue(Reply(thinking=THINKING, answer=ANSWER, cut_after=chunks))
    response = call()
    assert response.complete and response.answer == ANSWER
    assert any("usage may be missing" in note for note in response.notes)


@pytest.mark.parametrize("name", ["cut", "error event"])
def test_broken_stream_in_the_magic_fails_the_cell_shortly_and_shows_the_partial(
        ip, server, capsys, name):
    from qwen_nb.frontend.live import LiveView

    fault, words = BROKEN[name]
    server.queue(Reply(thinking=THINKING, answer=ANSWER, chunk_chars=4, **fault))
    with capture_output() as captured:
        result = run_cell(ip, "%%qwen\nhello")
    error = result.error_in_exec
    assert isinstance(error, StreamError)
    assert ip.user_ns["_qwen"].complete is False
    assert ip.user_ns["_qwen"].thinking == THINKING[:20]
    shown = captured.stdout + captured.stderr + capsys.readouterr().out
    assert "StreamError" in shown and words in shown
    assert "Traceback" not in shown and "httpx" not in shown and "File " not in shown
    # In a notebook the live view ends as the static bundle, with the warning.
    server.queue(Reply(thinking=THINKING, answer=ANSWER, chunk_chars=4, **fault))
    with capture_output() as captured:
        with pytest.raises(StreamError):
            api.run(make_request(), make_settings(), LiveView())
    final = captured.outputs[-1].data
    assert "Incomplete reply" in final["text/html"] and THINKING[:20] in final["text/html"]


# --- how the reply ended ---------------------------------------------------------------


def test_finish_reason_length_says_cut_at_the_limit_thinking_tokens_and_the_option(server):
    usage = {"prompt_tokens": 50, "completion_tokens": 1000, "total_tokens": 1050,
             "completion_tokens_details": {"reasoning_tokens": 940}}
    server.queue(Reply(thinking=THINKING, answer="The answer is", finish_reason="length",
                       usage=usage))
    response = call()
    assert response.complete and response.finish_reason == "length"
    message = status_message(response)
    assert "token limit" in message and "940" in message and "--max-tokens" in message
    data, _ = static_bundle(response)
    for mime in ("text/html", "text/markdown", "text/plain"):
        assert "token limit" in data[mime] and "940" in data[mime]


def test_content_filter_is_shown_as_such(server):
    server.queue(Reply(thinking="", answer="", finish_reason="content_filter"))
    response = call()
    assert "content filter" in status_message(response)
    assert "content filter" in static_bundle(response)[0]["text/html"]


@pytest.mark.parametrize("stream", [True, False])
def test_a_refusal_is_captured_and_shown_as_a_refusal(server, stream):
    server.queue(Reply(thinking="", answer="", refusal="I can't help with that request."))
    response = api.run(make_request(stream=stream), make_settings())
    assert response.refusal == "I can't help with that request."
    assert response.answer == ""
    assert "refused" in status_message(response)
    html_text = static_bundle(response)[0]["text/html"]
    assert "Refused:" in html_text and "help with that request" in html_text
    assert "(no answer)" not in html_text


# --- provider error bodies -------------------------------------------------------------


@pytest.mark.parametrize("status, body, headers, words, request_id", [
    (400, {"error": {"message": "Image too large", "type": "invalid_request_error"}},
     {"x-request-id": "req-openai-7"}, "Image too large", "req-openai-7"),
    (400, {"message": "Model not available for your plan", "statusCode": 400,
           "requestId": "aiml-req-42"}, {}, "Model not available for your plan",
     "aiml-req-42"),
    (401, {"message": "Invalid API key", "statusCode": 401, "requestId": "aiml-401"}, {},
     "Invalid API key", "aiml-401"),
    (502, None, {}, "fail", None),
])
def test_provider_error_bodies_give_the_providers_message_and_request_id(
        server, status, body, headers, words, request_id):
    server.default_reply = Reply(status=status, error_body=body, headers=headers)
    error = call(max_attempts=1)
    assert words in error.message
    assert error.status_code == status
    if request_id:
        assert f"request id {request_id}" in error.message
        assert error.request_id == request_id


def test_html_error_page_from_a_proxy_is_shortened(server):
    server.default_reply = Reply(status=502, error_body="<html>" + "x" * 5000 + "</html>")
    error = call(max_attempts=1)
    assert isinstance(error, ServerError) and len(error.message) < 600


# --- interrupt in a real kernel --------------------------------------------------------


@pytest.mark.kernel
def test_kernel_interrupt_closes_the_stream_keeps_the_partial_and_the_kernel_works(
        server, tmp_path):
    from jupyter_client.manager import start_new_kernel

    server.default_reply = Reply(thinking="thinking slowly " * 400, answer=ANSWER,
                                 chunk_chars=4, chunk_delay=0.02)
    env = {**os.environ, "QWEN_NB_BASE_URL": server.base_url, "QWEN_NB_API_KEY": FAKE_KEY,
           "PYTHONPATH": str(Path(__file__).parents[1])}
    km, kc = start_new_kernel(kernel_name="python3", env=env, cwd=str(tmp_path))
    try:
        kc.execute_interactive("%load_ext qwen_nb", timeout=60)
        # An earlier test's stream may still be closing on the shared server.
        deadline = time.monotonic() + 30
        while server.active_streams and time.monotonic() < deadline:
            time.sleep(0.05)
        outputs: list[dict] = []
        msg_id = kc.execute("%%qwen\nthink about it")
        deadline = time.monotonic() + 60
        while server.active_streams == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.active_streams == 1
        time.sleep(1.0)  # some thinking arrives
        km.interrupt_kernel()
        reply = kc.get_shell_msg(timeout=60)
        while reply["parent_header"].get("msg_id") != msg_id:
            reply = kc.get_shell_msg(timeout=60)
        while True:
            msg = kc.get_iopub_msg(timeout=30)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] in ("display_data", "update_display_data", "error"):
                outputs.append(msg)
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
        content = reply["content"]
        assert content["status"] == "error" and content["ename"] == "Interrupted"
        error_msgs = [m for m in outputs if m["msg_type"] == "error"]
        traceback_text = "\n".join(error_msgs[-1]["content"]["traceback"])
        assert "Interrupted" in traceback_text and "httpx" not in traceback_text
        assert len(error_msgs[-1]["content"]["traceback"]) == 1
        final = [m for m in outputs if m["msg_type"] == "update_display_data"][-1]
        html_text = final["content"]["data"]["text/html"]
        assert "Interrupted" in html_text and "thinking slowly" in html_text
        # The server sees the connection go away.
        deadline = time.monotonic() + 30
        while server.active_streams and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.active_streams == 0
        # The kernel is usable at once, and the partial is in _qwen.
        server.default_reply = Reply(thinking="quick", answer="done")
        after = kc.execute_interactive(
            "print(_qwen.complete, 'slowly' in _qwen.thinking); 6 * 7", timeout=60,
            output_hook=lambda msg: outputs.append(msg))
        assert after["content"]["status"] == "ok"
        printed = "".join(m["content"].get("text", "") for m in outputs
                          if m["msg_type"] == "stream")
        assert "False True" in printed
        again = kc.execute_interactive("%%qwen\nagain", timeout=60)
        assert again["content"]["status"] == "ok"
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)

