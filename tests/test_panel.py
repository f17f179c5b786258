"""The chat panel, driven headless the way a person drives it: type, upload, click.

The page's actions reach the kernel as custom messages (what qwen.js sends), so the tests
send those same messages to the panel's widget; what the panel shows is read back from the
messages it sends (`FrontEndMessages.turns`, which applies them as qwen.js does) and its
synced state. Every test talks to the suite's local server and asserts what the server
received and what the panel shows and holds.
"""

from __future__ import annotations

import base64
import io
import json
import time

import pytest
from fake_server import FakeServer, Reply
from support import FAKE_KEY, FrontEndMessages

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


def upload_item(name: str, data: bytes, kind: str) -> tuple[str, bytes]:
    return name, data


def press(panel: Panel, action: str, buffers: list[bytes] | None = None, **content) -> None:
    """What qwen.js sends when a person clicks, presses a key or picks files."""
    panel.widget._handle_custom_msg({"action": action, **content}, buffers or [])


def upload(panel: Panel, *items: tuple[str, bytes]) -> None:
    """Files picked in the page: names in the message, bytes as its binary buffers."""
    press(panel, "upload", [data for _, data in items], names=[name for name, _ in items])


def type_prompt(panel: Panel, text: str) -> None:
    panel.widget.prompt = text  # qwen.js syncs the draft as it is typed


def click_send(panel: Panel) -> None:
    press(panel, "send", prompt=panel.widget.prompt)


def type_setting(panel: Panel, name: str, value) -> None:
    panel.widget.settings = {**panel.widget.settings, name: value}


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
def sent(monkeypatch):
    import comm

    recorder = FrontEndMessages()
    monkeypatch.setattr(comm, "create_comm", recorder.comm_class())
    return recorder


@pytest.fixture
def panel(server, sent):
    made = Panel(namespace={})
    yield made
    made.close()


def ask(panel: Panel, text: str) -> None:
    """Type the prompt and click Send, as a person would; wait for the reply to end."""
    type_prompt(panel, text)
    click_send(panel)
    assert panel.wait(TIMEOUT), "the reply did not end"


# -- one turn ---------------------------------------------------------------------------------


def test_send_streams_the_reply_into_the_panel(server, panel, sent):
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
    (turn,) = sent.turns(panel.widget)
    assert turn["prompt"] == "  Say hello  " and turn["done"]
    assert "<strong>there</strong>" in turn["answer"]
    assert turn["thinking"] == "I look at the question."  # appended as text, exact
    assert "qwen3-vl-32b-thinking" in turn["details"]
    assert turn["label"].startswith("Thinking · ")
    assert "done" in panel.widget.status
    assert panel.widget.prompt == ""
    assert not panel.busy
    assert not panel.widget.busy
    # The saved copy of the conversation holds the turn too (text/html, Markdown, text).
    saved = panel._repr_mimebundle_()
    assert "Say hello" in saved["text/html"] and "<strong>there</strong>" in saved["text/html"]
    assert "Hello **there**" in saved["text/markdown"]


def test_send_returns_at_once_and_stop_keeps_the_partial_reply(server, panel, sent):
    full_answer = "word " * 400
    server.queue(Reply(thinking="short thought", answer=full_answer, chunk_chars=4,
                       chunk_delay=0.02))
    type_prompt(panel, "Write a long answer")
    click_send(panel)
    assert panel.busy  # Send returned while the reply is still on its way
    assert panel.widget.busy  # the page disables Send and enables Stop
    assert wait_until(lambda: "word" in (sent.turns(panel.widget) or [{}])[-1].get("tail", ""))
    press(panel, "stop")
    assert panel.wait(TIMEOUT)
    assert wait_until(lambda: server.active_streams == 0), "the connection stayed open"
    response = panel.last_response
    assert not response.complete
    assert "stop" in (response.error or "")
    assert response.thinking == "short thought"
    assert 0 < len(response.answer) < len(full_answer)
    assert full_answer.startswith(response.answer)
    assert "stopped" in panel.widget.status
    turn = sent.turns(panel.widget)[-1]
    assert "Incomplete" in turn["error"] and "word" in turn["answer"]
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
    assert wait_until(lambda: len(private_server.requests) == 1)
    time.sleep(0.5)
    press(panel, "stop")
    assert panel.wait(TIMEOUT)
    response = panel.last_response
    assert not response.complete and response.thinking and not response.answer
    assert "stopped" in panel.widget.status


