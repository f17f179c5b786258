"""The live reply's messages to its front end: appended pieces, exact text, bounded cost.

`Screen` applies the messages the way qwen.js's applyReply does, so these tests check
what a person would see without a browser (the browser tests check qwen.js itself).
"""

from __future__ import annotations

import html
import json
import re

import pytest

from qwen_nb._types import AnswerDelta, Finished, QwenResponse, ThinkingDelta, Usage, UsageUpdate
from qwen_nb.frontend.feed import AnswerBlocks, ReplyFeed, markdown_boundary, thinking_label
from qwen_nb.render import markdown_html

THINKING = "".join(f"Step {i}: I look at the chart again and compare the bars.\n"
                   + ("\n" if i % 3 == 0 else "") for i in range(120))
ANSWER = "".join([
    "## Result\n\nThe **blue** bars grow; $x_1 = 2$.\n\n",
    "- one\n- two\n\n   still item two\n\n",
    "```python\nx = 1\n\ny = 2\n```\n\n",
    "$$\na = b\n\nc = d\n$$\n\n",
    "| a | b |\n| - | - |\n| 1 | 2 |\n\n",
] * 12)


class Screen:
    """What qwen.js shows after applying the messages (applyReply in qwen.js)."""

    def __init__(self) -> None:
        self.blocks: list[str] = []
        self.tail = ""
        self.thinking: list[str] = []
        self.fields: dict[str, str] = {"label": "Thinking", "tab": "answer"}
        self.messages: list[dict] = []

    def apply(self, message: dict) -> None:
        self.messages.append(message)
        self.blocks.extend(message.get("seal", ()))
        if "tail" in message:
            self.tail = message["tail"]
        if message.get("think"):
            self.thinking.append(message["think"])
        for key in ("label", "tab", "status", "details", "error"):
            if key in message:
                self.fields[key] = message[key]

    @property
    def answer_html(self) -> str:
        return "".join(self.blocks) + self.tail

    @property
    def bytes(self) -> int:
        return sum(len(json.dumps(m, ensure_ascii=False).encode()) for m in self.messages)


def text_of(markup: str) -> str:
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", markup))).strip()


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def stream(feed: ReplyFeed, screen: Screen, clock: Clock, *, every: int = 1,
           step: int = 4, rate: float = 100.0) -> None:
    """Feed THINKING then ANSWER in `step`-character chunks, drawing every `every` chunks."""
    events = [ThinkingDelta(THINKING[i:i + step]) for i in range(0, len(THINKING), step)]
    events += [AnswerDelta(ANSWER[i:i + step]) for i in range(0, len(ANSWER), step)]
    for index, event in enumerate(events):
        clock.now += 1 / rate
        starts = feed.add(event)
        if starts or index % every == 0:
            message = feed.take()
            if message:
                screen.apply(message)
    screen.apply(feed.take(force=True))


def test_pieces_add_up_to_the_exact_texts():
    clock, screen = Clock(), Screen()
    feed = ReplyFeed(markdown_html, clock=clock)
    stream(feed, screen, clock)
    assert "".join(screen.thinking) == THINKING
    assert len(screen.blocks) > 3  # really sealed, block by block
    assert text_of(screen.answer_html) == text_of(markdown_html(ANSWER))
    for needle in ("<h2>Result</h2>", "<strong>blue</strong>", "<table>",
                   'y = <span class="m">2'):
        assert needle in screen.answer_html


def test_each_sealed_block_is_sent_once_and_never_the_whole_text_again():
    clock, screen = Clock(), Screen()
    feed = ReplyFeed(markdown_html, clock=clock)
    stream(feed, screen, clock)  # worst case: a draw after every 4-character chunk
    tails = [m["tail"] for m in screen.messages if "tail" in m]
    assert max(map(len, tails)) < 2000  # the open tail is bounded, not the whole answer
    assert screen.bytes < 8 * len(THINKING + ANSWER)
    assert sum(len(m.get("think", "")) for m in screen.messages) == len(THINKING)


def test_the_first_text_is_sent_at_once():
    clock = Clock()
    feed = ReplyFeed(markdown_html, clock=clock)
    assert feed.add(ThinkingDelta("Hmm")) is True  # starts the thinking: draw now
    assert feed.take()["think"] == "Hmm"
    assert feed.add(ThinkingDelta(" more")) is False
    assert feed.add(AnswerDelta("Yes")) is True  # starts the answer: draw now
    message = feed.take()
    assert message["tail"] == markdown_html("Yes") and message["tab"] == "answer"


