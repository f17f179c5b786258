"""Code in a prompt is literal: `{...}` inside code spans and fenced blocks is sent as written."""

from __future__ import annotations

import pytest
from IPython.utils.capture import capture_output
from support import run_cell

from qwen_nb._interpolate import code_spans, split_references

NAMESPACE = {"x": 42, "os": __import__("os")}


@pytest.mark.parametrize(("text", "sent"), [
    ("a `{x}` b {x}", "a `{x}` b 42"),
    ("```python\nprint(f'{x}')\n```\nNow {x}", "```python\nprint(f'{x}')\n```\nNow 42"),
    ("~~~\n{x}\n~~~~\n{x}", "~~~\n{x}\n~~~~\n42"),
    ("  ```\n{x}\n  ```\nafter {x}", "  ```\n{x}\n  ```\nafter 42"),
    ("```\nan unclosed fence runs to the end {x}", "```\nan unclosed fence runs to the end {x}"),
    ("```\n{x}\n~~~\n{x}", "```\n{x}\n~~~\n{x}"),  # a tilde line does not close backticks
    ("`` a ` {x} ``{x}", "`` a ` {x} ``42"),  # a double-backtick span holds a single one
    ("one ` backtick {x}", "one ` backtick 42"),  # no closing run: literal text
    ("\\`{x}` {x}`", "\\`42` {x}`"),  # an escaped backtick opens nothing
    ("`{{x}}` {{x}}", "`{{x}}` {x}"),  # the escape is not unescaped inside code
    ("    {x} (indented, not fenced)", "    42 (indented, not fenced)"),
])
def test_braces_in_code_are_sent_as_written(text, sent):
    assert split_references(text, NAMESPACE, lambda value: False) == [sent]


def test_code_spans_table():
    assert code_spans("no code {x}") == []
    assert code_spans("a `b` c ``d`` e") == [(2, 5), (8, 13)]
    assert code_spans("```\nx\n```\n`y`") == [(0, 10), (10, 13)]


def test_a_fenced_f_string_does_not_send_the_environment(ip, server, monkeypatch):
    monkeypatch.setenv("QWEN_NB_TEST_SECRET_VALUE", "do-not-send-me")
    ip.run_cell("import os; x = 42", store_history=False)
    cell = ('%%qwen\nWhy does this fail?\n\n```python\nprint(f"{os.environ}")\n'
            'value = {x}\n```\n\nand `{os.environ}` inline, but {x} outside.')
    with capture_output():
        result = run_cell(ip, cell)
    assert result.error_in_exec is None, result.error_in_exec
    sent = server.requests[-1].json["messages"][-1]["content"]
    assert sent == ('Why does this fail?\n\n```python\nprint(f"{os.environ}")\nvalue = {x}\n```'
                    '\n\nand `{os.environ}` inline, but 42 outside.')
    assert "do-not-send-me" not in sent


def test_an_image_name_inside_code_stays_text(ip, server):
    from PIL import Image

    ip.user_ns["photo"] = Image.new("RGB", (64, 64), "red")
    with capture_output():
        result = run_cell(ip, "%%qwen\nIn `show({photo})`, what is {photo}?")
    assert result.error_in_exec is None, result.error_in_exec
    content = server.requests[-1].json["messages"][-1]["content"]
    texts = [part["text"] for part in content if part["type"] == "text"]
    assert texts[0] == "In `show({photo})`, what is "
    assert sum(part["type"] == "image_url" for part in content) == 1
