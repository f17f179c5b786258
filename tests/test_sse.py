"""SSEDecoder: table tests for the event-stream rules chat completions rely on."""

from __future__ import annotations

import pytest

from qwen_nb._sse import SSEDecoder


def decode_all(*reads: bytes) -> list[str]:
    decoder = SSEDecoder()
    events: list[str] = []
    for read in reads:
        events.extend(decoder.decode(read))
    return events + decoder.flush()


@pytest.mark.parametrize("stream, expected", [
    (b"data: a\n\n", ["a"]),
    (b"data:a\n\n", ["a"]),
    (b"data:  two spaces\n\n", [" two spaces"]),
    (b"data: a\r\n\r\n", ["a"]),
    (b"data: a\r\rdata: b\r\r", ["a", "b"]),
    (b"data: a\ndata: b\n\n", ["a\nb"]),
    (b": keep-alive\n\ndata: x\n\n", ["x"]),
    (b":\n: comment\ndata: x\n\n", ["x"]),
    (b"event: message\nid: 3\nretry: 10\ndata: x\n\n", ["x"]),
    (b"data: [DONE]\n\n", ["[DONE]"]),
    (b"data: a\n\n\n\n\ndata: b\n\n", ["a", "b"]),
    (b"\n\n\n", []),
    (b"data: incomplete", []),  # no blank line: dropped, as the spec says
    (b"data: a\n", []),
    (b"data:\n\n", [""]),
    ("data: caf\u00e9 \u6f22\u5b57 \U0001f600\n\n".encode(), ["caf\u00e9 \u6f22\u5b57 \U0001f600"]),
    (b"data: \xff\xfe bad utf8\n\n", ["\ufffd\ufffd bad utf8"]),
    (b"nonsense line\ndata: x\n\n", ["x"]),
])
def test_decoder_table(stream, expected):
    assert decode_all(stream) == expected


@pytest.mark.parametrize("stream", [
    b"data: a\r\n\r\ndata: b\r\n\r\n",
    b"data: a\n\ndata: b\n\n",
    b"data: a\r\rdata: b\r\r",
    "data: \u00e9\U0001f600\u6f22\r\n\r\ndata: b\n\n".encode(),
])
def test_every_two_way_split_gives_the_same_events(stream):
    whole = decode_all(stream)
    for cut in range(len(stream) + 1):
        assert decode_all(stream[:cut], stream[cut:]) == whole, cut


def test_byte_at_a_time_crlf_does_not_invent_an_event_boundary():
    stream = b"data: a\r\ndata: b\r\n\r\n"
    assert decode_all(*(bytes([b]) for b in stream)) == ["a\nb"]


def test_decoder_is_incremental():
    decoder = SSEDecoder()
    assert decoder.decode(b"data: {\"a\":") == []
    assert decoder.decode(b" 1}\n") == []
    assert decoder.decode(b"\n") == ['{"a": 1}']
    assert decoder.flush() == []
