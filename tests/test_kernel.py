"""A notebook executed headless in a real kernel keeps readable, key-free outputs."""

from __future__ import annotations

import os

import nbformat
import pytest
from fake_server import Reply
from nbclient import NotebookClient
from support import FAKE_KEY

pytestmark = pytest.mark.kernel

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


def execute(cells: list[str], server, tmp_path, **env: str):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    kernel_env = {**os.environ, "QWEN_NB_BASE_URL": server.base_url,
                  "QWEN_NB_API_KEY": FAKE_KEY, "QWEN_NB_MODEL": "qwen3-vl-32b-thinking",
                  "MPLBACKEND": "Agg", **env}
    client = NotebookClient(nb, timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}},
                            allow_errors=True)
    # The kernel inherits this process's environment at start.
    os_env = dict(os.environ)
    os.environ.update(kernel_env)
    try:
        client.execute()
    finally:
        os.environ.clear()
        os.environ.update(os_env)
    path = tmp_path / "executed.ipynb"
    nbformat.write(nb, path)
    return nb, path


def qwen_outputs(cell) -> list[dict]:
    return [o for o in cell.outputs if o.get("output_type") in ("display_data",
                                                                  "execute_result")]


def test_executed_notebook_keeps_answer_and_thinking_without_widgets(server, tmp_path):
    thinking = "Step one: the square is red.\nStep two: compare."
    answer = "The square is **red**.\n\n```python\nprint('hi')\n```"
    server.queue(Reply(thinking=thinking, answer=answer, chunk_chars=4, chunk_delay=0.002))
    nb, path = execute([
        "%load_ext qwen_nb",
        "from PIL import Image\nsquare = Image.new('RGB', (64, 64), 'red')",
        "%%qwen\nWhat colour is {square}?",
        "print(_qwen.answer == " + repr(answer) + ", _qwen.thinking == " + repr(thinking) + ")",
    ], server, tmp_path)

    outputs = qwen_outputs(nb.cells[2])
    assert len(outputs) == 1, outputs
    data = outputs[0]["data"]
    # The live widget was replaced by the static bundle: nothing needs widget state.
    assert WIDGET_MIME not in data
    assert "text/html" in data and "text/plain" in data and "text/markdown" in data
    html = data["text/html"]
    assert "<strong>red</strong>" in html
    assert "Step one: the square is red." in html
    assert 'class="qwen-nb-tab"' in html and ">Thinking · " in html
    assert thinking in data["text/plain"] and "The square is **red**." in data["text/plain"]
    meta = outputs[0]["metadata"]["qwen_nb"]
    assert meta["model"] == "qwen3-vl-32b-thinking" and meta["finish_reason"] == "stop"
    assert meta["usage"]["reasoning_tokens"] > 0
    assert nb.cells[3].outputs[0]["text"].strip() == "True True"

    body = server.requests[-1].json
    assert [p["type"] for p in body["messages"][-1]["content"]] == ["text", "image_url", "text"]

    saved = path.read_text()
    assert FAKE_KEY not in saved
    # No output refers to a widget, so the saved notebook needs no widget state (nbclient
    # records the state of every model it saw, closed ones included: it ignores comm_close).
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            assert WIDGET_MIME not in output.get("data", {})


def test_failed_call_fails_the_cell_and_keeps_the_partial_reply(server, tmp_path):
    server.queue(Reply(thinking="partial thinking " * 3, answer="never", chunk_chars=6,
                       cut_after=5))
    nb, path = execute(["%load_ext qwen_nb", "%%qwen\nhello", "print('after')"],
                       server, tmp_path)
    cell = nb.cells[1]
    errors = [o for o in cell.outputs if o["output_type"] == "error"]
    assert errors and errors[0]["ename"] == "StreamError"
    # The short message, not a traceback through httpx.
    assert not any("httpx" in line for line in errors[0]["traceback"])
    shown = qwen_outputs(cell)
    assert shown and "Incomplete reply" in shown[0]["data"]["text/html"]
    assert "partial thinking" in shown[0]["data"]["text/html"]
    assert FAKE_KEY not in path.read_text()
