"""Reading reply bodies within caps: Content-Encoding decoded in bounded steps.

httpx inflates each network read in one call, so one 64 KB read of a gzip bomb becomes
64 MB at once, and nothing stops the total. Here the raw body is inflated at most
`STEP` bytes at a time (zlib's `max_length`), so a caller that counts what it gets can
stop a 1 GB bomb after the first megabytes. Only gzip and deflate are asked for
(`ACCEPT_ENCODING`); a body in any other coding is refused rather than misread.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator

from ._errors import StreamError

ACCEPT_ENCODING = "gzip, deflate"
STEP = 256 * 1024
ERROR_BODY_CAP = 64_000  # bytes of an error body worth reading: the message is at the start


class BodyTooLargeError(StreamError):
    """A non-streamed body is larger than the cap once decompressed."""


def content_codings(header: str | None) -> list[str]:
    return [c.strip().lower() for c in (header or "").split(",")
            if c.strip() and c.strip().lower() != "identity"]


def decoded(raw: Iterable[bytes], content_encoding: str | None) -> Iterator[bytes]:
    """The body after its Content-Encoding, in pieces of at most STEP bytes when inflated."""
    codings = content_codings(content_encoding)
    if not codings:
        return iter(raw)
    if len(codings) > 1 or codings[0] not in ("gzip", "x-gzip", "deflate"):
        raise StreamError(
            f"The server compressed its reply as {', '.join(codings)!r}, which qwen_nb did not "
            f"ask for (it accepts {ACCEPT_ENCODING}) and does not decode. A proxy in between "
            "may be rewriting the reply."
        )
    return _inflate(raw, gzip=codings[0] != "deflate")


def _inflate(raw: Iterable[bytes], *, gzip: bool) -> Iterator[bytes]:
    # HTTP "deflate" is meant to be zlib-wrapped, but some servers send raw deflate:
    # try the wrapper first and fall back, as browsers (and httpx) do.
    inflater = zlib.decompressobj(zlib.MAX_WBITS | 16 if gzip else zlib.MAX_WBITS)
    started = False
    try:
        for data in raw:
            while data:
                try:
                    out = inflater.decompress(data, STEP)
                except zlib.error:
                    if gzip or started:
                        raise
                    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
                    out = inflater.decompress(data, STEP)
                started = True
                data = inflater.unconsumed_tail
                if out:
                    yield out
                if inflater.eof:
                    if not gzip:
                        return
                    # Gzip bodies may be several members back to back: read them all.
                    data = inflater.unused_data
                    inflater = zlib.decompressobj(zlib.MAX_WBITS | 16)
        rest = inflater.flush()
        if rest:
            yield rest
    except zlib.error as exc:
        raise StreamError(
            f"The server's compressed reply is corrupt ({exc}); the partial reply is kept."
        ) from None


def read_capped(pieces: Iterable[bytes], cap: int) -> tuple[bytes, bool]:
    """Up to `cap` bytes of a body, and whether there was more (the rest is not read)."""
    parts: list[bytes] = []
    size = 0
    for piece in pieces:
        parts.append(piece)
        size += len(piece)
        if size > cap:
            return b"".join(parts)[:cap], True
    return b"".join(parts), False
