"""The chat panel in JupyterLab, typed into and clicked the way a person does it."""

from __future__ import annotations

import json
import time

import nbformat
import pytest
from fake_server import Reply

pytestmark = pytest.mark.browser

TYPED_KEY = "sk-typed-into-the-panel-9d2e71"


def expect():
    from playwright.sync_api import expect

    return expect


def panel_notebook(tmp_path) -> str:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(
        "import qwen_nb\npanel = qwen_nb.Panel(namespace={})\npanel")]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    path = tmp_path / "panel.ipynb"
    nbformat.write(notebook, path)
    return str(path)


def wait_for(predicate, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def test_ctrl_enter_and_shift_enter_send_and_stop_works(open_notebook, model, tmp_path,
                                                        screenshot):
    check = expect()
    model.queue(Reply(thinking="PANEL-THINKING", answer="PANEL-ANSWER-ONE"),
                Reply(answer="PANEL-ANSWER-TWO"),
                Reply(answer="slow " * 400, chunk_chars=4, chunk_delay=0.03))
    nb = open_notebook(panel_notebook(tmp_path))
    nb.run_all()
    chat = nb.cell_output(0).locator(".qwen-nb-chat")
    check(chat).to_be_visible()
    prompt = chat.locator("textarea.qwen-nb-prompt")

    prompt.click()
    prompt.type("Hello from the browser")
    prompt.press("Control+Enter")
    check(chat).to_contain_text("PANEL-ANSWER-ONE")
    assert model.requests[-1].json["messages"] == [
        {"role": "user", "content": "Hello from the browser"}]
    check(prompt).to_have_value("")
    screenshot("panel-first-turn")

    prompt.type("And again")
    prompt.press("Shift+Enter")  # sends too, and adds no newline
    check(chat).to_contain_text("PANEL-ANSWER-TWO")
    messages = model.requests[-1].json["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert messages[-1] == {"role": "user", "content": "And again"}
    assert "PANEL-THINKING" not in json.dumps(messages)

    prompt.type("Talk for a long time")
    chat.locator("button.qwen-nb-send").click()
    check(chat.locator(".qwen-nb-turn").last).to_contain_text("slow slow")
    chat.locator("button", has_text="Stop").click()
    check(chat).to_contain_text("stopped")
    assert wait_for(lambda: model.active_streams == 0), "the stream was not closed"
    screenshot("panel-stopped")


def test_typed_api_key_is_used_but_never_saved(open_notebook, model, tmp_path):
    check = expect()
    model.queue(Reply(answer="KEYED-ANSWER"))
    nb = open_notebook(panel_notebook(tmp_path))
    nb.run_all()
    chat = nb.cell_output(0).locator(".qwen-nb-chat")
    chat.locator("summary", has_text="Settings").click()
    field = chat.locator("input[type=password]")
    field.fill(TYPED_KEY)
    field.press("Enter")
    check(chat).to_contain_text("key set (in this kernel's memory only)")
    check(field).to_have_value("")
    prompt = chat.locator("textarea.qwen-nb-prompt")
    prompt.click()
    prompt.type("Who am I?")
    prompt.press("Control+Enter")
    check(chat).to_contain_text("KEYED-ANSWER")
    assert model.requests[-1].headers["Authorization"] == f"Bearer {TYPED_KEY}"
    nb.save()
    assert TYPED_KEY not in (nb.lab.root / nb.path).read_text()
