"""Core request path: behaviours found in a review, each failing without its fix."""

from __future__ import annotations

import threading

import httpx
import pytest
from fake_server import Reply
from support import run_cell

from qwen_nb import api
from qwen_nb._config import resolve_settings
from qwen_nb._errors import ConfigError
from qwen_nb._protocol import ChatAccumulator
from qwen_nb.client import ResponseStream


def _request(text: str = "hello", **options):
    return api.build_request([text], model="qwen3-vl-32b-thinking",
                             options=api.make_options(**options))


def test_close_after_the_body_was_read_leaves_the_pooled_connection_alone(server):
    # A non-streamed reply is read whole, which hands its keep-alive connection back to
    # the pool while the stream still yields its events. Stopping it then (the panel's
    # Stop, from another thread) must not shut down that socket: the next stream on the
    # pool is using it.
    with httpx.Client() as http:  # one pool with one connection: B reuses A's socket
        settings = resolve_settings()
        first = ResponseStream(_request(stream=False), settings, http=http)
        events = iter(first)
        next(events)  # body read; first is suspended mid-iteration
        hold = threading.Event()
        server.queue(Reply(hold_answer=hold))
        second = ResponseStream(_request(), settings, http=http)
        second_events = iter(second)
        next(second_events)  # mid-stream on the pooled connection
        stopper = threading.Thread(target=first.close)
        stopper.start()
        stopper.join(30)
        hold.set()
        rest = list(second_events)
        assert rest[-1].response.complete
        assert rest[-1].response.answer == Reply().answer


def test_one_line_magic_sends_the_prompt_as_written(ip, server):
    # Only the options are shell-split: an apostrophe used to fail the cell ("check the
    # quotes"), and quotes, "--" and double spaces were dropped from the prompt.
    ip.user_ns["count"] = 3
    result = run_cell(ip, """%qwen -t 0.5 What's "this"  -- really, {count} of them""")
    assert result.error_in_exec is None
    body = server.requests[-1].json
    assert body["messages"][-1]["content"] == """What's "this"  -- really, 3 of them"""
    assert body["temperature"] == 0.5
    run_cell(ip, """%qwen --max-tok 7 "Say 'hi'" """)  # one quoted word: quotes go, as before
    body = server.requests[-1].json
    assert body["messages"][-1]["content"] == "Say 'hi'" and body["max_tokens"] == 7


def test_a_base_url_with_an_unencodable_host_is_refused_before_sending(server):
    # "a..b" used to pass validation and fail at connect time with a bare UnicodeError
    # (a long traceback, not a QwenError).
    with pytest.raises(ConfigError, match="invalid host name"):
        api.ask("hi", base_url="http://a..b/v1", max_attempts=1)
    assert server.requests == []


def test_an_empty_usage_object_does_not_erase_the_usage_already_received(server):
    usage = {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}
    accumulator = ChatAccumulator()
    accumulator.handle_chunk({"choices": [], "usage": usage})
    accumulator.handle_chunk({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                              "usage": {}})
    assert accumulator.usage.prompt_tokens == 5 and accumulator.usage.total_tokens == 8


def test_an_unexpected_error_still_finishes_the_view_with_the_partial_reply(server):
    from qwen_nb._types import AnswerDelta

    class Recorder:
        failed = None

        def update(self, event):
            if isinstance(event, AnswerDelta):
                raise RuntimeError("a view bug")

        def fail(self, error):
            self.failed = error

    server.queue(Reply(thinking="kept thinking", answer="answer"))
    view = Recorder()
    request = api.build_request(["hi"], model="m")
    with pytest.raises(RuntimeError):
        api.run(request, resolve_settings(), view)
    assert view.failed is not None
    assert view.failed.response.thinking == "kept thinking"
    assert view.failed.response.complete is False


def test_aiml_cost_from_the_header_or_the_last_chunk_reaches_details(server):
    import qwen_nb
    from qwen_nb.render import details_rows

    server.queue(Reply(headers={"x-aimlapi-usd-spent": "0.00123"}))
    by_header = qwen_nb.ask("hi")
    assert by_header.usage.cost_usd == pytest.approx(0.00123)
    assert ("Cost", "$0.001230") in details_rows(by_header)
    server.queue(Reply(aiml_meta={"usage": {"credits_used": 5, "usd_spent": 0.0042}}))
    by_meta = qwen_nb.ask("hi")
    assert by_meta.usage.cost_usd == pytest.approx(0.0042)


def test_sequential_calls_reuse_one_connection(server):
    import time

    import qwen_nb
    from qwen_nb import _background

    before = server.connections
    for _ in range(4):
        assert qwen_nb.ask("hi").complete
        deadline = time.monotonic() + 10
        while _background.helpers.busy and time.monotonic() < deadline:
            time.sleep(0.01)
    # Without reading the body's end after [DONE], every call opened a new connection.
    assert server.connections - before <= 1
