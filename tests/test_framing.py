"""Exact thinking and answer on real framing (issue 11 §4), through the real client against
local servers that send the bytes real providers (and broken proxies) send."""

from __future__ import annotations

import json
import os

import pytest
from fake_server import FakeServer, Reply
from hostile import chunk, events
from support import FAKE_KEY

import qwen_nb
from qwen_nb import api
from qwen_nb._config import resolve_settings
from qwen_nb._errors import (
    APIError,
    BadRequestError,
    ConfigError,
    QwenError,
    StreamError,
)
from qwen_nb._types import AnswerDelta, Finished, ThinkingDelta
from qwen_nb.render import details_rows, static_bundle

TRICKY = "Write </think> to close and <think> to open; e.g. <think>x</think>."


def run(*, stream: bool = True, model: str = "qwen3-vl-32b-thinking", thinking_budget=None,
        **settings):
    request = api.build_request(["hello"], model=model, options=api.make_options(
        stream=stream, thinking_budget=thinking_budget))
    try:
        return api.run(request, resolve_settings(**{"max_attempts": 1, **settings}))
    except QwenError as error:
        return error


def streamed(prompt: str = "hello"):
    """(answer deltas joined, thinking deltas joined, final response) from qwen_nb.stream."""
    answer, thinking, final = [], [], None
    for event in qwen_nb.stream(prompt):
        if isinstance(event, AnswerDelta):
            answer.append(event.text)
        elif isinstance(event, ThinkingDelta):
            thinking.append(event.text)
        elif isinstance(event, Finished):
            final = event.response
    return "".join(answer), "".join(thinking), final


# --- a reasoning field makes the content the answer, byte for byte ----------------------------


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
@pytest.mark.parametrize("answer", [TRICKY, "<think>starts like a tag</think> but is the answer",
                                    "\n\nleading newlines kept"])
def test_with_a_reasoning_field_tags_in_the_content_are_text(server, field, answer):
    server.queue(Reply(thinking="I reason.", answer=answer, style=field, chunk_chars=5))
    got_answer, got_thinking, final = streamed()
    assert final.answer == answer and final.thinking == "I reason."
    assert got_answer == answer and got_thinking == "I reason."


def test_the_same_rule_for_a_non_streamed_message(server):
    server.queue(Reply(thinking="I reason.", answer=TRICKY, style="reasoning_content"))
    response = run(stream=False)
    assert (response.answer, response.thinking) == (TRICKY, "I reason.")


def test_reasoning_given_as_an_object_is_read(server):
    body = events(chunk({"reasoning_content": {"text": "object thinking"}}),
                  chunk({"reasoning": [{"type": "text", "text": " and a list"}]}),
                  chunk({"content": "the answer"}), chunk(finish="stop"))
    server.queue(Reply(raw=body))
    response = run()
    assert response.thinking == "object thinking and a list"
    assert response.answer == "the answer"


# --- stream() deltas are the final texts ----------------------------------------------------


def test_a_plain_reply_from_a_thinking_model_streams_as_the_answer(server):
    body = events(chunk({"content": "Just an "}), chunk({"content": "answer."}),
                  chunk(finish="stop"))
    server.queue(Reply(raw=body))
    answer, thinking, final = streamed()
    assert final.answer == "Just an answer." and final.thinking == ""
    assert answer == final.answer and thinking == ""


def test_a_close_tag_only_reply_streams_thinking_then_answer(server):
    server.queue(Reply(thinking="First I look.\nThen I decide.", answer="A cat.",
                       style="think_close_only", chunk_chars=3))
    answer, thinking, final = streamed()
    assert (final.thinking, final.answer) == ("First I look.\nThen I decide.", "A cat.")
    assert (thinking, answer) == (final.thinking, final.answer)


def test_a_model_not_named_thinking_keeps_a_bare_close_tag_as_text(server):
    body = events(chunk({"content": "x</think>y"}), chunk(finish="stop"))
    server.queue(Reply(raw=body))
    response = run(model="plain-model")
    assert (response.answer, response.thinking) == ("x</think>y", "")


# --- SSE framing ----------------------------------------------------------------------------


def test_a_leading_bom_does_not_lose_the_first_event(server):
    body = events(chunk({"content": "First words. "}), chunk({"content": "Then more."}),
                  chunk(finish="stop"))
    server.queue(Reply(raw=b"\xef\xbb\xbf" + body))
    assert run().answer == "First words. Then more."


def test_cr_only_line_ends_end_the_reply_at_once(server):
    body = events(chunk({"content": "cr only"}), chunk(finish="stop"), eol="\r")
    # The server keeps the connection open after [DONE]: only the CR ends it.
    server.queue(Reply(raw=[body, b": late\r\r"], piece_delay=20))
    response = run(timeout=2)
    assert response.complete and response.answer == "cr only"
    assert not response.notes  # ended by [DONE], not by a timeout


