"""Helpers shared by test modules (conftest.py is for fixtures; two conftest modules, here
and in tests/browser/, cannot both be imported by the name `conftest`)."""

from __future__ import annotations

import os
from pathlib import Path

# A distinctive fake key: tests search every byte produced for it.
FAKE_KEY = "sk-qwen-nb-TEST-KEY-3f9a1c7e5d"


def prompt_of(body) -> str:
    """The text of the last message of a request body the local server received."""
    content = body["messages"][-1]["content"]
    if isinstance(content, str):
        return content
    return "".join(part["text"] for part in content if part["type"] == "text")


def number(body) -> int:
    """The number a test prompt such as "item 7" ends with."""
    return int(prompt_of(body).split()[-1])


def run_cell(shell, source: str):
    """Run a cell; return the ExecutionResult (errors are in .error_in_exec)."""
    return shell.run_cell(source, store_history=False)


def run_notebook_with_key(cells: list[str], directory: Path, base_url: str):
    """Run code cells in a real kernel (errors allowed) against `base_url`, with the fake
    key in its environment and this checkout first on its path; returns the notebook."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    client = NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(directory)}})
    saved_env = dict(os.environ)
    os.environ.update({"QWEN_NB_BASE_URL": base_url, "QWEN_NB_API_KEY": FAKE_KEY,
                       "PYTHONPATH": str(Path(__file__).parents[1])})
    try:
        client.execute()
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
    return nb


def ssim(first, second, window: int = 7) -> float:
    """Mean structural similarity of two same-size PIL images, on luminance.

    Wang et al. (2004) with uniform 7 x 7 windows and the sample covariance, as
    scikit-image's `structural_similarity` computes by default; luminance is where text
    lives, so this measures whether it stays legible. numpy only.
    """
    import numpy as np

    x = np.asarray(first.convert("L"), np.float64)
    y = np.asarray(second.convert("L"), np.float64)
    assert x.shape == y.shape, (x.shape, y.shape)

    def box_mean(z):
        total = np.pad(z, ((1, 0), (1, 0))).cumsum(0).cumsum(1)
        w = window
        return (total[w:, w:] - total[:-w, w:] - total[w:, :-w] + total[:-w, :-w]) / (w * w)

    n = window * window
    mx, my = box_mean(x), box_mean(y)
    correction = n / (n - 1)
    vx = (box_mean(x * x) - mx * mx) * correction
    vy = (box_mean(y * y) - my * my) * correction
    cxy = (box_mean(x * y) - mx * my) * correction
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    index = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(index.mean())


class FrontEndMessages:
    """Records what qwen_nb's widgets send: opened model states and custom messages
    (install with `monkeypatch.setattr(comm, "create_comm", recorder.comm_class())`)."""

    def __init__(self) -> None:
        self.opened: list[dict] = []
        self.custom: list[dict] = []
        self.by_comm: dict[str, list[dict]] = {}

    def comm_class(self) -> type:
        import comm

        recorder = self

        class RecordingComm(comm.DummyComm):
            def publish_msg(self, msg_type, data=None, metadata=None, buffers=None, **keys):
                if msg_type == "comm_open":
                    recorder.opened.append(data["state"])
                elif msg_type == "comm_msg" and (data or {}).get("method") == "custom":
                    recorder.custom.append(data["content"])
                    recorder.by_comm.setdefault(self.comm_id, []).append(data["content"])

        return RecordingComm

    def thinking(self) -> str:
        return "".join(message.get("think", "") for message in self.custom)

    def turns(self, widget) -> list[dict]:
        """The chat's turns as qwen.js shows them (applyTurn / applyReply in qwen.js)."""
        turns: list[dict] = []
        for message in self.by_comm.get(widget.comm.comm_id if widget.comm else "", []):
            if message.get("reset"):
                turns = []
                continue
            if "sync" in message:
                turns = []
                pending = list(message["sync"])
            else:
                pending = [message]
            for item in pending:
                if "open" in item:
                    turns.append({"id": item["turn"], **item["open"], "blocks": [], "tail": "",
                                  "thinking": "", "done": False})
                    continue
                found = [t for t in turns if t["id"] == item.get("turn")]
                if not found:
                    continue
                turn = found[0]
                if item.get("drop"):
                    turns.remove(turn)
                    continue
                turn["blocks"].extend(item.get("seal", ()))
                if "tail" in item:
                    turn["tail"] = item["tail"]
                if "answer" in item:
                    turn["blocks"], turn["tail"] = [item["answer"]], ""
                turn["thinking"] += item.get("think", "")
                for key in ("label", "details", "error", "status", "done", "tab"):
                    if key in item:
                        turn[key] = item[key]
        for turn in turns:
            turn["answer"] = "".join(turn["blocks"]) + turn["tail"]
        return turns
