"""Live views of a streaming reply: qwen_nb's front end in a kernel, text in a terminal.

Updates are throttled (at most `max_rate` a second, whatever the chunk rate) and carry
only what changed (frontend/feed.py); the final state is always exact. When the reply
ends, the widget's output is replaced through its display handle by the static bundle, so
a saved notebook keeps text, not widget state.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from .._errors import QwenError
from .._terminal import inert
from .._types import (
    AnswerDelta,
    ChatRequest,
    Finished,
    QwenResponse,
    StreamEvent,
    ThinkingDelta,
)
from ..render import markdown_html, static_bundle, status_message

ANSWER, THINKING, DETAILS = 0, 1, 2


def in_kernel(shell: Any = None) -> bool:
    """True inside a Jupyter kernel (widgets can render), False in terminal IPython."""
    if shell is None:
        try:
            from IPython import get_ipython
        except ImportError:
            return False
        shell = get_ipython()
    return shell is not None and any(
        cls.__name__ == "ZMQInteractiveShell" for cls in type(shell).__mro__
    )


def make_view(shell: Any = None, *, max_rate: float = 5.0,
              request: ChatRequest | None = None) -> LiveView | TerminalView:
    """The view for this shell; `request` lets a live view draw grounding boxes as they
    arrive (on the request's images)."""
    if in_kernel(shell):
        return LiveView(max_rate=max_rate, request=request)
    return TerminalView()


def close_widgets(roots: Any) -> None:
    """Close widgets, everything inside them, and their Layout and Style models.

    Each Layout / Style is a model of its own (in the front end and in ipywidgets'
    registry) that `Widget.close()` leaves open: without this, every closed turn, live
    view or progress bar leaked a few of them for the life of the kernel."""
    for widget in roots:
        close_widgets(tuple(getattr(widget, "children", ()) or ()))
        for part in (getattr(widget, "layout", None), getattr(widget, "style", None)):
            if part is not None and hasattr(part, "close"):
                part.close()
        widget.close()


class Throttle:
    """Says when enough time has passed since the last update."""

    def __init__(self, max_rate: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = 1.0 / max_rate
        self.clock = clock
        self._last = -self.interval

    def ready(self) -> bool:
        now = self.clock()
        if now - self._last >= self.interval:
            self._last = now
            return True
        return False


class QuietFlush:
    """Draws a throttled view once the stream goes quiet, and ticks its status meanwhile.

    A throttled view skips events that come too soon after the last draw; the next event
    draws them. When no next event comes (the model pauses, or thinks silently before its
    first token) the view would stay stale, so this background ticker calls `draw` once
    the stream has been quiet for `quiet` seconds, then every `tick` seconds (the status
    shows the time waited). It draws nothing while events flow, so it costs no bytes then.
    """

    def __init__(self, draw: Callable[[], None], *, quiet: float = 0.25,
                 tick: float = 1.0) -> None:
        self._draw = draw
        self.quiet = quiet
        self.tick = tick
        self._last_event = time.monotonic()
        self._last_draw = self._last_event
        self._dirty = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="qwen-nb-quiet")
        self._thread.start()

    def event(self, *, drawn: bool) -> None:
        """An event arrived; `drawn` says whether the view drew it already."""
        now = time.monotonic()
        self._last_event = now
        if drawn:
            self._last_draw = now
        self._dirty = not drawn  # a draw shows everything so far

    def _run(self) -> None:
        while not self._stop.wait(self.quiet / 2):
            now = time.monotonic()
            if now - self._last_event < self.quiet:
                continue  # events are flowing: the view draws them itself
            if self._dirty or now - self._last_draw >= self.tick:
                self._dirty = False
                self._last_draw = now
                try:
                    self._draw()
                except Exception:  # a closed widget must not kill the kernel's thread
                    return

    def stop(self) -> None:
        """Stop ticking; returns once a draw in progress has finished."""
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)


