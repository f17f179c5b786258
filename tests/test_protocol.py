"""ChatAccumulator and the decode pipeline: table tests, and hypothesis properties.

Properties: any split of a valid stream into network reads gives the same events and the
same result; think tags split at any position give the same thinking and answer; and
arbitrary bytes or JSON never raise anything but qwen_nb's documented StreamError.
"""

from __future__ import annotations

import json

import pytest
from fake_server import Reply, completion_body, completion_chunks
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from qwen_nb._errors import StreamError
from qwen_nb._protocol import ChatAccumulator, parse_chunk, parse_error_body
from qwen_nb._sse import SSEDecoder
from qwen_nb._types import AnswerDelta, ThinkingDelta, UsageUpdate
from qwen_nb.render import static_bundle

MODEL = "qwen3-vl-32b-thinking"


def sse_bytes(reply: Reply, *, crlf: bool = False, keepalive: bool = False) -> bytes:
    eol = "\r\n" if crlf else "\n"
    pieces = [f": keep-alive{eol}{eol}"] if keepalive else []
    for chunk in completion_chunks(reply, MODEL):
        pieces.append(f"data: {json.dumps(chunk)}{eol}{eol}")
        if keepalive:
            pieces.append(f":{eol}")
    pieces.append(f"data: [DONE]{eol}{eol}")
    return "".join(pieces).encode()


def pipeline(reads, *, assume_thinking: bool = True):
    """What client.ResponseStream does with the bytes, minus the network."""
    decoder = SSEDecoder()
    accumulator = ChatAccumulator(assume_thinking=assume_thinking, started=0.0)
    events = []
    done = False

    def handle(data: str) -> None:
        nonlocal done
        if done:
            return
        if data == "[DONE]":
            done = True
            return
        events.extend(accumulator.handle_chunk(parse_chunk(data)))

    for read in reads:
        for data in decoder.decode(read):
            handle(data)
    for data in decoder.flush():
        handle(data)
    events.extend(accumulator.finish())
    response = accumulator.snapshot(elapsed=None, time_to_first_token=None, thinking_seconds=None)
    return events, response, done


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(max(c, 0), len(data)) for c in cuts})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in zip(edges, edges[1:], strict=False)]


# --- tables ----------------------------------------------------------------------------


@pytest.mark.parametrize("style", ["reasoning_content", "reasoning", "think_tags",
                                   "think_close_only"])
def test_every_dialect_separates_thinking_from_answer(style):
    reply = Reply(thinking="I think.\nStill thinking.", answer="**Yes.**", style=style,
                  chunk_chars=3)
    events, response, done = pipeline([sse_bytes(reply)])
    assert done and response.finish_reason == "stop"
    assert response.thinking == "I think.\nStill thinking."
    assert response.answer == "**Yes.**"
    assert response.usage.reasoning_tokens is not None
    assert response.request_id == "chatcmpl-test-0001" and response.model == MODEL
    assert any(isinstance(e, UsageUpdate) for e in events)


@pytest.mark.parametrize("chunk, answer, thinking, finish", [
    ({"choices": [{"index": 0, "delta": {"role": "assistant"}}]}, "", "", None),
    ({"choices": [{"index": 0, "delta": {"content": None}}]}, "", "", None),
    ({"choices": []}, "", "", None),
    ({"choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": "stop"}]}, "hi",
     "", "stop"),
    ({"choices": [{"index": 1, "delta": {"content": "other choice"}}]}, "", "", None),
    ({"choices": [{"index": 0, "delta": {"reasoning_content": "hm", "reasoning": "hm"}}]},
     "", "hm", None),  # a server sending both fields does not double the trace
    ({"choices": [{"index": 0, "message": {"content": "whole", "reasoning": "r"}}]}, "whole",
     "r", None),
])
def test_chunk_table(chunk, answer, thinking, finish):
    accumulator = ChatAccumulator(assume_thinking=False)
    accumulator.handle_chunk(chunk)
    accumulator.finish()
    response = accumulator.snapshot()
    assert (response.answer, response.thinking, response.finish_reason) == (answer, thinking,
                                                                           finish)