def test_stop_while_the_server_has_not_answered_yet(private_server, panel):
    private_server.queue(Reply(delay_first_byte=4.0))
    type_prompt(panel, "Anyone there?")
    click_send(panel)
    assert wait_until(lambda: len(private_server.requests) == 1)
    press(panel, "stop")
    assert panel.wait(TIMEOUT)
    response = panel.last_response
    assert not response.complete and response.answer == ""
    # Nothing came back, so the prompt is back in the box for another try.
    assert panel.widget.prompt == "Anyone there?"


# -- conversations ----------------------------------------------------------------------------


def test_second_turn_carries_first_answer_without_thinking_and_its_images(server, panel,
                                                                          sent):
    server.queue(Reply(thinking="SECRET-TRACE of turn one", answer="A red rectangle."),
                 Reply(answer="It is 128 px wide."))
    upload(panel, upload_item("red.png", png_bytes(), "image/png"))
    assert len(panel.images) == 1
    ask(panel, "What is this?")
    first = server.requests[-1].json["messages"]
    assert len(image_parts(first[0])) == 1
    # The saved transcript shows the image once (in the turn's tabs), not twice.
    saved = panel._repr_mimebundle_()["text/html"]
    assert saved.count("<img") == 1 and '<div class="qwen-nb-thumbs"><img' in saved
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
    turns = sent.turns(panel.widget)
    assert "history: ~" in turns[-1]["details"]
    assert turns[0]["images"] == 1 and turns[0]["thumbs"][0].startswith("data:image/")


def test_resend_images_off_sends_text_only_history(server, panel):
    server.queue(Reply(answer="Blue."), Reply(answer="Yes."))
    upload(panel, upload_item("blue.jpg", jpeg_bytes(), "image/jpeg"))
    ask(panel, "Colour?")
    type_setting(panel, "resend_images", False)
    ask(panel, "Sure?")
    messages = server.requests[-1].json["messages"]
    assert image_parts(messages[0]) == []
    assert "Colour?" in messages[0]["content"] and "not resent" in messages[0]["content"]


def test_new_chat_starts_over(server, panel, sent):
    server.queue(Reply(answer="One."), Reply(answer="Fresh."))
    ask(panel, "First")
    press(panel, "new_chat")
    assert panel.history == [] and sent.turns(panel.widget) == []
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


def test_saved_transcript_carries_one_stylesheet_and_the_widget_no_words(server, panel):
    from qwen_nb.render import STYLE

    server.queue(Reply(answer="One."), Reply(answer="Two."), Reply(answer="Three."))
    for prompt in ("First", "Second", "Third"):
        ask(panel, prompt)
    saved = panel._repr_mimebundle_()["text/html"]
    assert saved.count("<style") == 1, "one stylesheet per transcript, not one per turn"
    assert saved.count('data-qwen-nb="static"') == 3
    # The static tabs' rules are all there, plus the rule that hides the dead widget.
    style = saved[:saved.index("</style>")]
    assert STYLE.removesuffix("</style>") in style and ":not([data-mime-type])" in style
    # Where the chat cannot show, its output adds nothing beside the transcript.
    bundle, _ = panel.widget._repr_mimebundle_()
    assert bundle["text/plain"] == ""
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == \
        panel.widget.model_id