class LiveView:
    """The anywidget reply view while streaming; the static bundle once the reply ends.

    One widget model per reply (a handle onto the kernel's one front-end model); then at
    most `max_rate` messages a second, each carrying only what changed (`ReplyFeed`). 5/s
    is ipykernel's own pace for print() output (it flushes every 0.2 s), so the live view
    costs about what printing the text would.
    The first thinking and the first answer text are sent at once, and text held back by
    the throttle is sent once the stream goes quiet for `quiet` seconds. Given the
    `request`, grounding boxes and points are drawn on its images as they complete.
    """

    def __init__(self, *, max_rate: float = 5.0,
                 clock: Callable[[], float] = time.monotonic,
                 flush_when_quiet: bool = True, quiet: float = 0.08,
                 request: ChatRequest | None = None) -> None:
        from IPython.display import display

        from .feed import ReplyFeed
        from .live_overlay import LiveOverlay
        from .widget import new_widget

        overlay = LiveOverlay(request, clock=clock) if (
            request is not None and LiveOverlay.wanted(request)) else None
        self.feed = ReplyFeed(markdown_html, clock=clock, overlay=overlay)
        self.throttle = Throttle(max_rate, clock=clock)
        self.widget = new_widget("reply")
        self.handle = display(self.widget, display_id=True)
        self.updates = 0
        self._lock = threading.Lock()  # the quiet-flush thread draws too
        self._closed = False
        self._quiet = QuietFlush(self._draw_quiet, quiet=quiet) if flush_when_quiet else None

    def update(self, event: StreamEvent) -> None:
        if isinstance(event, Finished):
            self._finalize(event.response)
            return
        with self._lock:
            starts = self.feed.add(event)
            drawn = self.throttle.ready() or starts
            if drawn:
                self._draw()
            settled = drawn and not self.feed.held_back
        if self._quiet is not None:
            self._quiet.event(drawn=settled)

    def _draw(self, *, force: bool = False) -> None:
        message = self.feed.take(force=force)
        if message:
            self.updates += 1
            self.widget.send(message)

    def _draw_quiet(self) -> None:
        with self._lock:
            if not self._closed:
                self._draw(force=True)

    def fail(self, error: QwenError) -> None:
        """Keep what arrived, marked incomplete; when nothing arrived, the cell's error
        is the one place the failure shows (no empty tabs repeating it)."""
        response = error.response
        if response is None or not (response.answer or response.thinking):
            self._finalize(None)
            return
        self._finalize(response)

    def _finalize(self, response: QwenResponse | None) -> None:
        if self._quiet is not None:
            self._quiet.stop()
        with self._lock:
            if self._closed:
                return
            self._closed = True
            data, metadata = static_bundle(response) if response is not None else (
                {"text/plain": ""}, {})
            if self.handle is not None:
                self.handle.update(data, metadata=metadata, raw=True)
            self.widget.close()


class TerminalView:
    """Terminal IPython: print the thinking, then the answer, as they arrive.

    Everything the server sent is printed inert: an ANSI escape or a carriage return shows
    as `\\x1b` / `\\r` instead of clearing the screen or rewriting what is shown."""

    def __init__(self, stream: Any = None) -> None:
        self.out = stream or sys.stdout
        self.phase: str | None = None

    def update(self, event: StreamEvent) -> None:
        if isinstance(event, ThinkingDelta):
            if self.phase != "thinking":
                self.phase = "thinking"
                self.out.write("--- Thinking ---\n")
            self.out.write(inert(event.text))
        elif isinstance(event, AnswerDelta):
            if self.phase != "answer":
                self.out.write(("\n" if self.phase else "") + "--- Answer ---\n")
                self.phase = "answer"
            self.out.write(inert(event.text))
        elif isinstance(event, Finished):
            self._end(event.response)
        self.out.flush()

    def fail(self, error: QwenError) -> None:
        if error.response is not None:
            self._end(error.response)

    def _end(self, response: QwenResponse) -> None:
        if self.phase is not None:
            self.out.write("\n")
        warning = status_message(response)
        if warning:
            self.out.write(f"! {inert(warning)}\n")
        usage = response.usage
        self.out.write(
            f"[{inert(str(response.model))} | tokens: prompt {usage.prompt_tokens}, completion "
            f"{usage.completion_tokens}, reasoning {usage.reasoning_tokens} | "
            f"{response.elapsed or 0:.2f} s]\n"
        )
        self.out.flush()
