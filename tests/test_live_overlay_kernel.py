"""The live `%%qwen` view in a real kernel draws grounding boxes while the reply streams.

What the front end receives is read off the kernel's IOPub channel: the overlay messages
(kernel-drawn data: images: the photo once,
then transparent layers of marks) come before the reply ends, grow as boxes complete, and the
static output replaces the view at the end; a reply without boxes sends none.
"""

from __future__ import annotations

import os

import pytest
from fake_server import Reply
from support import FAKE_KEY
from test_live_overlay import BOXES, GROUNDING, marks
from test_panel_kernel import Kernel

pytestmark = pytest.mark.kernel

SETUP = ("%load_ext qwen_nb\nfrom PIL import Image\n"
         "photo = Image.new('RGB', (800, 600), (40, 120, 40))\nprint('ready')")


def custom_messages(messages: list[dict]) -> list[tuple[int, dict]]:
    """(position in IOPub, content) of each message qwen_nb's widgets sent."""
    found = []
    for position, message in enumerate(messages):
        data = message["content"].get("data", {}) if message["msg_type"] == "comm_msg" else {}
        if data.get("method") == "custom":
            found.append((position, data["content"]))
    return found


def final_update(messages: list[dict]) -> tuple[int, dict]:
    """The static bundle that replaced the live view (its display handle's update)."""
    updates = [(position, message["content"]) for position, message in enumerate(messages)
               if message["msg_type"] == "update_display_data"]
    assert updates, "the live view was never replaced"
    return updates[-1]


def test_boxes_appear_in_the_live_view_while_the_reply_streams(server):
    env = {**os.environ, "QWEN_NB_BASE_URL": server.base_url, "QWEN_NB_API_KEY": FAKE_KEY,
           "QWEN_NB_MODEL": "qwen3-vl-32b-thinking", "MPLBACKEND": "Agg"}
    kernel = Kernel(env)
    try:
        assert kernel.run(SETUP) == "ready"
        server.queue(Reply(thinking="Looking for cats.", answer=GROUNDING, chunk_chars=6,
                           chunk_delay=0.04))
        kernel.iopub.clear()
        kernel.run('%%qwen -i photo --ground "cat"\nFind the cats.')
        grounding = list(kernel.iopub)
        sent = custom_messages(grounding)
        overlays = [(position, content["overlay"]) for position, content in sent
                    if "overlay" in content]
        assert len(overlays) >= 2, "the overlay was not updated while the boxes arrived"
        counts = [marks(figures) for _, figures in overlays]
        assert counts == sorted(counts) and len(set(counts)) == len(counts)
        assert counts[0] < len(BOXES)  # shown before the last box had arrived
        pictures = [part["base"] for _, parts in overlays for part in parts if "base" in part]
        assert len(pictures) == 1  # the photo travels once, then only layers of marks
        for _, parts in overlays:
            for part in parts:
                assert all(part[key].startswith("data:image/png;base64,")
                           for key in ("base", "layer") if key in part)
        # Answer text kept streaming after the first overlay, then the static output came.
        first_overlay = overlays[0][0]
        assert any(position > first_overlay and ("tail" in content or "seal" in content)
                   for position, content in sent)
        position, final = final_update(grounding)
        assert position > overlays[-1][0]
        assert f"with {len(BOXES)} marks drawn" in final["data"]["text/html"]  # every box

        # The same answer with no image to draw on, and a plain answer about the photo:
        # no overlay is sent.
        server.queue(Reply(answer=GROUNDING, chunk_chars=6, chunk_delay=0.005),
                     Reply(answer="A green picture {with braces}. " * 20, chunk_chars=6))
        kernel.iopub.clear()
        kernel.run("%%qwen\nFind the cats.")
        kernel.run("%%qwen -i photo\nDescribe it.")
        plain = custom_messages(kernel.iopub)
        assert plain and not [content for _, content in plain if "overlay" in content]
        assert FAKE_KEY not in repr(grounding) + repr(kernel.iopub)
    finally:
        kernel.shutdown()