def test_done_with_a_single_newline_is_complete(server):
    body = events(chunk({"content": "no finish reason"}), done=False) + b"data: [DONE]\n"
    server.queue(Reply(raw=[body, b""], piece_delay=20))
    response = run(timeout=60)
    assert not isinstance(response, QwenError), response
    assert response.complete and response.answer == "no finish reason"


def test_a_stall_after_the_finish_reason_is_complete_with_a_note(server):
    body = events(chunk({"content": "done talking"}), chunk(finish="stop"),
                  {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2,
                                            "total_tokens": 5}}, done=False)
    server.queue(Reply(raw=[body, b"data: [DONE]\n\n"], piece_delay=20))
    response = run(timeout=0.5)
    assert not isinstance(response, QwenError), response
    assert response.complete and response.answer == "done talking"
    assert any("silent after the finish reason" in note for note in response.notes)


# --- odd chunks -----------------------------------------------------------------------------


def test_an_empty_delta_beside_a_whole_message_does_not_double_the_text(server):
    last = {"choices": [{"index": 0, "delta": {}, "message": {"role": "assistant",
                                                               "content": "Hello world"},
                         "finish_reason": "stop"}]}
    server.queue(Reply(raw=events(chunk({"content": "Hello "}), chunk({"content": "world"}),
                                  last)))
    assert run().answer == "Hello world"


def test_choices_without_index_are_not_merged_into_choice_0(server):
    two = {"choices": [{"delta": {"content": "mine"}}, {"delta": {"content": "OTHER"}}]}
    server.queue(Reply(raw=events(two, chunk(finish="stop"))))
    assert run().answer == "mine"


def test_a_usage_count_too_large_for_int_does_not_fail_the_reply(server):
    huge = "9" * 5000
    usage = ('{"choices": [], "usage": {"prompt_tokens": ' + huge
             + ', "completion_tokens": 4, "total_tokens": 10}}')
    server.queue(Reply(raw=events(chunk({"content": "fine"}), chunk(finish="stop"), usage)))
    response = run()
    assert not isinstance(response, QwenError), response
    assert response.complete and response.usage.prompt_tokens is None
    assert response.usage.completion_tokens == 4


def test_aiml_meta_usage_reaches_the_result_and_details(server):
    server.queue(Reply(aiml_meta={"usage": {"tokens_used": 1234, "credits_used": 2468,
                                            "usd_spent": 0.00123}}))
    response = run()
    assert response.usage.tokens_used == 1234 and response.usage.credits_used == 2468
    assert response.usage.cost_usd == pytest.approx(0.00123)
    rows = dict(details_rows(response))
    assert rows["Provider usage"] == "credits 2468 / tokens 1,234"
    assert rows["Cost"] == "$0.001230"


@pytest.mark.parametrize("meta, header", [("NaN", None), ("Infinity", None), ("-1", None),
                                          (None, "nan"), (None, "inf")])
def test_non_finite_costs_are_dropped_never_shown_as_nan(server, meta, header):
    last = ('{"choices": [], "meta": {"usage": {"usd_spent": ' + meta + "}}}") if meta else None
    body = events(chunk({"content": "x"}), chunk(finish="stop"), *([last] if last else []))
    server.queue(Reply(raw=body, headers={"x-aimlapi-usd-spent": header} if header else {}))
    response = run()
    assert response.complete and response.usage.cost_usd is None
    html = static_bundle(response)[0]["text/html"]
    assert "nan" not in html.lower().replace("nano", "") and "$inf" not in html.lower()


# --- what a broken server answers -------------------------------------------------------------


def test_a_deeply_nested_json_error_body_is_a_qwen_error_with_the_status(server):
    server.queue(Reply(status=400, raw=b"[" * 200_000, raw_content_type="application/json"))
    error = run()
    assert isinstance(error, BadRequestError) and error.status_code == 400


@pytest.mark.parametrize("content_type", ["text/html; charset=utf-8", "text/event-stream",
                                          "application/json"])
def test_an_html_page_on_200_says_so(server, content_type):
    page = b"<!DOCTYPE html>\n<html><body>Please log in to the Wi-Fi</body></html>"
    server.queue(Reply(raw=page, raw_content_type=content_type))
    error = run(stream=content_type != "application/json")
    assert isinstance(error, APIError) and "HTML page" in error.message, error
    assert "stream ended" not in error.message