def test_saved_transcript_reads_in_order_with_styles_stripped(server, panel):
    """As GitHub shows it (no <style>): each prompt, its answer, then its folded thinking."""
    import re

    server.queue(Reply(thinking="FIRST-THOUGHT", answer="FIRST-ANSWER"),
                 Reply(thinking="SECOND-THOUGHT", answer="SECOND-ANSWER"))
    ask(panel, "FIRST-PROMPT")
    ask(panel, "SECOND-PROMPT")
    bare = re.sub(r"<style>.*?</style>", "", panel._repr_mimebundle_()["text/html"],
                  flags=re.S)
    marks = ["FIRST-PROMPT", "FIRST-ANSWER", "FIRST-THOUGHT",
             "SECOND-PROMPT", "SECOND-ANSWER", "SECOND-THOUGHT"]
    assert [bare.index(mark) for mark in marks] == sorted(bare.index(m) for m in marks)
    for thought in ("FIRST-THOUGHT", "SECOND-THOUGHT"):
        before = bare[:bare.index(thought)]
        assert before.rfind("<details") > before.rfind("</details>"), "thinking is folded"


def transcript_sends(captured) -> list[tuple[int, dict]]:
    """(slot, bundle) of each transcript display or update the shell published, in order."""
    sends = []
    for output in captured.outputs:
        display_id = output.transient.get("display_id", "")
        if display_id.startswith("qwen-nb-chat-"):
            sends.append((int(display_id.rsplit("-", 1)[1]), output.data))
    return sends


@pytest.fixture
def shown(ip, panel):
    """The panel displayed in a real IPython shell, every display message it publishes
    recorded in `shown.outputs` (what a kernel sends on IOPub)."""
    from IPython.display import display
    from IPython.utils.capture import capture_output

    with capture_output(stdout=False, stderr=False) as captured:
        display(panel)
        yield captured


def test_shown_transcript_is_slots_and_each_turn_sends_only_its_own(server, panel, shown):
    from qwen_nb.frontend.chat import EMPTY_SLOT, EMPTY_TRANSCRIPT, TRANSCRIPT_SLOTS

    first = transcript_sends(shown)
    assert [slot for slot, _ in first] == list(range(TRANSCRIPT_SLOTS))
    assert not any(output.update for output in shown.outputs)
    # Each slot carries qwen_nb's mark: `nbconvert --to markdown` takes its Markdown.
    assert [output.metadata for output in shown.outputs if output.transient] == [
        {"qwen_nb": {"transcript_slot": n}} for n in range(TRANSCRIPT_SLOTS)]
    assert first[0][1]["text/plain"] == EMPTY_TRANSCRIPT and "<style" in first[0][1]["text/html"]
    # Slots without turns are empty in every mimetype: nothing shows, even without styles.
    assert all(bundle == EMPTY_SLOT for _, bundle in first[1:])
    assert EMPTY_SLOT["text/html"] == '<div class="qwen-nb-transcript qwen-nb-slot"></div>'
    sizes = []
    for number in range(1, 6):
        server.queue(Reply(thinking=f"THOUGHT-{number} " * 50, answer=f"ANSWER-{number} " * 200))
        ask(panel, f"PROMPT-{number}")
        sends = transcript_sends(shown)[len(first) + number - 1:]
        (slot, bundle), = sends  # one turn, one slot sent: the one holding it
        assert slot == number - 1
        assert f"ANSWER-{number}" in bundle["text/html"]
        assert f"PROMPT-{number}" in bundle["text/markdown"]
        assert f"[{number}] You: PROMPT-{number}" in bundle["text/plain"]
        assert not any(f"ANSWER-{k}" in json.dumps(bundle) for k in range(1, 6) if k != number)
        assert (bundle["text/html"].count("<style") == 1) == (number == 1)
        sizes.append(len(json.dumps(bundle)))
    # The 5th turn costs what the 2nd did (one turn, no stylesheet): it does not grow.
    assert sizes[4] < sizes[1] * 1.2, sizes
    # All the slots, in order, read as the one saved bundle does: each prompt, answer, thinking.
    latest = dict(transcript_sends(shown))
    html = "".join(latest[n]["text/html"] for n in range(TRANSCRIPT_SLOTS))
    markdown = "\n\n".join(latest[n]["text/markdown"] for n in range(TRANSCRIPT_SLOTS))
    marks = [f"{kind}-{n}" for n in range(1, 6) for kind in ("PROMPT", "ANSWER", "THOUGHT")]
    for text in (html, markdown):
        assert [text.index(m) for m in marks] == sorted(text.index(m) for m in marks)
    assert markdown.count("\n---\n") == 4  # a rule between turns, none before the first
    assert html.count("<style") == 1 and html.count('data-qwen-nb="static"') == 5