def test_usage_cost_and_weird_field_types():
    accumulator = ChatAccumulator()
    accumulator.handle_chunk({"choices": [], "id": 5, "model": {"x": 1},
                              "usage": {"prompt_tokens": "12", "completion_tokens": 30,
                                        "completion_tokens_details": {"reasoning_tokens": 20},
                                        "total_tokens": True},
                              "meta": {"usage": {"usd_spent": 0.0012}}})
    response = accumulator.snapshot()
    assert response.usage.prompt_tokens is None and response.usage.total_tokens is None
    assert response.usage.completion_tokens == 30 and response.usage.reasoning_tokens == 20
    assert response.usage.cost_usd == pytest.approx(0.0012)
    assert response.request_id is None and response.model is None


def test_refusal_field_is_captured_apart_from_the_answer():
    accumulator = ChatAccumulator()
    for piece in ("I can", "'t help."):
        accumulator.handle_chunk({"choices": [{"index": 0, "delta": {"refusal": piece,
                                                                     "content": None}}]})
    assert accumulator.snapshot().refusal == "I can't help."
    assert accumulator.snapshot().answer == ""


@pytest.mark.parametrize("chunk, words", [
    ({"error": {"message": "model overloaded", "code": 503}}, "model overloaded"),
    ({"error": "plain text error"}, "plain text error"),
    ([1, 2, 3], "not an object"),
    ("text", "not an object"),
])
def test_error_events_and_non_objects_raise_stream_error(chunk, words):
    with pytest.raises(StreamError, match=words):
        ChatAccumulator().handle_chunk(chunk)


@pytest.mark.parametrize("data", ["{", "not json", '{"a": 1', "[" * 100000, ""])
def test_malformed_chunks_raise_stream_error(data):
    with pytest.raises(StreamError, match="malformed"):
        parse_chunk(data)


@pytest.mark.parametrize("data", [
    '{"choices": [{"delta": {"content": "caf\\u00e9 \\ud83d\\ude00"}}]}',
    ' {"a": 1}', '{"a": 1} ', '{"a": 1}\n', '\t{"a": [1, 2.5, null, true]}\r\n',
    '{"a": NaN, "b": -Infinity}', '{"a": 1, "a": 2}', '"text"', "[]", "7",
])
def test_chunks_parse_as_json_loads_parses_them(data):
    # The scanner-only fast path must agree with json.loads wherever it is taken or not.
    assert repr(parse_chunk(data)) == repr(json.loads(data))


@pytest.mark.parametrize("data", ['{"a": 1} {"b": 2}', '{"a": 1}x', '\ufeff{"a": 1}'])
def test_extra_data_and_a_bom_in_a_chunk_are_malformed_as_for_json_loads(data):
    with pytest.raises(ValueError):
        json.loads(data)
    with pytest.raises(StreamError, match="malformed"):
        parse_chunk(data)


def test_a_huge_integer_in_a_chunk_reads_as_no_count():
    data = '{"usage": {"completion_tokens": ' + "9" * 5000 + "}}"
    assert parse_chunk(data) == {"usage": {"completion_tokens": None}}


@pytest.mark.parametrize("body, message, request_id", [
    (b'{"error": {"message": "Bad key", "type": "auth"}}', "Bad key", None),
    (b'{"error": {"message": "Bad", "request_id": "r-1"}}', "Bad", "r-1"),
    (b'{"message": "Quota exceeded", "statusCode": 429, "requestId": "aiml-9"}',
     "Quota exceeded", "aiml-9"),
    (b'{"detail": [{"msg": "field required"}]}', "field required", None),
    (b'{"message": ["a is wrong", "b is wrong"], "statusCode": 400}', "a is wrong; b is wrong",
     None),
    (b"<html>Bad gateway</html>", "<html>Bad gateway</html>", None),
    (b"", "(empty response body)", None),
    (b'{"error": ' * 500 + b"1" + b"}" * 500, "", None),
])
def test_error_bodies(body, message, request_id):
    text, rid = parse_error_body(body)
    assert message in text and rid == request_id
    assert len(text) <= 300 or message == ""


def test_non_streamed_body_gives_the_same_result_as_the_stream():
    reply = Reply(thinking="Deep thought.", answer="42", style="think_tags")
    _, streamed, _ = pipeline([sse_bytes(reply)])
    accumulator = ChatAccumulator(assume_thinking=True)
    accumulator.handle_chunk(completion_body(reply, MODEL))
    accumulator.finish()
    whole = accumulator.snapshot()
    assert (whole.thinking, whole.answer, whole.finish_reason) == (
        streamed.thinking, streamed.answer, streamed.finish_reason)


