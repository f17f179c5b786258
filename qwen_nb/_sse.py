"""Incremental Server-Sent-Events decoder: bytes in, complete `data` payloads out.

Pure and stateful like httpx's decoders: no network code, so tests can feed it any
split of a stream. Follows the WHATWG event-stream rules that matter for chat
completions: a leading UTF-8 BOM is dropped, LF, CRLF and CR line ends, `:` comment
(keep-alive) lines, `data:` with or without the space, multi-line data joined with "\\n",
events ended by a blank line.

Linear in the line length: an unfinished line is kept as a list of pieces and only new
data is searched for a line end, so a 32 MB line costs four times an 8 MB one (joining
`tail + new` on every read made it quadratic). One line, or one event's data, longer than
`max_line` characters is refused as soon as that much has arrived.
"""

from __future__ import annotations

import codecs
import re

from ._errors import StreamError

_EOL = re.compile(r"\r\n|\r|\n")
DEFAULT_MAX_LINE = 16_000_000
DONE = "[DONE]"


class LineTooLongError(StreamError):
    """One SSE line (or one event's data) is over the cap: a broken or hostile server."""


class SSEDecoder:
    """Feed bytes with `decode`, call `flush` at end of stream; both return data payloads."""

    __slots__ = ("_utf8", "_pieces", "_pending", "_skip_lf", "_started", "_data",
                 "_data_size", "max_line")

    def __init__(self, max_line: int = DEFAULT_MAX_LINE) -> None:
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pieces: list[str] = []  # an unfinished line, in the pieces it arrived in
        self._pending = 0  # characters in _pieces
        self._skip_lf = False  # the last read ended with "\r": a "\n" next is its other half
        self._started = False  # past the first character (where a BOM may sit)
        self._data: list[str] = []  # data lines of the event being read
        self._data_size = 0
        self.max_line = max_line

    def decode(self, chunk: bytes) -> list[str]:
        text = self._utf8.decode(chunk)
        if not text:
            return []
        if not self._started:
            self._started = True
            if text[0] == "\ufeff":
                text = text[1:]
        if self._skip_lf:
            # A CR ends a line at once (a CR-only stream must not wait for the next read);
            # an LF right after it belongs to the same "\r\n".
            self._skip_lf = False
            if text[:1] == "\n":
                text = text[1:]
        if not text:
            return []
        if "\r" in text:
            self._skip_lf = text[-1] == "\r"
            lines = _EOL.split(text)
        else:
            # str.split is several times faster than the regex on the common LF-only stream.
            lines = text.split("\n")
        tail = lines.pop()
        if self._pieces:
            if not lines:  # still inside the same long line: only the new part was searched
                self._pieces.append(tail)
                self._pending += len(tail)
                if self._pending > self.max_line:
                    self._too_long()
                return []
            self._pieces.append(lines[0])
            lines[0] = "".join(self._pieces)
            self._pieces = []
            self._pending = 0
        if tail:
            self._pieces.append(tail)
            self._pending = len(tail)
            if self._pending > self.max_line:
                self._too_long()
        return self._lines(lines) if lines else []

    def flush(self) -> list[str]:
        """End of stream: finish the last line. An event with no blank line after it is
        incomplete and dropped, as the SSE spec says."""
        text = "".join(self._pieces) + self._utf8.decode(b"", final=True)
        self._pieces = []
        self._pending = 0
        events = self._lines(_EOL.split(text)) if text else []
        self._data = []
        self._data_size = 0
        return events

    def _lines(self, lines: list[str]) -> list[str]:
        events: list[str] = []
        data = self._data
        for line in lines:
            if not line:
                if data:
                    events.append("\n".join(data))
                    data = self._data = []
                    self._data_size = 0
                continue
            if line.startswith("data:"):
                # One slice, not two: on a 32 MB line each copy counts.
                value = line[6:] if line[5:6] == " " else line[5:]
                if value == DONE and not data:
                    # The stream's end marker is dispatched at its line end: nothing can
                    # follow it, and a server that sends "data: [DONE]\n" with one line
                    # end (and keeps the connection open) must not leave us waiting.
                    events.append(DONE)
                    continue
                data.append(value)
                self._data_size += len(value) + 1
                if self._data_size > self.max_line:
                    self._too_long()
            # Comments (":keep-alive") and other fields (event, id, retry) carry nothing
            # a chat completion needs.
        return events

    def _too_long(self) -> None:
        limit = self.max_line / 1_000_000
        self._pieces = []
        self._pending = 0
        self._data = []
        self._data_size = 0
        raise LineTooLongError(
            f"The server sent one stream line longer than {limit:g} MB (a broken or hostile "
            "server?); the reply was cut there and the partial reply is kept. If such lines "
            "are expected, raise the cap with QWEN_NB_MAX_LINE_MB or max_line_mb=."
        )
