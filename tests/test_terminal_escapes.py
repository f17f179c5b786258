"""Terminal IPython shows a server's control characters escaped, never runs them."""

from __future__ import annotations

import pytest
from fake_server import Reply
from IPython.utils.capture import capture_output
from support import run_cell

from qwen_nb import StreamError
from qwen_nb._terminal import inert

CLEAR = "\x1b[2J\x1b[H"  # clear the screen, cursor home
CLIPBOARD = "\x1b]52;c;ZXZpbA==\x07"  # OSC 52: write the clipboard
OWN_COLOURS = ("\x1b[31m", "\x1b[0m")  # the red error name qwen_nb prints itself


def without_own_colours(text: str) -> str:
    for code in OWN_COLOURS:
        text = text.replace(code, "")
    return text


@pytest.mark.parametrize(("text", "shown"), [
    ("plain\nlines\tand tabs", "plain\nlines\tand tabs"),
    ("a\x1b[2Jb", "a\\x1b[2Jb"),
    ("over\rwrite", "over\\rwrite"),
    ("windows\r\nline ends", "windows\nline ends"),
    ("bell\x07 backspace\x08 del\x7f csi\x9b", "bell\\x07 backspace\\x08 del\\x7f csi\\x9b"),
    ("bidi \u202eevil", "bidi \\u202eevil"),
    ("", ""),
])
def test_inert_table(text, shown):
    assert inert(text) == shown


def test_the_terminal_view_prints_server_text_escaped(ip, server):
    server.queue(Reply(thinking=f"think {CLIPBOARD} more", answer=f"answer {CLEAR} end",
                       model=f"\x1b[31mfake-model{CLEAR}", chunk_chars=200))
    with capture_output() as captured:
        result = run_cell(ip, "%%qwen\nhello")
    assert result.error_in_exec is None
    out = captured.stdout
    assert "--- Answer ---" in out  # the terminal view printed it
    assert "\x1b" not in out and "\x07" not in out
    assert "answer \\x1b[2J\\x1b[H end" in out
    assert "think \\x1b]52;c;ZXZpbA==\\x07 more" in out
    assert "\\x1b[31mfake-model" in out
    assert ip.user_ns["_qwen"].answer == f"answer {CLEAR} end"  # the data itself is untouched


def test_an_error_message_is_escaped_in_the_traceback(ip, server):
    server.queue(Reply(error_event_at=3, error_message=f"boom{CLEAR}\rhidden"))
    with capture_output() as captured:
        result = run_cell(ip, "%%qwen\nhello")
    assert isinstance(result.error_in_exec, StreamError)
    shown = without_own_colours(captured.stdout + captured.stderr)
    assert "boom\\x1b[2J\\x1b[H\\rhidden" in shown
    assert "\x1b" not in shown and "\r" not in shown
    rendered = result.error_in_exec._render_traceback_()
    assert rendered[0].startswith("\x1b[31mStreamError\x1b[0m: ")
    assert "\x1b" not in without_own_colours("".join(rendered))
