"""Review fixes in the features built on the core (cache, panel, display, batch, images)."""

from __future__ import annotations

import json

from fake_server import Reply

import qwen_nb
from qwen_nb.render import static_bundle

REFUSAL = "I can't help with identifying people."


def test_a_replayed_refusal_reads_as_the_original_did(server, tmp_path):
    server.queue(Reply(thinking="Hmm.", answer="", refusal=REFUSAL))
    live = qwen_nb.ask("Who is this?", cache="auto", cache_dir=tmp_path)
    assert live.refusal == REFUSAL
    replayed = qwen_nb.ask("Who is this?", cache="replay", cache_dir=tmp_path)
    assert len(server.requests) == 1 and replayed.replayed_from
    assert replayed.refusal == REFUSAL
    html = static_bundle(replayed)[0]["text/html"]
    assert "The model refused to answer" in html and "no answer text" not in html


def test_the_transport_notes_of_a_recording_are_replayed(server, tmp_path):
    # The provider refuses thinking_budget once; the client resends without it and notes it.
    server.queue(
        Reply(status=400, error_body={"error": {"message": "Unknown parameter: thinking_budget"}}),
        Reply(answer="Fine."),
    )
    live = qwen_nb.ask("Hi", cache="auto", cache_dir=tmp_path, thinking_budget=100)
    assert any("thinking_budget" in note for note in live.notes)
    replayed = qwen_nb.ask("Hi", cache="replay", cache_dir=tmp_path, thinking_budget=100)
    assert replayed.notes == live.notes


def test_an_unwritable_cache_folder_does_not_lose_a_finished_reply(server, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    server.queue(Reply(thinking="Thought.", answer="The whole answer."))
    response = qwen_nb.ask("Q?", cache="record", cache_dir=blocker / "cache")
    assert len(server.requests) == 1
    assert (response.answer, response.thinking, response.complete) == (
        "The whole answer.", "Thought.", True)
    assert any(note.startswith("not recorded") for note in response.notes)


def test_record_mode_replaces_an_unreadable_entry(server, tmp_path):
    server.queue(Reply(answer="First."))
    qwen_nb.ask("Again?", cache="record", cache_dir=tmp_path)
    [path] = tmp_path.glob("*.json")
    path.write_text("{ truncated by a bad merge")
    server.queue(Reply(answer="Second."))
    response = qwen_nb.ask("Again?", cache="record", cache_dir=tmp_path)
    assert response.answer == "Second." and not response.notes
    assert json.loads(path.read_text())["response"]["answer"] == "Second."


# -- widgets: close() must close every model it made ------------------------------------------


def open_widget_models() -> int:
    """Widget models alive in ipywidgets' registry (Layouts and Styles included), after
    the two a kernel keeps once it has shown qwen_nb's front end: the front-end model
    (qwen.js, sent once per kernel) and the Layout all qwen_nb widgets share."""
    from ipywidgets.widgets.widget import _instances

    from qwen_nb.frontend.widget import new_widget

    new_widget().close()  # opens those two the first time, nothing after
    return len(_instances)


def test_panel_close_leaves_no_widget_model_open(server):
    from PIL import Image

    from qwen_nb.panel import Panel

    before = open_widget_models()
    panel = Panel(namespace={})
    panel.attach(Image.new("RGB", (64, 48), "red"))
    panel.attach(Image.new("RGB", (48, 64), "blue"))
    panel.remove_attachment(0)  # re-rendered thumbnails must not leak either
    for prompt in ("First?", "Second?"):
        assert panel.send(prompt) and panel.wait(30)
    panel.new_chat()
    assert panel.send("Third?") and panel.wait(30)
    panel.close()
    assert open_widget_models() == before


def test_live_view_and_batch_progress_leave_no_widget_model_open(server, _global_ip):
    from qwen_nb import api
    from qwen_nb._batch import BatchResult, _WidgetProgress
    from qwen_nb._config import resolve_settings
    from qwen_nb.frontend.live import LiveView

    before = open_widget_models()
    settings = resolve_settings()
    request = api.build_request(["Hi"], model=settings.model)
    response = api.run(request, settings, LiveView())
    assert response.complete
    progress = _WidgetProgress(3)
    progress.close(BatchResult([], elapsed=0.1, interrupted=False))
    assert open_widget_models() == before


# -- images: Qwen's processors refuse sides more than 200:1 apart -----------------------------


def _sent_image_size(image) -> tuple[int, int]:
    import base64
    import io

    from PIL import Image

    data = base64.b64decode(image.url.split(",", 1)[1])
    with Image.open(io.BytesIO(data)) as opened:
        return opened.size


def test_thin_strips_are_sent_within_qwens_aspect_limit():
    import io

    import numpy as np
    from PIL import Image

    from qwen_nb.media.images import prepare_images

    # A small, well-compressed PNG strip (would be passed through as is), a 1-pixel line
    # from an array, and a tall one: none may reach the server more than 200:1.
    strip = io.BytesIO()
    Image.new("L", (5000, 20), 128).save(strip, format="PNG")
    values = [strip.getvalue(), np.linspace(0, 1, 100_000)[None, :], Image.new("RGB", (9, 4000))]
    for value in values:
        [image] = prepare_images(value, label="strip")
        width, height = _sent_image_size(image)
        assert (width, height) == image.sent_size
        assert max(width, height) <= 200 * min(width, height), image


# -- panel: Stop settles from the kernel thread while the reply thread may be drawing ---------


def test_a_draw_caught_mid_way_by_stop_does_not_paint_over_the_stopped_turn(server):
    import threading

    from fake_server import FakeServer

    from qwen_nb.panel import STOP_GRACE_SECONDS, Panel

    own = FakeServer(lifetime=120).start()
    held = threading.Event()
    own.queue(Reply(thinking="A short thought.", answer="The answer goes on. " * 40,
                    chunk_chars=200, chunk_delay=1.0, hold_answer=held))
    panel = Panel(namespace={}, base_url=own.base_url)
    try:
        assert panel.send("Go")
        reply_thread = panel._reply.thread
        drawing, release = threading.Event(), threading.Event()
        sent_messages: list[dict] = []
        original_send = panel.widget.send

        def slow_front_end(content, buffers=None):  # the reply thread is caught in a draw
            if "tail" in content and not content.get("done") and not drawing.is_set():
                drawing.set()
                release.wait(60)
            sent_messages.append(content)
            return original_send(content, buffers)

        panel.widget.send = slow_front_end
        held.set()
        assert drawing.wait(60), "the answer was never drawn"
        # The draw outlasts Stop's grace period, so Stop settles the turn itself.
        threading.Timer(STOP_GRACE_SECONDS + 2.0, release.set).start()
        panel.stop()
        release.set()
        reply_thread.join(60)
        assert not reply_thread.is_alive()
        assert "stopped" in panel.widget.status, panel.widget.status
        assert not panel.busy and not panel.last_response.complete
        # Nothing of the reply was sent after the turn's final (stopped) state.
        turn_messages = [m for m in sent_messages if m.get("turn") is not None]
        assert turn_messages[-1].get("done") is True, turn_messages[-1]
    finally:
        release.set()
        panel.close()
        own.stop()
