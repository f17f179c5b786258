"""The offline simulator: deterministic, descriptive, streamed like a real provider, and
never touching the network or a key."""

from __future__ import annotations

import re
import socket
import threading

import pytest
from PIL import Image
from support import run_cell

from qwen_nb import api
from qwen_nb._config import resolve_settings
from qwen_nb._errors import Interrupted
from qwen_nb._types import AnswerDelta, Finished, ThinkingDelta, UsageUpdate
from qwen_nb.media.images import prepare_images
from qwen_nb.offline import OfflineStream, colour_name
from qwen_nb.render import details_rows, markdown_html, static_bundle


@pytest.fixture
def settings():
    return resolve_settings(provider="offline", env={})


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a connection fails loudly."""

    def refuse(*args, **kwargs):
        raise AssertionError("the offline simulator tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def request_for(prompt, *images, **options):
    parts = []
    for index, image in enumerate(images, 1):
        parts.extend(prepare_images(image, label=f"img{index}"))
    parts.append(prompt)
    return api.build_request(parts, model="qwen3-vl-32b-thinking (offline simulator)",
                             options=api.make_options(**options))


def events_of(request, settings):
    return list(api.open_stream(request, settings, cache="off"))


def test_same_request_same_reply_and_same_chunks(settings, no_network):
    request = request_for("What is this?", Image.new("RGB", (96, 64), (200, 30, 30)), seed=3)
    first, second = events_of(request, settings), events_of(request, settings)
    texts = [(e.type, getattr(e, "text", None)) for e in first if not isinstance(e, Finished)]
    assert texts == [(e.type, getattr(e, "text", None)) for e in second
                     if not isinstance(e, Finished)]
    one, two = first[-1].response, second[-1].response
    assert (one.answer, one.thinking, one.usage, one.request_id) == (
        two.answer, two.thinking, two.usage, two.request_id)
    other = events_of(request_for("What is that?"), settings)[-1].response
    assert other.answer != one.answer and other.request_id != one.request_id


def test_describes_what_it_received(settings, no_network):
    red = Image.new("RGB", (128, 96), (220, 20, 20))
    blue = Image.new("RGB", (64, 64), (20, 40, 210))
    prompt = "Compare these two pictures.\nWhich one is warmer?"
    response = events_of(request_for(prompt, red, blue, seed=7, temperature=0.5),
                         settings)[-1].response
    answer = response.answer
    assert "offline simulator" in answer and "not a model" in answer
    assert f"Prompt: {len(prompt)} characters" in answer
    assert 'first line: "[image 1] [image 2] Compare these two pictures."' in answer
    assert "Images: 2" in answer
    assert "rgb(220, 20, 20), red" in answer and "rgb(20, 40, 210), blue" in answer
    # As sent: enlarged to Qwen3-VL's 65,536 px minimum, on the 32 px grid.
    assert "320 x 224 px" in answer
    assert "seed=7" in answer and "temperature=0.5" in answer
    assert "img1" in answer and "img2" in answer
    assert "not a model" in response.thinking and "2 images" in response.thinking
    assert "offline simulator" in response.model
    assert response.provider == "offline" and response.finish_reason == "stop"
    assert response.complete and response.replayed_from is None
    assert len(response.images) == 2


def test_streams_like_a_provider(settings, no_network):
    request = request_for("Describe", Image.new("RGB", (64, 64), "green"))
    events = events_of(request, settings)
    kinds = [e.type for e in events]
    assert kinds[-2:] == ["usage", "done"]
    deltas = [e for e in events if isinstance(e, (ThinkingDelta, AnswerDelta))]
    assert len(deltas) > 40 and all(1 <= len(d.text) <= 12 for d in deltas)
    first_answer = kinds.index("answer")
    assert "answer" not in kinds[:first_answer] and "thinking" not in kinds[first_answer:]
    response = events[-1].response
    assert "".join(d.text for d in deltas if d.type == "thinking") == response.thinking
    assert "".join(d.text for d in deltas if d.type == "answer") == response.answer
    usage = next(e for e in events if isinstance(e, UsageUpdate)).usage
    assert usage == response.usage
    visual = request.images[0].visual_tokens
    assert usage.prompt_tokens >= visual + 1
    assert 0 < usage.reasoning_tokens < usage.completion_tokens
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert response.time_to_first_token is not None and response.elapsed is not None


def test_answer_exercises_the_renderer(settings):
    response = events_of(request_for("Hi"), settings)[-1].response
    html = markdown_html(response.answer)
    for tag in ("<h3>", "<strong>", "<li>", "<code", "<math"):
        assert tag in html
    data, metadata = static_bundle(response)
    assert "offline simulator" in data["text/plain"]
    assert metadata["qwen_nb"]["finish_reason"] == "stop"


def test_budgets_cut_like_a_provider(settings):
    full = events_of(request_for("Hi"), settings)[-1].response
    short = events_of(request_for("Hi", max_tokens=40), settings)[-1].response
    assert short.finish_reason == "length" and len(short.answer) < len(full.answer)
    budget = events_of(request_for("Hi", thinking_budget=10), settings)[-1].response
    assert len(budget.thinking) <= 40 < len(full.thinking)


def test_timings_are_the_simulators_schedule_not_the_wall_clock(settings):
    """Saved notebooks show the same figures on every run, however slowly events are read."""
    import time

    from qwen_nb.offline import FIRST_TOKEN_SECONDS, STREAM_SECONDS

    request = request_for("Time me", Image.new("RGB", (64, 64), "green"))
    quick = events_of(request, settings)[-1].response
    slow_events = []
    for event in api.open_stream(request, settings, cache="off"):
        slow_events.append(event)
        if len(slow_events) in (1, 2):
            time.sleep(0.3)  # a busy consumer: the wall clock moves on, the schedule does not
    slow = slow_events[-1].response
    assert quick.time_to_first_token == slow.time_to_first_token == FIRST_TOKEN_SECONDS
    assert quick.elapsed == slow.elapsed == pytest.approx(STREAM_SECONDS, abs=0.01)
    assert details_rows(quick) == details_rows(slow)


def test_non_streaming_gives_the_same_reply(settings):
    streamed = events_of(request_for("Hi", seed=1), settings)[-1].response
    whole = events_of(request_for("Hi", seed=1, stream=False), settings)
    assert [e.type for e in whole] == ["thinking", "answer", "usage", "done"]
    assert whole[-1].response.answer == streamed.answer


def test_close_from_another_thread_keeps_the_partial_reply(settings):
    stream = OfflineStream(request_for("Hi"), settings, seconds=5.0)
    seen = []
    with pytest.raises(Interrupted) as caught:
        for event in stream:
            seen.append(event)
            if len(seen) == 3:
                threading.Thread(target=stream.close).start()
    partial = caught.value.response
    assert partial is not None and not partial.complete
    assert partial.thinking == "".join(e.text for e in seen)


def test_colour_names():
    assert colour_name((0, 0, 0)) == "black"
    assert colour_name((255, 255, 255)) == "white"
    assert colour_name((128, 128, 128)) == "grey"
    assert colour_name((250, 10, 10)) == "red"
    assert colour_name((10, 200, 10)) == "green"
    assert colour_name((20, 40, 220)) == "blue"
    assert colour_name((120, 60, 10)) == "brown"


def test_magic_with_offline_provider_needs_no_key(ip, monkeypatch, no_network):
    monkeypatch.delenv("QWEN_NB_API_KEY")
    monkeypatch.delenv("QWEN_NB_BASE_URL")
    monkeypatch.delenv("QWEN_NB_MODEL")
    ip.user_ns["swatch"] = Image.new("RGB", (80, 60), (30, 160, 40))
    result = run_cell(ip, "%%qwen --provider offline --seed 5\nWhat colour is {swatch}?")
    assert result.error_in_exec is None
    response = ip.user_ns["_qwen"]
    assert "offline simulator" in response.model
    assert re.search(r"rgb\(30, 160, 40\), green", response.answer)
    assert "seed=5" in response.answer
    assert 'first line: "What colour is [image 1] ?"' in response.answer
