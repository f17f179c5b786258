"""What a live reply sends to its front end: small messages of appended pieces.

Pure logic (no widgets, no kernel), driven by stream events and a clock. The answer goes
as HTML blocks: each Markdown block is rendered once, when a blank line seals it, and only
the open tail is rendered again. The thinking goes as plain text that the front end
appends as a text node (inert by construction). Per event the cost is a list append; per
draw it is bounded by the open tail, never by the length of the whole reply.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._types import AnswerDelta, StreamEvent, ThinkingDelta, UsageUpdate

if TYPE_CHECKING:
    from .live_overlay import LiveOverlay

# What one comm message costs besides its content: header, parent header, HMAC signature
# (measured with ipykernel 7: a 658-byte message carried 122 bytes of content).
MESSAGE_OVERHEAD = 540

_FENCE_OPEN = ("```", "~~~")
WAITING = "Waiting for the model · {:.0f} s"
LABEL_INTERVAL = 0.5  # seconds between updates of the Thinking label's counters


def markdown_boundary(tail: str, seal_at: int) -> int:
    """Where a sealed piece of the answer may end: after a blank line that is outside code
    fences and $$ / \\[ math and not followed by an indented (continuation) line; at least
    `seal_at // 2` characters in. 0: none yet."""
    cut = 0
    fence = ""
    in_math = False
    position = 0
    previous_blank = False
    for line in tail.splitlines(keepends=True):
        stripped = line.strip()
        if previous_blank and not fence and not in_math and position >= seal_at // 2 and \
                stripped and not line[0].isspace():
            cut = position
        if fence:
            if stripped.startswith(fence):
                fence = ""
        elif stripped.startswith(_FENCE_OPEN):
            fence = stripped[:3]
        elif stripped.count("$$") % 2 or (stripped.count("\\[") != stripped.count("\\]")):
            in_math = not in_math
        previous_blank = not stripped
        position += len(line)
    return cut


class AnswerBlocks:
    """The answer as HTML blocks: sealed blocks are sent once, the open tail re-sent.

    The tail is re-sent when the text added since its last sending pays for the message
    (`bytes_per_char` times the new characters covers the message overhead plus the tail's
    HTML), so bytes stay a small multiple of the text however long it gets. The first text
    is sent at once, and `force` (the stream went quiet) sends whatever is held back.
    """

    def __init__(self, render: Callable[[str], str], *, seal_at: int = 400,
                 bytes_per_char: float = 6.0) -> None:
        self.render = render
        self.seal_at = seal_at
        self.bytes_per_char = bytes_per_char
        self.sealed_html: list[str] = []
        self.sealed_chars = 0
        self._chunks: list[str] = []
        self._tail = ""
        self._tail_sent: int | None = None  # characters of the tail shown; None: never sent

    def add(self, text: str) -> None:
        self._chunks.append(text)

    @property
    def held_back(self) -> bool:
        """Text has arrived that the front end does not show yet."""
        return bool(self._chunks) or self._tail_sent != len(self._tail)

    def take(self, *, force: bool = False) -> dict[str, Any]:
        """The message part for what changed: {"seal": [html, ...], "tail": html} or {}."""
        if self._chunks:
            self._tail += "".join(self._chunks)
            self._chunks.clear()
        sealed: list[str] = []
        while len(self._tail) >= self.seal_at:
            cut = markdown_boundary(self._tail, self.seal_at)
            if cut <= 0:
                break
            sealed.append(self.render(self._tail[:cut]))
            self.sealed_chars += cut
            self._tail = self._tail[cut:]
        message: dict[str, Any] = {}
        if sealed:
            self.sealed_html.extend(sealed)
            message["seal"] = sealed
        shown = self._tail_sent or 0
        grown = len(self._tail) - shown
        pays = grown * self.bytes_per_char >= MESSAGE_OVERHEAD + 1.2 * len(self._tail)
        if sealed or (grown > 0 and (self._tail_sent is None or force or pays)):
            message["tail"] = self.render(self._tail) if self._tail else ""
            self._tail_sent = len(self._tail)
        return message

    @property
    def text(self) -> str:
        """Only the unsealed text (sealed text is not kept: it lives in `sealed_html`)."""
        return self._tail + "".join(self._chunks)


def thinking_label(seconds: float | None, tokens: int | None, *, exact: bool) -> str:
    """The Thinking tab's title: how long and how much the model thought."""
    parts = ["Thinking"]
    if seconds is not None:  # as qwen_nb.render writes it in the saved output
        parts.append(f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s")
    if tokens:
        parts.append(f"{'' if exact else '~'}{tokens:,} token{'s' if tokens != 1 else ''}")
    return " · ".join(parts)


class ReplyFeed:
    """Turns stream events into front-end messages (dicts with only what changed)."""

    def __init__(self, render: Callable[[str], str], *,
                 clock: Callable[[], float] = time.monotonic,
                 overlay: LiveOverlay | None = None) -> None:
        self.clock = clock
        self.overlay = overlay  # grounding boxes drawn while the answer streams
        self.started = clock()
        self.answer = AnswerBlocks(render)
        self._thinking: list[str] = []
        self.thinking_chunks = 0
        self.reasoning_tokens: int | None = None
        self.thinking_started: float | None = None
        self.thinking_ended: float | None = None
        self.answer_started = False
        # What the front end shows before any message (qwen.js's newReply).
        self._label_at = -LABEL_INTERVAL
        self._sent: dict[str, Any] = {"label": "Thinking", "status": WAITING.format(0),
                                      "tab": "answer"}

    def add(self, event: StreamEvent) -> bool:
        """Take an event; True when it starts the thinking or the answer (draw at once)."""
        if isinstance(event, ThinkingDelta):
            self._thinking.append(event.text)
            self.thinking_chunks += 1
            if self.thinking_started is None:
                self.thinking_started = self.clock()
                return True
        elif isinstance(event, AnswerDelta):
            self.answer.add(event.text)
            if self.overlay is not None:
                self.overlay.add(event.text)
            if not self.answer_started:
                self.answer_started = True
                if self.thinking_started is not None:
                    self.thinking_ended = self.clock()
                return True
        elif isinstance(event, UsageUpdate):
            if event.usage.reasoning_tokens is not None:
                self.reasoning_tokens = event.usage.reasoning_tokens
        return False

    @property
    def held_back(self) -> bool:
        return bool(self._thinking) or self.answer.held_back or (
            self.overlay is not None and self.overlay.pending)

    def label(self) -> str:
        if self.thinking_started is None:
            return "Thinking"
        end = self.thinking_ended if self.thinking_ended is not None else self.clock()
        exact = self.reasoning_tokens is not None
        tokens = self.reasoning_tokens if exact else self.thinking_chunks
        return thinking_label(end - self.thinking_started, tokens, exact=exact)

    def status(self) -> str:
        if self.thinking_started is None and not self.answer_started:
            return WAITING.format(self.clock() - self.started)
        return ""

    def take(self, *, force: bool = False) -> dict[str, Any]:
        """The next message: appended pieces, and the label, tab and status if changed."""
        message = self.answer.take(force=force)
        if self._thinking:
            message["think"] = "".join(self._thinking)
            self._thinking.clear()
        if self.overlay is not None:
            figures = self.overlay.take()
            if figures is not None:
                message["overlay"] = figures
        now = self.clock()
        if now - self._label_at >= LABEL_INTERVAL or self.thinking_ended is not None:
            self._label_at = now
            label = self.label()
        else:
            label = self._sent["label"]
        for key, value in (("label", label), ("status", self.status()),
                           ("tab", "answer" if self.answer_started or
                            self.thinking_started is None else "thinking")):
            if self._sent.get(key) != value:
                self._sent[key] = value
                message[key] = value
        return message