# --- properties ------------------------------------------------------------------------

texts = st.text(alphabet=st.sampled_from(list("ab <>/\nthink$*\u00e9\U0001f600")), max_size=60)
styles = st.sampled_from(["reasoning_content", "reasoning", "think_tags", "think_close_only"])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(thinking=texts, answer=texts, style=styles, chunk_chars=st.integers(1, 12),
       crlf=st.booleans(), keepalive=st.booleans(),
       cuts=st.lists(st.integers(0, 10_000), max_size=12))
def test_any_split_into_reads_gives_the_same_result(thinking, answer, style, chunk_chars, crlf,
                                                     keepalive, cuts):
    reply = Reply(thinking=thinking, answer=answer, style=style, chunk_chars=chunk_chars)
    data = sse_bytes(reply, crlf=crlf, keepalive=keepalive)
    whole_events, whole, done = pipeline([data])
    split_events, parts, split_done = pipeline(split(data, cuts))
    byte_events, _, _ = pipeline([data[i:i + 1] for i in range(len(data))]) if len(
        data) < 3000 else (whole_events, None, None)
    assert done and split_done
    assert split_events == whole_events == byte_events
    assert parts == whole


@settings(max_examples=300, deadline=None)
@given(thinking=texts, answer=texts, style=styles, chunk_chars=st.integers(1, 9))
def test_think_tags_split_at_any_position_give_the_original_texts(thinking, answer, style,
                                                                  chunk_chars):
    for text in (thinking, answer):
        assume("<think>" not in text and "</think>" not in text)
    assume(not answer.lstrip().startswith("<"))  # could be read as a (partial) tag
    if style == "think_close_only":
        assume(not thinking.lstrip().startswith("<"))
    reply = Reply(thinking=thinking, answer=answer, style=style, chunk_chars=chunk_chars)
    events, response, _ = pipeline([sse_bytes(reply)])
    separated = style in ("reasoning_content", "reasoning") and thinking
    # A reasoning field makes the content the answer byte for byte; tags and plain content
    # lose the newlines around the thinking and at the start of the answer.
    assert response.thinking == (thinking if separated else thinking.strip("\n"))
    assert response.answer == (answer if separated else answer.lstrip("\n"))
    # Nothing is moved after it was sent: the deltas are the final texts exactly.
    assert "".join(e.text for e in events if isinstance(e, AnswerDelta)) == response.answer
    assert "".join(e.text for e in events if isinstance(e, ThinkingDelta)) == response.thinking


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | texts,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(["choices", "delta", "message", "content", "reasoning_content",
                         "reasoning", "refusal", "finish_reason", "usage", "prompt_tokens",
                         "completion_tokens", "completion_tokens_details", "reasoning_tokens",
                         "total_tokens", "id", "model", "error", "meta", "usd_spent", "index",
                         "message"]) | st.text(max_size=5),
        children, max_size=5),
    max_leaves=25)


@settings(max_examples=400, deadline=None)
@given(chunks=st.lists(json_values, max_size=6), assume_thinking=st.booleans())
def test_arbitrary_json_chunks_raise_only_stream_error(chunks, assume_thinking):
    accumulator = ChatAccumulator(assume_thinking=assume_thinking)
    for chunk in chunks:
        try:
            accumulator.handle_chunk(chunk)
        except StreamError:
            pass
    accumulator.finish()
    static_bundle(accumulator.snapshot())  # and whatever arrived renders


@settings(max_examples=400, deadline=None)
@given(data=st.binary(max_size=400) | st.builds(
    lambda parts: b"".join(parts),
    st.lists(st.sampled_from([b"data: ", b"data:", b"\n", b"\r", b"\r\n", b"{", b"}", b"[DONE]",
                              b'"choices"', b":", b"[", b"]", b'{"error": 1}', b",", b"\xff",
                              b'"delta"', b'"content": "x"', b"null", b": keep"]),
             max_size=60)),
       cuts=st.lists(st.integers(0, 500), max_size=6))
def test_arbitrary_bytes_raise_only_stream_error(data, cuts):
    try:
        _, response, _ = pipeline(split(data, cuts))
    except StreamError:
        return
    static_bundle(response)