def test_a_short_tail_held_back_by_the_byte_rule_goes_out_when_forced():
    blocks = AnswerBlocks(markdown_html)
    blocks.add("a" * 300)
    assert "tail" in blocks.take()  # first text: at once
    blocks.add("b")
    assert blocks.take() == {}  # one character does not pay for re-sending 300
    assert blocks.held_back
    assert blocks.take(force=True)["tail"] == markdown_html("a" * 300 + "b")
    assert not blocks.held_back


def test_thinking_tab_first_then_answer_and_a_label_that_stops_counting():
    clock = Clock()
    feed = ReplyFeed(markdown_html, clock=clock)
    feed.add(ThinkingDelta("a"))
    assert feed.take()["tab"] == "thinking"
    for _ in range(1233):
        clock.now += 0.01
        feed.add(ThinkingDelta("b"))
    assert feed.take()["label"] == "Thinking · 12 s · ~1,234 tokens"
    feed.add(AnswerDelta("x"))
    message = feed.take()
    assert message["tab"] == "answer"
    clock.now += 30  # the answer streams on; the thinking label no longer counts
    feed.add(UsageUpdate(Usage(reasoning_tokens=1200)))
    assert feed.take().get("label") == "Thinking · 12 s · 1,200 tokens"  # exact from usage
    assert thinking_label(1.0, 1, exact=True) == "Thinking · 1.0 s · 1 token"


def test_the_status_counts_the_wait_and_disappears_with_the_first_text():
    clock = Clock()
    feed = ReplyFeed(markdown_html, clock=clock)
    assert feed.take() == {}  # nothing changed since the front end's initial state
    clock.now = 3.2
    assert feed.take() == {"status": "Waiting for the model · 3 s"}
    feed.add(AnswerDelta("hi"))
    assert feed.take()["status"] == ""


def test_draw_cost_does_not_grow_with_the_reply():
    """Rendering work per draw is bounded by the open tail: the total rendered stays a
    small multiple of the text for a long reply (quadratic would be ~1000x here)."""
    rendered = [0]

    def counting(text: str) -> str:
        rendered[0] += len(text)
        return markdown_html(text)

    clock, screen = Clock(), Screen()
    feed = ReplyFeed(counting, clock=clock)
    long_answer = ANSWER * 8
    for i in range(0, len(long_answer), 4):
        feed.add(AnswerDelta(long_answer[i:i + 4]))
        screen.apply(feed.take())
    assert rendered[0] < 6 * len(long_answer)


@pytest.mark.parametrize("source, forbidden", [
    ("para one\n\n```\ncode\n\nmore code\n```\n\nafter", ["more code"]),
    ("para one\n\n$$\na\n\nb\n$$\n\nafter", ["b\n$$"]),
    ("para one\n\n\\[\na\n\nb\n\\]\n\nafter", ["b\n\\]"]),
    ("- item\n\n  continued\n\nnext", ["  continued"]),
])
def test_markdown_is_never_split_inside_a_block(source, forbidden):
    for cut_at in range(1, len(source) + 1):
        prefix = source[:cut_at]
        cut = markdown_boundary(prefix, 2)
        assert cut == 0 or prefix[cut - 2:cut] == "\n\n"
        for text in forbidden:
            assert not prefix[cut:].startswith(text) or cut == 0


def test_live_view_sends_one_model_and_ends_with_the_static_bundle(_global_ip, monkeypatch):
    import comm
    from IPython.utils.capture import capture_output
    from support import FrontEndMessages

    from qwen_nb.frontend import widget
    from qwen_nb.frontend.live import LiveView

    sent = FrontEndMessages()
    monkeypatch.setattr(comm, "create_comm", sent.comm_class())
    widget.new_widget()  # the kernel's first widget also opens the front end (once)
    sent.opened.clear()
    clock = Clock()
    with capture_output() as captured:
        view = LiveView(clock=clock, flush_when_quiet=False)
        for i in range(0, len(THINKING), 4):
            clock.now += 0.01
            view.update(ThinkingDelta(THINKING[i:i + 4]))
        view.update(Finished(QwenResponse(answer="done", thinking=THINKING)))
    assert [state["kind"] for state in sent.opened] == ["reply"]  # one model per reply
    assert "_css" not in sent.opened[0] and len(sent.opened[0]["_esm"]) < 1000  # a handle
    assert sent.custom[0] == {"think": THINKING[:4], "tab": "thinking",
                              "label": "Thinking · 0.0 s · ~1 token", "status": ""}
    assert len(sent.custom) <= 5 * clock.now + 2  # throttled to max_rate (5/s)
    assert THINKING.startswith(sent.thinking()) and len(sent.thinking()) > len(THINKING) / 2
    final = captured.outputs[-1]
    assert "application/vnd.jupyter.widget-view+json" not in final.data
    assert "done" in final.data["text/markdown"]
    assert view.widget.comm is None  # closed: nothing of it is saved
