"""Incremental Server-Sent-Events decoder: bytes in, complete `data` payloads out.

Pure and stateful like httpx's decoders: no network code, so tests can feed it any
split of a stream. Follows the WHATWG event-stream rules that matter for chat
completions: LF, CRLF and CR line ends, `:` comment (keep-alive) lines, `data:` with or
without the space, multi-line data joined with "\\n", events ended by a blank line.
"""

from __future__ import annotations

import codecs
import re

_EOL = re.compile(r"\r\n|\r|\n")


class SSEDecoder:
    """Feed bytes with `decode`, call `flush` at end of stream; both return data payloads."""

    __slots__ = ("_utf8", "_tail", "_data")

    def __init__(self) -> None:
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._tail = ""  # an unfinished line, carried into the next read
        self._data: list[str] = []  # data lines of the event being read

    def decode(self, chunk: bytes) -> list[str]:
        text = self._tail + self._utf8.decode(chunk)
        # A trailing "\r" may be the first half of "\r\n": push it into the next read,
        # or it would end one line here and an empty line (an event boundary) there.
        if text.endswith("\r"):
            lines = _EOL.split(text[:-1])
            self._tail = lines.pop() + "\r"
        else:
            # str.split is several times faster than the regex on the common LF-only stream.
            lines = _EOL.split(text) if "\r" in text else text.split("\n")
            self._tail = lines.pop()
        return self._lines(lines) if lines else []

    def flush(self) -> list[str]:
        """End of stream: finish the last line. An event with no blank line after it is
        incomplete and dropped, as the SSE spec says."""
        text = self._tail + self._utf8.decode(b"", final=True)
        self._tail = ""
        lines = _EOL.split(text) if text else []
        events = self._lines(lines)
        self._data = []
        return events

    def _lines(self, lines: list[str]) -> list[str]:
        events: list[str] = []
        data = self._data
        for line in lines:
            if not line:
                if data:
                    events.append("\n".join(data))
                    data = self._data = []
                continue
            if line.startswith("data:"):
                value = line[5:]
                data.append(value[1:] if value.startswith(" ") else value)
            # Comments (":keep-alive") and other fields (event, id, retry) carry nothing
            # a chat completion needs.
        return events