def test_turns_past_the_slots_go_into_the_last_one(server, panel, shown):
    from qwen_nb.frontend.chat import TRANSCRIPT_SLOTS

    count = TRANSCRIPT_SLOTS + 1
    server.queue(*[Reply(answer=f"ANSWER-{n}.") for n in range(1, count + 1)])
    for number in range(1, count + 1):
        ask(panel, f"PROMPT-{number}")
    last = transcript_sends(shown)[-2:]
    assert [slot for slot, _ in last] == [TRANSCRIPT_SLOTS - 1] * 2  # the last two turns
    text = last[-1][1]["text/plain"]
    assert f"ANSWER-{count - 1}." in text and f"ANSWER-{count}." in text
    assert f"ANSWER-{count - 2}." not in text
    assert text.index(f"[{count - 1}] You") < text.index(f"[{count}] You")


def test_regenerate_and_new_chat_send_only_the_slots_that_change(server, panel, shown):
    from qwen_nb.frontend.chat import EMPTY_SLOT, EMPTY_TRANSCRIPT

    server.queue(Reply(answer="ONE."), Reply(answer="TWO-first."), Reply(answer="TWO-again."))
    ask(panel, "First")
    ask(panel, "Second")
    start = len(transcript_sends(shown))
    press(panel, "regenerate")
    assert panel.wait(TIMEOUT)
    sends = transcript_sends(shown)[start:]
    # Dropped (the slot empties), then the new reply in the same slot; slot 0 untouched.
    assert [slot for slot, _ in sends] == [1, 1]
    assert sends[0][1] == EMPTY_SLOT and "TWO-again." in sends[1][1]["text/html"]
    start = len(transcript_sends(shown))
    press(panel, "new_chat")
    sends = dict(transcript_sends(shown)[start:])
    assert sorted(sends) == [0, 1]  # the others were empty already
    assert sends[0]["text/plain"] == EMPTY_TRANSCRIPT and sends[1] == EMPTY_SLOT


def test_empty_slots_are_hidden_live_and_reopened():
    """The rule hiding an empty slot's output is in the transcript's own stylesheet (a
    notebook reopened without the kernel) and in qwen.css (the live page)."""
    from importlib.resources import files

    from qwen_nb.frontend.chat import EMPTY_SLOT_CSS, transcript_style

    assert EMPTY_SLOT_CSS in transcript_style()
    assert EMPTY_SLOT_CSS in (files("qwen_nb.frontend") / "qwen.css").read_text()
    assert ".qwen-nb-slot:empty" in EMPTY_SLOT_CSS


# -- images -----------------------------------------------------------------------------------


def test_upload_png_jpeg_and_a_corrupt_file(server, panel):
    upload(
        panel,
        upload_item("chart.png", png_bytes(size=(160, 96)), "image/png"),
        upload_item("photo.jpg", jpeg_bytes(size=(96, 64)), "image/jpeg"),
        upload_item("broken.png", b"\x89PNG\r\n\x1a\n this is not really a PNG", "image/png"))
    assert [item.label for item in panel.attachments] == ["chart.png", "photo.jpg"]
    assert "broken.png" in panel.widget.notice
    assert "chart.png" not in panel.widget.notice
    thumbs = panel.widget.attachments  # what the page shows: label and a small image
    assert [item["label"] for item in thumbs] == ["chart.png", "photo.jpg"]
    data = base64.b64decode(thumbs[0]["src"].split(",", 1)[1])
    assert data[:4] in (b"\x89PNG", b"\xff\xd8\xff\xe0") and len(data) < 20_000
    ask(panel, "Compare them")
    message = server.requests[-1].json["messages"][-1]
    parts = message["content"]
    assert [p["type"] for p in parts] == ["image_url", "image_url", "text"]
    assert [decoded_size(p) for p in parts[:2]] == [(352, 224), (320, 224)]
    assert panel.history[-1].image_count == 2
    assert panel.widget.attachments == []  # sent: the attachments are cleared


