"""The chat panel, driven headless the way a person drives it: type, upload, click.

Every test talks to the suite's local server and asserts what the server received and
what the panel shows and holds.
"""

from __future__ import annotations

import base64
import io
import json
import time

import pytest
from fake_server import FakeServer, Reply
from support import FAKE_KEY

ipywidgets = pytest.importorskip("ipywidgets")

from qwen_nb.panel import Panel  # noqa: E402

TIMEOUT = 30.0


def png_bytes(color=(200, 30, 30), size=(128, 96), mode="RGB") -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new(mode, size, color).save(out, format="PNG")
    return out.getvalue()


def jpeg_bytes(color=(30, 90, 200), size=(96, 64)) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format="JPEG")
    return out.getvalue()


def upload_item(name: str, data: bytes, kind: str) -> dict:
    """One file as the browser sends it in FileUpload's value (JSON plus a binary buffer)."""
    return {"name": name, "type": kind, "size": len(data), "content": memoryview(data),
            "last_modified": 1_767_000_000_000}


def upload(panel: Panel, *items: dict) -> None:
    """What happens when a person picks files: the front end syncs the upload's value."""
    panel.upload.set_state({"value": list(items)})


def wait_until(predicate, timeout: float = TIMEOUT, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def image_parts(message: dict) -> list[dict]:
    content = message["content"]
    return [] if isinstance(content, str) else [p for p in content if p["type"] == "image_url"]


def decoded_size(part: dict) -> tuple[int, int]:
    from PIL import Image

    data = base64.b64decode(part["image_url"]["url"].split(",", 1)[1])
    with Image.open(io.BytesIO(data)) as image:
        return image.size


@pytest.fixture
def private_server(server, monkeypatch):
    """A server of the test's own, for replies that leave a handler sleeping (stalls,
    late first bytes) so they cannot disturb the shared server's stream count."""
    own = FakeServer(lifetime=300).start()
    monkeypatch.setenv("QWEN_NB_BASE_URL", own.base_url)
    yield own
    own.stop()


@pytest.fixture
def panel(server):
    made = Panel(namespace={})
    yield made
    made.close()


def ask(panel: Panel, text: str) -> None:
    """Type the prompt and click Send, as a person would; wait for the reply to end."""
    panel.prompt.value = text
    panel.send_button.click()
    assert panel.wait(TIMEOUT), "the reply did not end"


# -- one turn ---------------------------------------------------------------------------------


def test_send_streams_the_reply_into_the_panel(server, panel):
    server.queue(Reply(thinking="I look at the question.", answer="Hello **there**"))
    ask(panel, "  Say hello  ")
    body = server.requests[-1].json
    assert body["messages"] == [{"role": "user", "content": "Say hello"}]
    assert body["stream"] is True
    response = panel.last_response
    assert response.answer == "Hello **there**"
    assert response.thinking == "I look at the question."
    assert response.complete
    assert [tuple(turn) for turn in panel.history] == [("Say hello", 0, response)]
    # What the person sees: their question, then the same tabs the magic uses.
    (turn_box,) = panel.transcript.children
    question, _thumbs, tabs_box = turn_box.children
    assert "Say hello" in question.value
    tab = tabs_box.children[0]
    assert tab.titles == ("Answer", "Thinking", "Details")
    answer, thinking, details = tab.children
    assert "<strong>there</strong>" in answer.value
    assert "I look at the question." in thinking.value
    assert "qwen3-vl-32b-thinking" in details.value
    assert "done" in panel.status.value
    assert panel.prompt.value == ""
    assert not panel.busy
    assert not panel.send_button.disabled and panel.stop_button.disabled


def test_send_returns_at_once_and_stop_keeps_the_partial_reply(server, panel):
    full_answer = "word " * 400
    server.queue(Reply(thinking="short thought", answer=full_answer, chunk_chars=4,
                       chunk_delay=0.02))
    panel.prompt.value = "Write a long answer"
    panel.send_button.click()
    assert panel.busy  # Send returned while the reply is still on its way
    assert not panel.stop_button.disabled and panel.send_button.disabled
    assert wait_until(lambda: "word" in panel.status.value or "answering" in
                      panel.status.value), panel.status.value
    assert wait_until(lambda: "answering" in panel.status.value)
    assert "tokens" in panel.status.value
    panel.stop_button.click()
    assert panel.wait(TIMEOUT)
    assert wait_until(lambda: server.active_streams == 0), "the connection stayed open"
    response = panel.last_response
    assert not response.complete
    assert "stop" in (response.error or "")
    assert response.thinking == "short thought"
    assert 0 < len(response.answer) < len(full_answer)
    assert full_answer.startswith(response.answer)
    assert "stopped" in panel.status.value
    tab = panel.transcript.children[-1].children[2].children[0]
    assert "Incomplete" in panel.transcript.children[-1].children[2].children[1].value
    assert "word" in tab.children[0].value
    # The stopped answer is part of the conversation: the next turn carries it.
    server.queue(Reply(answer="ok"))
    ask(panel, "Go on")
    messages = server.requests[-1].json["messages"]
    assert messages[1] == {"role": "assistant", "content": response.answer}


def test_stop_wakes_a_read_blocked_on_a_silent_server(private_server, panel):
    # The server goes quiet for far longer than the test's patience: only a Stop that
    # wakes the blocked read lets the reply end in time.
    private_server.queue(Reply(thinking="a b c d e f g h", answer="never arrives",
                               chunk_chars=2, stall_after=4, stall_seconds=120))
    panel.send("Hello?")
    assert wait_until(lambda: "thinking" in panel.status.value)
    panel.stop_button.click()
    assert panel.wait(TIMEOUT)
    response = panel.last_response
    assert not response.complete and response.thinking and not response.answer
    assert "stopped" in panel.status.value


def test_stop_while_the_server_has_not_answered_yet(private_server, panel):
    private_server.queue(Reply(delay_first_byte=4.0))
    panel.prompt.value = "Anyone there?"
    panel.send_button.click()
    assert wait_until(lambda: len(private_server.requests) == 1)
    panel.stop_button.click()
    assert panel.wait(TIMEOUT)
    response = panel.last_response
    assert not response.complete and response.answer == ""
    # Nothing came back, so the prompt is back in the box for another try.
    assert panel.prompt.value == "Anyone there?"


# -- conversations ----------------------------------------------------------------------------


def test_second_turn_carries_first_answer_without_thinking_and_its_images(server, panel):
    server.queue(Reply(thinking="SECRET-TRACE of turn one", answer="A red rectangle."),
                 Reply(answer="It is 128 px wide."))
    upload(panel, upload_item("red.png", png_bytes(), "image/png"))
    assert len(panel.images) == 1
    ask(panel, "What is this?")
    first = server.requests[-1].json["messages"]
    assert len(image_parts(first[0])) == 1
    ask(panel, "How wide is it?")
    body = server.requests[-1].json
    messages = body["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert messages[0] == first[0]  # the first question, with its image, resent
    assert messages[1] == {"role": "assistant", "content": "A red rectangle."}
    assert messages[2] == {"role": "user", "content": "How wide is it?"}
    assert "SECRET-TRACE" not in json.dumps(body)
    assert decoded_size(image_parts(messages[0])[0]) == (320, 224)  # the processor minimum
    assert [turn.image_count for turn in panel.history] == [1, 0]
    # The Details tab says what the history cost (from the first turn's usage).
    notes = panel.last_response.notes
    assert any("history: ~" in note and "prompt tokens" in note for note in notes), notes
    details = panel.transcript.children[-1].children[2].children[0].children[2].value
    assert "history: ~" in details


def test_resend_images_off_sends_text_only_history(server, panel):
    server.queue(Reply(answer="Blue."), Reply(answer="Yes."))
    upload(panel, upload_item("blue.jpg", jpeg_bytes(), "image/jpeg"))
    ask(panel, "Colour?")
    panel.resend_images_field.value = False
    ask(panel, "Sure?")
    messages = server.requests[-1].json["messages"]
    assert image_parts(messages[0]) == []
    assert "Colour?" in messages[0]["content"] and "not resent" in messages[0]["content"]


def test_new_chat_starts_over(server, panel):
    server.queue(Reply(answer="One."), Reply(answer="Fresh."))
    ask(panel, "First")
    panel.new_button.click()
    assert panel.history == [] and panel.transcript.children == ()
    ask(panel, "Second")
    assert server.requests[-1].json["messages"] == [{"role": "user", "content": "Second"}]


def test_to_markdown(server, panel):
    server.queue(Reply(thinking="Hmm, blue.", answer="It is **blue**."))
    upload(panel, upload_item("b.png", png_bytes((0, 0, 255)), "image/png"))
    ask(panel, "Colour?")
    text = panel.to_markdown()
    assert "> Colour?" in text and "(1 image)" in text and "It is **blue**." in text
    assert "Hmm, blue." not in text
    assert "Hmm, blue." in panel.to_markdown(thinking=True)


# -- images -----------------------------------------------------------------------------------


def test_upload_png_jpeg_and_a_corrupt_file(server, panel):
    upload(
        panel,
        upload_item("chart.png", png_bytes(size=(160, 96)), "image/png"),
        upload_item("photo.jpg", jpeg_bytes(size=(96, 64)), "image/jpeg"),
        upload_item("broken.png", b"\x89PNG\r\n\x1a\n this is not really a PNG", "image/png"))
    assert [item.label for item in panel.attachments] == ["chart.png", "photo.jpg"]
    assert "broken.png" in panel.notice.value
    assert "chart.png" not in panel.notice.value
    assert panel.upload.value == ()  # the bytes are not kept in widget state
    assert len(panel.thumbnails.children) == 2
    thumb = panel.thumbnails.children[0].children[0].children[0]
    assert isinstance(thumb, ipywidgets.Image)
    assert thumb.value[:4] in (b"\x89PNG", b"\xff\xd8\xff\xe0")
    ask(panel, "Compare them")
    message = server.requests[-1].json["messages"][-1]
    parts = message["content"]
    assert [p["type"] for p in parts] == ["image_url", "image_url", "text"]
    assert [decoded_size(p) for p in parts[:2]] == [(352, 224), (320, 224)]
    assert panel.history[-1].image_count == 2
    assert panel.thumbnails.children == ()  # sent: the attachments are cleared


def test_namespace_picker_add_and_remove(server):
    from PIL import Image

    np = pytest.importorskip("numpy")
    namespace = {"photo": Image.new("RGB", (40, 30), "green"),
                 "array": np.zeros((32, 32, 3), dtype=np.uint8), "n": 3, "text": "hello",
                 "_private": Image.new("RGB", (8, 8))}
    panel = Panel(namespace=namespace)
    try:
        assert list(panel.picker.options) == ["array", "photo"]
        panel.picker.value = "photo"
        panel.add_button.click()
        panel.picker.value = "array"
        panel.add_button.click()
        assert [item.label for item in panel.attachments] == ["photo", "array"]
        remove = panel.thumbnails.children[0].children[1].children[1]
        remove.click()
        assert [item.label for item in panel.attachments] == ["array"]
        namespace["later"] = Image.new("RGB", (20, 20), "blue")
        namespace["gone"] = "no/such/picture.png"  # looks like an image path; is not there
        panel.refresh_button.click()
        assert "later" in panel.picker.options
        panel.add_variable("gone")
        assert "picture.png" in panel.notice.value
        assert [item.label for item in panel.attachments] == ["array"]
        server.queue(Reply(answer="An array."))
        ask(panel, "What is it?")
        assert len(image_parts(server.requests[-1].json["messages"][-1])) == 1
    finally:
        panel.close()


# -- errors -----------------------------------------------------------------------------------


def test_error_shows_in_panel_and_keeps_prompt_and_images(server, panel):
    server.queue(Reply(status=401, error_body={"error": {"message": "Invalid key"}}))
    upload(panel, upload_item("a.png", png_bytes(), "image/png"))
    ask(panel, "Describe")
    assert "AuthenticationError" in panel.notice.value and "Invalid key" in panel.notice.value
    assert panel.prompt.value == "Describe"
    assert len(panel.images) == 1
    assert not panel.busy and not panel.send_button.disabled
    assert panel.last_response.error and not panel.last_response.complete
    assert len(panel.conversation) == 0
    # Fixed: resend, and the same question and image go.
    server.queue(Reply(answer="Fine now."))
    panel.send_button.click()
    assert panel.wait(TIMEOUT)
    messages = server.requests[-1].json["messages"]
    assert len(messages) == 1 and len(image_parts(messages[0])) == 1
    assert panel.last_response.answer == "Fine now."
    assert panel.notice.value == ""


def test_stream_cut_midway_is_an_error_with_partial_text(server, panel):
    server.queue(Reply(answer="partial answer that never ends", chunk_chars=5, cut_after=6))
    ask(panel, "Go")
    response = panel.last_response
    assert not response.complete and response.thinking
    assert "StreamError" in panel.notice.value
    assert panel.prompt.value == "Go"


def test_connection_refused_is_readable(server, panel, monkeypatch):
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("QWEN_NB_BASE_URL", f"http://127.0.0.1:{port}/v1")
    monkeypatch.setenv("QWEN_NB_MAX_ATTEMPTS", "1")
    ask(panel, "Hello?")
    assert "APIConnectionError" in panel.notice.value
    assert panel.prompt.value == "Hello?"


def test_bad_setting_is_refused_before_sending(server, panel):
    panel.temperature_field.value = "warm"
    panel.prompt.value = "Hi"
    panel.send_button.click()
    assert not panel.busy
    assert "Temperature" in panel.notice.value and "warm" in panel.notice.value
    assert server.requests == []
    panel.prompt.value = "   "
    panel.temperature_field.value = ""
    panel.send_button.click()
    assert "empty" in panel.notice.value and server.requests == []


def test_settings_reach_the_request(server, panel):
    panel.model_field.value = "my-model"
    panel.temperature_field.value = "0.3"
    panel.max_tokens_field.value = "500"
    panel.thinking_budget_field.value = "200"
    panel.system_field.value = "Be brief."
    server.queue(Reply(answer="Ok."))
    ask(panel, "Hi")
    body = server.requests[-1].json
    assert body["model"] == "my-model"
    assert body["temperature"] == 0.3 and body["max_tokens"] == 500
    assert body["thinking_budget"] == 200
    assert body["messages"][0] == {"role": "system", "content": "Be brief."}


# -- the API key ------------------------------------------------------------------------------


def test_api_key_field_is_emptied_and_the_key_stays_in_memory(server, panel, monkeypatch):
    monkeypatch.delenv("QWEN_NB_API_KEY")
    monkeypatch.setenv("QWEN_NB_PROVIDER", "aimlapi")
    panel.prompt.value = "Hi"
    panel.send_button.click()
    assert "No API key" in panel.notice.value and server.requests == []
    panel.api_key_field.value = FAKE_KEY  # what the front end sends on Enter
    assert panel.api_key_field.value == ""
    assert "key set (in memory)" in panel.key_status.value
    server.queue(Reply(answer="Authorized."))
    panel.send_button.click()
    assert panel.wait(TIMEOUT)
    assert server.requests[-1].headers["Authorization"] == f"Bearer {FAKE_KEY}"
    assert panel.last_response.answer == "Authorized."
    # Nothing a notebook could save holds the key: widget state, reprs, the transcript.
    state = ipywidgets.Widget.get_manager_state(drop_defaults=False)
    assert FAKE_KEY not in json.dumps(state, default=str)
    assert FAKE_KEY not in repr(panel) + repr(panel._repr_mimebundle_())
    assert FAKE_KEY not in panel.to_markdown(thinking=True)


# -- concurrency and closing ------------------------------------------------------------------


def test_two_panels_stream_at_once(server):
    server.reply_fn = lambda body: Reply(answer="slow " * 200, chunk_chars=5, chunk_delay=0.02)
    first, second = Panel(namespace={}), Panel(namespace={})
    try:
        first.send("One?")
        second.send("Two?")
        assert wait_until(lambda: server.active_streams == 2), "not both streaming"
        assert first.busy and second.busy
        assert first.wait(TIMEOUT) and second.wait(TIMEOUT)
        assert first.last_response.complete and second.last_response.complete
        asked = sorted(r.json["messages"][-1]["content"] for r in server.requests)
        assert asked == ["One?", "Two?"]
    finally:
        first.close()
        second.close()


def test_close_stops_the_stream_and_closes_widgets(server):
    server.queue(Reply(answer="never ending " * 200, chunk_chars=4, chunk_delay=0.02))
    panel = Panel(namespace={})
    panel.send("Talk")
    assert wait_until(lambda: server.active_streams == 1)
    panel.close()
    assert not panel.busy
    assert wait_until(lambda: server.active_streams == 0)
    assert panel.widget.comm is None and panel.prompt.comm is None
    assert not panel.last_response.complete
    with pytest.raises(Exception, match="closed"):
        panel.send("again")


def test_busy_panel_refuses_a_second_send(server, panel):
    server.queue(Reply(answer="slow " * 100, chunk_chars=4, chunk_delay=0.02))
    panel.send("First")
    assert panel.busy
    assert panel.send("Second") is False
    assert "on its way" in panel.notice.value
    # Stop only once the first request is at the server: stopping earlier rightly sends
    # nothing at all, which would not show that "Second" was never sent.
    assert wait_until(lambda: len(server.requests) == 1)
    panel.stop()
    assert panel.wait(TIMEOUT)
    assert len(server.requests) == 1
    sent = json.dumps(server.requests[0].json)
    assert "First" in sent and "Second" not in sent


def test_offline_provider(monkeypatch):
    pytest.importorskip("qwen_nb.offline")
    monkeypatch.setenv("QWEN_NB_PROVIDER", "offline")
    panel = Panel(namespace={})
    try:
        panel.attach(png_bytes(), label="red")
        ask(panel, "What colour?")
        response = panel.last_response
        assert response.complete and response.answer
        assert panel.history[0].image_count == 1
    finally:
        panel.close()
