"""The panel in a real Jupyter kernel: the reply streams in a background thread, so other
cells run meanwhile, and Stop (sent as the browser sends it) ends the stream.

The test plays the browser: it types into the prompt and clicks the buttons with the same
comm messages the widget front end sends.
"""

from __future__ import annotations

import os
import queue
import time

import pytest
from fake_server import Reply
from support import FAKE_KEY

pytestmark = pytest.mark.kernel

jupyter_client = pytest.importorskip("jupyter_client")

TIMEOUT = 60.0


class Kernel:
    """A real kernel with a blocking client, and the few things this test needs."""

    def __init__(self, env: dict[str, str]) -> None:
        from jupyter_client.manager import start_new_kernel

        self.manager, self.client = start_new_kernel(kernel_name="python3", env=env,
                                                     startup_timeout=TIMEOUT)
        self.iopub: list[dict] = []

    def run(self, code: str) -> str:
        """Execute a cell; its stdout (raises if the cell failed)."""
        out: list[str] = []
        errors: list[str] = []

        def collect(msg: dict) -> None:
            self.iopub.append(msg)
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                out.append(content["text"])
            elif kind == "error":
                errors.append("\n".join(content["traceback"]))

        reply = self.client.execute_interactive(code, timeout=TIMEOUT, output_hook=collect)
        assert reply["content"]["status"] == "ok" and not errors, errors
        return "".join(out).strip()

    def comm(self, comm_id: str, data: dict) -> None:
        """Send what the widget front end sends (a state update or a click)."""
        message = self.client.session.msg("comm_msg", {"comm_id": comm_id, "data": data})
        self.client.shell_channel.send(message)

    def drain(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                self.iopub.append(self.client.get_iopub_msg(timeout=0.1))
            except queue.Empty:
                pass

    def shutdown(self) -> None:
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)


def wait_for(kernel: Kernel, expression: str, expected: str, timeout: float = TIMEOUT) -> str:
    deadline = time.monotonic() + timeout
    value = ""
    while time.monotonic() < deadline:
        value = kernel.run(f"print({expression})")
        if value == expected:
            return value
        time.sleep(0.2)
    return value


def test_cells_run_while_the_panel_streams_and_stop_ends_it(server):
    full_answer = "word " * 400
    server.queue(Reply(thinking="thinking a little", answer=full_answer, chunk_chars=4,
                       chunk_delay=0.03))
    env = {**os.environ, "QWEN_NB_BASE_URL": server.base_url, "QWEN_NB_API_KEY": FAKE_KEY,
           "QWEN_NB_MODEL": "qwen3-vl-32b-thinking"}
    kernel = Kernel(env)
    try:
        panel_id = kernel.run("import qwen_nb\n"
                              "panel = qwen_nb.Panel(namespace={})\n"
                              "print(panel.widget.model_id)").strip()
        # Type (qwen.js syncs the draft), then click Send (a custom message).
        kernel.comm(panel_id, {"method": "update", "state": {"prompt": "Tell me a story"},
                               "buffer_paths": []})
        kernel.comm(panel_id, {"method": "custom", "content": {"action": "send",
                                                               "prompt": "Tell me a story"}})
        assert wait_for(kernel, "panel.busy", "True") == "True"

        # Another cell runs to completion while the reply is still streaming.
        assert kernel.run("print(sum(range(10)), panel.busy)") == "45 True"
        kernel.drain(1.0)
        # The reply thread's turn messages reached the front end while the kernel was free.
        updates = [m for m in kernel.iopub if m["msg_type"] == "comm_msg"
                   and "word" in str(m["content"]["data"].get("content", {}).get("tail", ""))]
        assert updates, "no live answer updates were sent to the front end"

        kernel.comm(panel_id, {"method": "custom", "content": {"action": "stop"}})
        assert wait_for(kernel, "panel.busy", "False") == "False"
        result = kernel.run("r = panel.last_response\n"
                            "print(r.complete, 0 < len(r.answer) < " + str(len(full_answer))
                            + ", 'stopped' in panel.widget.status)")
        assert result == "False True True"
        deadline = time.monotonic() + TIMEOUT
        while server.active_streams and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.active_streams == 0
        assert server.requests[-1].json["messages"] == [{"role": "user",
                                                         "content": "Tell me a story"}]
        # Nothing the front end received carries the key.
        assert FAKE_KEY not in repr(kernel.iopub)
    finally:
        kernel.shutdown()


def test_saved_panel_transcript_exports_as_markdown_per_turn(server, tmp_path):
    """A panel notebook run by a real kernel, saved, then plain `jupyter nbconvert --to
    markdown`: each turn's prompt, answer and folded thinking, in order, as Markdown (the
    slots carry qwen_nb's mark), with no stylesheet and nothing from the empty slots."""
    import re

    from test_export import nbconvert
    from test_kernel import execute

    server.queue(Reply(thinking="FIRST-THOUGHT", answer="FIRST-ANSWER **bold**"),
                 Reply(thinking="SECOND-THOUGHT", answer="SECOND-ANSWER"))
    _, path = execute(["import qwen_nb\npanel = qwen_nb.Panel(namespace={}, cache='off')\n"
                       "panel",
                       "panel.send('FIRST-PROMPT'); assert panel.wait(60)",
                       "panel.send('SECOND-PROMPT'); assert panel.wait(60)"], server, tmp_path)
    text = nbconvert(path, "markdown")
    marks = ["FIRST-PROMPT", "FIRST-ANSWER **bold**", "FIRST-THOUGHT",
             "SECOND-PROMPT", "SECOND-ANSWER", "SECOND-THOUGHT"]
    assert [text.index(mark) for mark in marks] == sorted(text.index(m) for m in marks)
    assert "> FIRST-PROMPT" in text and "> SECOND-PROMPT" in text
    assert len(re.findall(r"<details><summary>Thinking[^<]*</summary>\s*<pre>\w+-THOUGHT",
                          text)) == 2
    assert "<style" not in text and "qwen-nb-slot" not in text and "qwen-nb-tab" not in text