def test_namespace_picker_add_and_remove(server, sent):
    from PIL import Image

    np = pytest.importorskip("numpy")
    namespace = {"photo": Image.new("RGB", (40, 30), "green"),
                 "array": np.zeros((32, 32, 3), dtype=np.uint8), "n": 3, "text": "hello",
                 "_private": Image.new("RGB", (8, 8))}
    panel = Panel(namespace=namespace)
    try:
        assert panel.widget.variables == ["array", "photo"]
        press(panel, "add_variable", name="photo")
        press(panel, "add_variable", name="array")
        assert [item.label for item in panel.attachments] == ["photo", "array"]
        press(panel, "remove_attachment", index=0)
        assert [item.label for item in panel.attachments] == ["array"]
        namespace["later"] = Image.new("RGB", (20, 20), "blue")
        namespace["gone"] = "no/such/picture.png"  # looks like an image path; is not there
        press(panel, "refresh_variables")
        assert "later" in panel.widget.variables
        panel.add_variable("gone")
        assert "picture.png" in panel.widget.notice
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
    assert "AuthenticationError" in panel.widget.notice and "Invalid key" in panel.widget.notice
    assert panel.widget.prompt == "Describe"
    assert len(panel.images) == 1
    assert not panel.busy and not panel.widget.busy
    assert panel.last_response.error and not panel.last_response.complete
    assert len(panel.conversation) == 0
    # Fixed: resend, and the same question and image go.
    server.queue(Reply(answer="Fine now."))
    click_send(panel)
    assert panel.wait(TIMEOUT)
    messages = server.requests[-1].json["messages"]
    assert len(messages) == 1 and len(image_parts(messages[0])) == 1
    assert panel.last_response.answer == "Fine now."
    assert panel.widget.notice == ""


def test_stream_cut_midway_is_an_error_with_partial_text(server, panel):
    server.queue(Reply(answer="partial answer that never ends", chunk_chars=5, cut_after=6))
    ask(panel, "Go")
    response = panel.last_response
    assert not response.complete and response.thinking
    assert "StreamError" in panel.widget.notice
    assert panel.widget.prompt == "Go"


def test_connection_refused_is_readable(server, panel, monkeypatch):
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("QWEN_NB_BASE_URL", f"http://127.0.0.1:{port}/v1")
    monkeypatch.setenv("QWEN_NB_MAX_ATTEMPTS", "1")
    ask(panel, "Hello?")
    assert "APIConnectionError" in panel.widget.notice
    assert panel.widget.prompt == "Hello?"


def test_bad_setting_is_refused_before_sending(server, panel):
    type_setting(panel, "temperature", "warm")
    type_prompt(panel, "Hi")
    click_send(panel)
    assert not panel.busy
    assert "Temperature" in panel.widget.notice and "warm" in panel.widget.notice
    assert server.requests == []
    assert panel.widget.prompt == "Hi"  # the page emptied its box: the prompt goes back
    type_prompt(panel, "   ")
    type_setting(panel, "temperature", "")
    click_send(panel)
    assert "empty" in panel.widget.notice and server.requests == []


def test_settings_reach_the_request(server, panel):
    type_setting(panel, "model", "my-model")
    type_setting(panel, "temperature", "0.3")
    type_setting(panel, "max_tokens", "500")
    type_setting(panel, "thinking_budget", "200")
    type_setting(panel, "system", "Be brief.")
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
    type_prompt(panel, "Hi")
    click_send(panel)
    assert "No API key" in panel.widget.notice and server.requests == []
    assert "Settings → API key" in panel.widget.notice and panel.widget.notice_key
    press(panel, "set_key", key=FAKE_KEY)  # what the page sends on Enter (not state)
    assert "key set" in panel.widget.key_status and not panel.widget.notice_key
    server.queue(Reply(answer="Authorized."))
    click_send(panel)
    assert panel.wait(TIMEOUT)
    assert server.requests[-1].headers["Authorization"] == f"Bearer {FAKE_KEY}"
    assert panel.last_response.answer == "Authorized."
    # Nothing a notebook could save holds the key: widget state, reprs, the transcript.
    state = ipywidgets.Widget.get_manager_state(drop_defaults=False)
    assert FAKE_KEY not in json.dumps(state, default=str)
    assert FAKE_KEY not in repr(panel) + repr(panel._repr_mimebundle_())
    assert FAKE_KEY not in panel.to_markdown(thinking=True)


