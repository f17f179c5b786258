"""Live views of a streaming reply: ipywidgets tabs in a kernel, plain text in a terminal.

Updates are throttled (at most `max_rate` a second, whatever the chunk rate); the final
state is always exact. When the reply ends, the widget's output is replaced through its
display handle by the static bundle, so a saved notebook keeps text, not widget state.
"""

from __future__ import annotations

import html
import sys
import time
from typing import Any

from ._errors import QwenError
from ._types import AnswerDelta, Finished, QwenResponse, StreamEvent, ThinkingDelta
from .render import details_table, markdown_html, static_bundle, status_message, thinking_html

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


def make_view(shell: Any = None, *, max_rate: float = 12.0) -> LiveView | TerminalView:
    return LiveView(max_rate=max_rate) if in_kernel(shell) else TerminalView()


class Throttle:
    """Says when enough time has passed since the last update."""

    def __init__(self, max_rate: float) -> None:
        self.interval = 1.0 / max_rate
        self._last = 0.0

    def ready(self) -> bool:
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            return True
        return False


class LiveTabs:
    """The Answer / Thinking / Details widgets, fed with text; knows nothing of HTTP."""

    def __init__(self) -> None:
        import ipywidgets as widgets

        self.answer = widgets.HTML(value="")
        self.thinking = widgets.HTML(value="")
        self.details = widgets.HTML(value="")
        self.status = widgets.HTML(value="<em>waiting for the model...</em>")
        self.tab = widgets.Tab(
            children=[self.answer, self.thinking, self.details],
            titles=("Answer", "Thinking", "Details"),
        )
        self.box = widgets.VBox([self.tab, self.status])

    def show_text(self, thinking: str, answer: str) -> None:
        if answer:
            if self.tab.selected_index != ANSWER:
                self.tab.selected_index = ANSWER
            self.answer.value = markdown_html(answer)
        elif thinking and self.tab.selected_index != THINKING:
            self.tab.selected_index = THINKING
        if thinking:
            self.thinking.value = thinking_html(thinking)

    def show_status(self, text: str) -> None:
        self.status.value = text

    def show_final(self, response: QwenResponse) -> None:
        self.answer.value = markdown_html(response.answer)
        self.thinking.value = thinking_html(response.thinking)
        self.details.value = details_table(response)
        warning = status_message(response)
        self.status.value = f"⚠ {html.escape(warning)}" if warning else ""
        self.tab.selected_index = ANSWER if response.answer or not response.thinking else THINKING

    def close(self) -> None:
        for widget in (self.answer, self.thinking, self.details, self.status, self.tab, self.box):
            widget.close()


class TextAccumulator:
    """Collects deltas so a throttled view can show the whole text so far."""

    def __init__(self) -> None:
        self.thinking: list[str] = []
        self.answer: list[str] = []
        self.started = time.monotonic()

    def add(self, event: StreamEvent) -> None:
        if isinstance(event, ThinkingDelta):
            self.thinking.append(event.text)
        elif isinstance(event, AnswerDelta):
            self.answer.append(event.text)

    def status(self) -> str:
        elapsed = time.monotonic() - self.started
        phase = "answering" if self.answer else "thinking"
        chars = sum(map(len, self.answer if self.answer else self.thinking))
        return f"<em>{phase}... {chars:,} characters, {elapsed:.1f} s</em>"


class LiveView:
    """Widget tabs while streaming; the static bundle once the reply ends."""

    def __init__(self, *, max_rate: float = 12.0) -> None:
        from IPython.display import display

        self.tabs = LiveTabs()
        self.text = TextAccumulator()
        self.throttle = Throttle(max_rate)
        self.handle = display(self.tabs.box, display_id=True)
        self.updates = 0

    def update(self, event: StreamEvent) -> None:
        if isinstance(event, Finished):
            self._finalize(event.response)
            return
        self.text.add(event)
        if self.throttle.ready():
            self.updates += 1
            self.tabs.show_text("".join(self.text.thinking), "".join(self.text.answer))
            self.tabs.show_status(self.text.status())

    def fail(self, error: QwenError) -> None:
        response = error.response or QwenResponse(
            answer="".join(self.text.answer),
            thinking="".join(self.text.thinking),
            complete=False,
            error=error.message,
        )
        self._finalize(response)

    def _finalize(self, response: QwenResponse) -> None:
        data, metadata = static_bundle(response)
        if self.handle is not None:
            self.handle.update(data, metadata=metadata, raw=True)
        self.tabs.close()


class TerminalView:
    """Terminal IPython: print the thinking, then the answer, as they arrive."""

    def __init__(self, stream: Any = None) -> None:
        self.out = stream or sys.stdout
        self.phase: str | None = None

    def update(self, event: StreamEvent) -> None:
        if isinstance(event, ThinkingDelta):
            if self.phase != "thinking":
                self.phase = "thinking"
                self.out.write("--- Thinking ---\n")
            self.out.write(event.text)
        elif isinstance(event, AnswerDelta):
            if self.phase != "answer":
                self.out.write(("\n" if self.phase else "") + "--- Answer ---\n")
                self.phase = "answer"
            self.out.write(event.text)
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
            self.out.write(f"! {warning}\n")
        usage = response.usage
        self.out.write(
            f"[{response.model} | tokens: prompt {usage.prompt_tokens}, completion "
            f"{usage.completion_tokens}, reasoning {usage.reasoning_tokens} | "
            f"{response.elapsed or 0:.2f} s]\n"
        )
        self.out.flush()
