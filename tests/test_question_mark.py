"""`%qwen PROMPT?` sends the prompt with its question mark; `%qwen?` still shows help.

Run through a real IPython shell's `run_cell`, so IPython's own input transformation (which
reads a trailing `?` as a help request) is part of what is tested.
"""

from __future__ import annotations

import pytest
from IPython.utils.capture import capture_output
from support import run_cell


def sent_prompt(server) -> str:
    return sent_prompt_of(server.requests[-1])


@pytest.mark.parametrize(("cell", "prompt"), [
    ("%qwen What is in a typical street scene?", "What is in a typical street scene?"),
    ("%qwen --max-tokens 50 Why is the sky blue??", "Why is the sky blue??"),
    ("%qwen What is 2+2 ?  ", "What is 2+2 ?"),
    ("x = 1\nif x:\n    %qwen Is x one?\n", "Is x one?"),
    ("%%qwen\nWhat is in a typical street scene?", "What is in a typical street scene?"),
    ("%%qwen -s 'Brief?'\nWhy?", "Why?"),
    ("%%qwen --max-tokens 50\nFirst line?\nSecond line?", "First line?\nSecond line?"),
])
def test_a_question_mark_reaches_the_magic(ip, server, cell, prompt):
    with capture_output():
        result = run_cell(ip, cell)
    assert result.error_in_exec is None and result.error_before_exec is None, result
    assert len(server.requests) == 1
    assert sent_prompt(server) == prompt
    assert ip.user_ns["_qwen"].answer


@pytest.mark.parametrize("cell", ["%qwen?", "%%qwen?", "%qwen??"])
def test_the_magic_alone_with_a_question_mark_still_shows_help(ip, server, cell, monkeypatch):
    shown: list[str] = []
    monkeypatch.setattr("IPython.core.page.page", lambda data, *a, **kw: shown.append(str(data)))
    with capture_output():
        result = run_cell(ip, cell)
    assert result.error_in_exec is None
    assert shown, "IPython's help pager was asked to show something"
    assert "%qwen [options] PROMPT" in shown[0] or "def qwen(" in shown[0]
    assert server.requests == []


def test_unloading_the_extension_gives_question_marks_back_to_help(ip, server):
    transform = ip.input_transformer_manager.transform_cell
    line = "%qwen What is this?"
    assert "run_line_magic('qwen', 'What is this?')" in transform(line)
    ip.run_line_magic("unload_ext", "qwen_nb")
    try:
        assert "pinfo" in transform(line)
    finally:
        ip.run_line_magic("load_ext", "qwen_nb")
    assert "run_line_magic('qwen', 'What is this?')" in transform(line)
    ip.run_line_magic("reload_ext", "qwen_nb")  # loading again adds it once, not twice
    from qwen_nb._question_mark import keep_question_marks

    assert ip.input_transformers_cleanup.count(keep_question_marks) == 1


@pytest.mark.kernel
def test_a_question_mark_reaches_the_magic_in_a_real_kernel(server, tmp_path):
    from support import run_notebook_with_key

    nb = run_notebook_with_key(
        ["%load_ext qwen_nb", "%qwen What is in a typical street scene?", "%qwen?"],
        tmp_path, server.base_url)
    assert [sent_prompt_of(r) for r in server.requests] == ["What is in a typical street scene?"]
    assert not any(o.get("output_type") == "error" for c in nb.cells for o in c.outputs)
    assert "not found" not in str(nb.cells[1].outputs)


def sent_prompt_of(request) -> str:
    return request.json["messages"][-1]["content"]


def test_check_complete_sees_a_finished_line():
    """Terminal IPython asks check_complete on Enter: the line must run, not wait."""
    from IPython.testing.globalipapp import get_ipython

    shell = get_ipython()
    shell.run_line_magic("load_ext", "qwen_nb")
    assert shell.input_transformer_manager.check_complete("%qwen Why?")[0] == "complete"