def test_a_redirect_says_where_and_the_key_never_goes_there(server):
    with FakeServer() as elsewhere:
        target = elsewhere.base_url + "/chat/completions?token=abc"
        server.queue(Reply(status=307, raw=b"", headers={"Location": target}))
        error = run()
        assert isinstance(error, APIError) and error.status_code == 307
        host = elsewhere.base_url.split("//")[1].split("/")[0]
        assert "redirect" in error.message and host in error.message
        assert "token=abc" not in error.message  # a query string may carry a key
        assert elsewhere.requests == []  # nothing, so no key, reached the other host
    assert len(server.requests) == 1 and FAKE_KEY not in error.message


def test_oversized_response_headers_are_a_protocol_error_not_retried(server):
    server.queue(Reply(headers={"X-Bloat": "a" * 200_000}))
    error = run(max_attempts=3)
    assert isinstance(error, StreamError), error
    assert "not valid HTTP" in error.message and "Could not reach" not in error.message
    assert len(server.requests) == 1


# --- strict servers and extra fields ----------------------------------------------------------


@pytest.mark.parametrize("provider, field, body", [
    ("aimlapi", "thinking_budget", {"detail": [{"type": "extra_forbidden",
                                                 "loc": ["body", "thinking_budget"],
                                                 "msg": "Extra inputs are not permitted"}]}),
    ("openrouter", "reasoning", {"error": {"message": "Unrecognized request argument "
                                                      "supplied: reasoning"}}),
])
@pytest.mark.parametrize("status", [400, 422])
def test_a_strict_server_gets_the_request_again_without_an_extra_field(server, provider, field,
                                                                        body, status):
    server.queue(Reply(status=status, error_body=body), Reply(answer="ok"))
    response = run(thinking_budget=128, provider=provider, base_url=server.base_url)
    assert not isinstance(response, QwenError), response
    first, second = (r.json for r in server.requests)
    assert field in first and field not in second
    notes = [value for label, value in details_rows(response) if label == "Note"]
    assert any(f"does not accept {field}" in note for note in notes)
    assert response.attempts == 1


def test_stream_options_refused_by_a_strict_server_is_dropped(server):
    server.queue(Reply(status=422, error_body={"detail": [
        {"loc": ["body", "stream_options"], "msg": "Extra inputs are not permitted"}]}),
        Reply(answer="ok"))
    response = run()
    assert response.answer == "ok"
    assert "stream_options" not in server.requests[1].json


def test_a_user_option_is_never_dropped(server):
    server.queue(Reply(status=422, error_body={"detail": [
        {"loc": ["body", "seed"], "msg": "Extra inputs are not permitted"}]}))
    request = api.build_request(["hi"], model="m", options=api.make_options(seed=3))
    with pytest.raises(BadRequestError):
        api.run(request, resolve_settings(max_attempts=1))
    assert len(server.requests) == 1


def test_a_local_preset_says_the_thinking_budget_was_not_sent(server):
    server.queue(Reply(answer="ok"))
    response = run(thinking_budget=64, provider="vllm", base_url=server.base_url)
    assert "thinking_budget" not in server.requests[0].json
    notes = [value for label, value in details_rows(response) if label == "Note"]
    assert any("--thinking-budget was not sent" in note and "vllm" in note for note in notes)


# --- the cache ------------------------------------------------------------------------------


@pytest.mark.parametrize("path, value", [(("response", "answer"), 5),
                                         (("response", "usage", "prompt_tokens"), "many"),
                                         (("response", "notes"), "a string"),
                                         (("timing",), [1, 2]),
                                         (("response",), [])])
def test_a_tampered_cache_entry_is_a_corrupt_entry_naming_the_file(server, tmp_path, path,
                                                                   value):
    server.queue(Reply(answer="recorded"))
    qwen_nb.ask("cache me", cache="record", cache_dir=tmp_path)
    [entry] = tmp_path.glob("*.json")
    data = json.loads(entry.read_text())
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    entry.write_text(json.dumps(data))
    with pytest.raises(ConfigError) as caught:
        qwen_nb.ask("cache me", cache="replay", cache_dir=tmp_path)
    assert "corrupt" in caught.value.message and str(entry) in caught.value.message


def test_a_failed_cache_write_leaves_no_temporary_file(server, tmp_path):
    server.default_reply = Reply(answer="recorded")
    qwen_nb.ask("cache me", cache="record", cache_dir=tmp_path)
    [entry] = tmp_path.glob("*.json")
    entry.unlink()
    entry.mkdir()  # os.replace onto a folder fails, as a full disk would
    (entry / "keep").write_text("x")
    response = qwen_nb.ask("cache me", cache="record", cache_dir=tmp_path)
    assert response.answer == "recorded"
    assert any("not recorded" in note for note in response.notes)
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == [] and os.path.isdir(entry)