# -- concurrency and closing ------------------------------------------------------------------


def test_two_panels_stream_at_once(server, sent):
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


def test_close_stops_the_stream_and_closes_widgets(server, sent):
    server.queue(Reply(answer="never ending " * 200, chunk_chars=4, chunk_delay=0.02))
    panel = Panel(namespace={})
    panel.send("Talk")
    assert wait_until(lambda: server.active_streams == 1)
    panel.close()
    assert not panel.busy
    assert wait_until(lambda: server.active_streams == 0)
    assert panel.widget.comm is None
    assert not panel.last_response.complete
    with pytest.raises(Exception, match="closed"):
        panel.send("again")


def test_busy_panel_refuses_a_second_send(server, panel):
    server.queue(Reply(answer="slow " * 100, chunk_chars=4, chunk_delay=0.02))
    panel.send("First")
    assert panel.busy
    assert panel.send("Second") is False
    assert "on its way" in panel.widget.notice
    # Stop only once the first request is at the server: stopping earlier rightly sends
    # nothing at all, which would not show that "Second" was never sent.
    assert wait_until(lambda: len(server.requests) == 1)
    panel.stop()
    assert panel.wait(TIMEOUT)
    assert len(server.requests) == 1
    sent = json.dumps(server.requests[0].json)
    assert "First" in sent and "Second" not in sent


def test_offline_provider(monkeypatch, sent):
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


# -- per-turn actions, and a page that reloads ---------------------------------------------


def test_regenerate_replaces_the_last_turn_with_a_new_reply(server, panel, sent):
    server.queue(Reply(answer="First try."), Reply(answer="Second try."))
    upload(panel, upload_item("a.png", png_bytes(), "image/png"))
    ask(panel, "Describe")
    press(panel, "regenerate")
    assert panel.wait(TIMEOUT)
    assert [turn.response.answer for turn in panel.history] == ["Second try."]
    again = server.requests[-1].json["messages"]
    assert len(again) == 1 and len(image_parts(again[0])) == 1  # same prompt and image
    (turn,) = sent.turns(panel.widget)
    assert "Second try." in turn["answer"] and turn["images"] == 1
    assert "First try." not in panel._repr_mimebundle_()["text/html"]


def test_edit_and_resend_replaces_the_last_prompt(server, panel, sent):
    server.queue(Reply(answer="One."), Reply(answer="Two."), Reply(answer="Three."))
    ask(panel, "First")
    ask(panel, "Secnod")
    press(panel, "send", prompt="Second", edit=True)
    assert panel.wait(TIMEOUT)
    assert [turn.prompt for turn in panel.history] == ["First", "Second"]
    messages = server.requests[-1].json["messages"]
    assert [m["content"] for m in messages] == ["First", "One.", "Second"]
    assert [t["prompt"] for t in sent.turns(panel.widget)] == ["First", "Second"]


def test_a_reloaded_page_gets_every_turn_again(server, panel, sent):
    server.queue(Reply(thinking="Hmm.", answer="Kept **answer**."))
    ask(panel, "Remember me")
    before = sent.turns(panel.widget)
    press(panel, "sync")  # a view that starts empty asks for the transcript
    assert sent.by_comm[panel.widget.comm.comm_id][-1].keys() == {"sync"}
    after = sent.turns(panel.widget)
    assert [(t["prompt"], t["answer"], t["thinking"]) for t in after] == \
        [(t["prompt"], t["answer"], t["thinking"]) for t in before]
