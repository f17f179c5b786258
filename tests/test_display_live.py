"""The live view's append-only pieces: exact text, safe Markdown splits, bounded bytes."""

from __future__ import annotations

import html
import json
import re

import pytest
from test_live_feed import ANSWER, THINKING

from qwen_nb._types import QwenResponse
from qwen_nb.frontend.live import (
    GrowingText,
    LiveTabs,
    markdown_boundary,
    trace_block_html,
    trace_boundary,
)
from qwen_nb.render import markdown_html


@pytest.fixture
def sent(monkeypatch):
    """Bytes of every comm message ipywidgets sends (JSON of the data), in a list."""
    import comm

    sizes: list[int] = []

    class CountingComm(comm.DummyComm):
        def publish_msg(self, msg_type, data=None, metadata=None, buffers=None, **keys):
            sizes.append(len(json.dumps(data, default=str).encode()))

    monkeypatch.setattr(comm, "create_comm", CountingComm)
    return sizes


def pieces_text(column) -> str:
    return "".join(html.unescape(re.sub(r"<[^>]+>", "", child.value))
                   for child in column.children)


def grow(text: GrowingText, full: str, step: int = 4) -> None:
    for end in range(step, len(full) + step, step):
        text.show(full[:end])
    text.show(full, force=True)


def test_thinking_pieces_add_up_to_the_exact_text(sent):
    text = GrowingText(trace_block_html, trace_boundary, seal_at=300)
    grow(text, THINKING)
    assert pieces_text(text.box) == THINKING
    assert len(text.box.children) > 5  # really split into pieces
    assert text.text == THINKING


def test_bytes_sent_stay_a_small_multiple_of_the_text(sent):
    # Worst case: a throttle tick after every 4-character chunk.
    thinking = GrowingText(trace_block_html, trace_boundary)
    grow(thinking, THINKING)
    thinking_bytes = sum(sent)
    sent.clear()
    answer = GrowingText(markdown_html, markdown_boundary)
    grow(answer, ANSWER)
    assert thinking_bytes < 8 * len(THINKING)
    # The answer's HTML carries MathML (with the TeX kept as annotation) and highlighted
    # code, about twice the markup of TeX-as-text: 24x, still linear in the text.
    assert sum(sent) < 24 * len(ANSWER)


def test_whole_text_resent_per_chunk_would_be_quadratic(sent):
    """The baseline the pieces avoid (keeps the bound above meaningful)."""
    import ipywidgets as widgets

    widget = widgets.HTML()
    for end in range(4, len(THINKING) + 4, 4):
        widget.value = trace_block_html(THINKING[:end])
    assert sum(sent) > 100 * len(THINKING)


def test_a_rewritten_text_starts_again(sent):
    text = GrowingText(trace_block_html, trace_boundary, seal_at=100)
    grow(text, THINKING[:1000])
    text.show("something else entirely", force=True)
    assert pieces_text(text.box) == "something else entirely"


@pytest.mark.parametrize("source, forbidden", [
    ("para one\n\n```\ncode\n\nmore code\n```\n\nafter", ["more code"]),
    ("para one\n\n$$\na\n\nb\n$$\n\nafter", ["b\n$$"]),
    ("- item\n\n  continued\n\nnext", ["  continued"]),
])
def test_markdown_is_never_split_inside_a_block(source, forbidden):
    for cut_at in range(1, len(source)):
        cut = markdown_boundary(source, 2)
        if cut:
            assert source[cut - 2 : cut] == "\n\n"
            for text in forbidden:
                assert not source[cut:].startswith(text)
        source_prefix = source[:cut_at]
        cut = markdown_boundary(source_prefix, 2)
        assert cut == 0 or source_prefix[cut - 2 : cut] == "\n\n"


def test_markdown_split_renders_like_the_whole(sent):
    text = GrowingText(markdown_html, markdown_boundary, seal_at=200)
    grow(text, ANSWER)
    assert len(text.box.children) > 3
    for needle in ("<h2>Result</h2>", "<strong>blue</strong>", "<table>",
                   'data-lang="python"', "y = <span class=\"m\">2</span>"):
        assert needle in text.box.value
    # Code fences and $$ blocks stay whole: no piece starts inside one.
    for child in text.box.children:
        assert not child.value.startswith("<p>y = 2") and "c = d" not in child.value[:10]


def test_trace_boundary_prefers_line_ends():
    assert trace_boundary("a" * 40 + "\n" + "b" * 5, 60) == 41
    assert trace_boundary("a" * 10 + "\n" + "b" * 50, 60) == 0  # too early a newline
    long_line = "word " * 60
    assert long_line[: trace_boundary(long_line, 60)].endswith(" ")


def test_live_tabs_final_state_is_exact(sent):
    tabs = LiveTabs()
    tabs.show_text(THINKING[:500], "")
    tabs.show_text(THINKING, ANSWER[:300])
    tabs.show_final(QwenResponse(answer=ANSWER, thinking=THINKING))
    assert tabs.answer.value == markdown_html(ANSWER)
    assert pieces_text(tabs.thinking) == THINKING
    assert tabs.tab.selected_index == 0
