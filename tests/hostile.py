"""Building blocks for hostile-server tests: SSE bodies written byte by byte, gzip bombs."""

from __future__ import annotations

import json
import struct
import zlib
from functools import cache

MODEL = "qwen3-vl-32b-thinking"


def chunk(delta: dict | None = None, *, finish: str | None = None, **extra) -> dict:
    """One chat.completion.chunk with choice 0 carrying `delta`."""
    choice = {"index": 0, "delta": delta or {}, "finish_reason": finish}
    return {"id": "chatcmpl-hostile", "object": "chat.completion.chunk", "model": MODEL,
            "choices": [choice], **extra}


def events(*chunks: dict | str, eol: str = "\n", done: bool = True) -> bytes:
    """An SSE body: each chunk as a `data:` event, then `[DONE]`."""
    pieces = [f"data: {c if isinstance(c, str) else json.dumps(c)}{eol}{eol}" for c in chunks]
    if done:
        pieces.append(f"data: [DONE]{eol}{eol}")
    return "".join(pieces).encode()


def answer_stream(answer: str = "Hello there.", thinking: str = "Hmm.") -> list[dict]:
    return [chunk({"reasoning_content": thinking}), chunk({"content": answer}),
            chunk(finish="stop"),
            {"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 7,
                                      "total_tokens": 12}}]


@cache
def gzip_bomb(expanded: int = 1 << 30, *, fill: bytes = b"\0") -> bytes:
    """A valid gzip body of about 1 MB that inflates to `expanded` bytes of `fill`.

    Built in about a second: after a full flush, deflate encodes every further identical
    16 MB block to the same bytes, so one block's output is repeated."""
    block = fill * (1 << 24)
    assert expanded % len(block) == 0
    deflate = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    first = deflate.compress(block) + deflate.flush(zlib.Z_FULL_FLUSH)
    middle = deflate.compress(block) + deflate.flush(zlib.Z_FULL_FLUSH)
    blocks = expanded // len(block)
    crc = 0
    for _ in range(blocks):
        crc = zlib.crc32(block, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    return (header + first + middle * (blocks - 1) + deflate.flush()
            + struct.pack("<II", crc, expanded & 0xFFFFFFFF))
