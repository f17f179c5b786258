"""`%%qwen?` in a real IPython shell: plain text, every option, examples that run as
written, and the rules for braces and a trailing `?`."""

from __future__ import annotations

import re

import pytest
from PIL import Image
from support import run_cell


@pytest.fixture
def help_text(ip, capsys) -> str:
    capsys.readouterr()
    result = run_cell(ip, "%%qwen?\n")
    assert result.success
    return capsys.readouterr().out


def test_help_starts_with_a_plain_summary(help_text):
    body = help_text.split("Docstring:", 1)[1].lstrip("\n")
    assert body.startswith("Ask Qwen3-VL-32B-Thinking about text and images")
    assert "::" not in help_text  # IPython's reST usage block is not shown as text
    assert "%%qwen [options]" in body and "%qwen [options] PROMPT" in body
    assert "_qwen" in body


def test_help_lists_every_option_of_the_parser(ip, help_text):
    parser = ip.find_cell_magic("qwen").__self__.qwen.parser
    options = [opt for action in parser._actions for opt in action.option_strings]
    assert len(options) > 20
    for option in options:
        assert re.search(rf"(^|[\s,]){re.escape(option)}\b", help_text), option


def test_help_states_the_brace_and_question_mark_rules(help_text):
    flat = " ".join(help_text.split())
    assert "{{name}} sends a literal {name}" in flat
    assert "Braces inside `code spans` and ``` fenced code blocks are always sent" in flat
    assert "A prompt may end in ?" in flat
    assert "%qwen What is in {photo}?" in flat
    assert "Only a bare %qwen? or %%qwen? shows this help" in flat


def examples(help_text: str) -> list[str]:
    """The example cells: a `%%qwen` line (its comment column dropped) and the next line."""
    block = help_text.split("examples:\n", 1)[1].split("\n\n\n", 1)[0]
    block = block.split("writing prompts:", 1)[0]
    cells = []
    for chunk in block.strip().split("\n\n"):
        first, *rest = [line.strip() for line in chunk.splitlines()]
        cells.append(re.split(r"\s{2,}", first)[0] + "\n" + "\n".join(rest))
    return cells


def test_the_three_examples_run_as_written(ip, help_text, server):
    cells = examples(help_text)
    assert len(cells) == 3
    image, interpolation, chat = cells
    ip.user_ns.update(photo=Image.new("RGB", (64, 64), "red"),
                      chart=Image.new("RGB", (64, 64), "blue"), title="Sales 2025")
    for cell in cells:
        assert run_cell(ip, cell).success, cell
    assert run_cell(ip, chat.splitlines()[0] + "\nAnd the second day?").success

    kinds = [[part["type"] for part in request.json["messages"][-1]["content"]]
             for request in server.requests[:2]]
    assert kinds[0] == ["image_url", "text"]
    assert kinds[1] == ["text", "image_url", "text", "image_url", "text"]
    assert "Sales 2025" in server.requests[1].json["messages"][-1]["content"][4]["text"]
    continued = server.requests[3].json["messages"]
    assert [m["role"] for m in continued] == ["user", "assistant", "user"]
    assert "Kyoto" in str(continued[0]["content"])
