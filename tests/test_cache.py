"""Record / replay against the local server: keys, modes, entries on disk, no secrets."""

from __future__ import annotations

import json

import pytest
from fake_server import Reply
from PIL import Image
from support import FAKE_KEY, run_cell

import qwen_nb
from qwen_nb import api
from qwen_nb._config import resolve_settings
from qwen_nb._errors import CacheMissError, ConfigError, StreamError
from qwen_nb._types import AnswerDelta, Finished, ThinkingDelta
from qwen_nb.cache import (
    CacheEntry,
    Segment,
    cache_key,
    coalesce,
    resolve_dir,
    resolve_mode,
)
from qwen_nb.render import static_bundle

THINKING = "Let me think about the picture. It has a red square."
ANSWER = "The picture shows a **red** square on white."


def entries(folder):
    return sorted(folder.glob("*.json"))


def ask(prompt, *images, **options):
    return qwen_nb.ask(prompt, *images, **options)


def test_auto_records_a_miss_then_replays_without_calling(server, tmp_path):
    server.queue(Reply(thinking=THINKING, answer=ANSWER, request_id="chatcmpl-rec-1"))
    image = Image.new("RGB", (64, 64), "red")
    live = ask("What is in the picture?\nBe brief.", image, cache="auto", cache_dir=tmp_path,
               seed=4)
    assert len(server.requests) == 1 and live.replayed_from is None
    [path] = entries(tmp_path)
    assert path.name.startswith("what-is-in-the-picture-")

    for mode in ("auto", "replay"):
        replayed = ask("What is in the picture?\nBe brief.", image, cache=mode,
                       cache_dir=tmp_path, seed=4)
        assert len(server.requests) == 1
        assert (replayed.answer, replayed.thinking) == (ANSWER, THINKING)
        assert replayed.usage == live.usage
        assert replayed.request_id == "chatcmpl-rec-1"
        assert (replayed.model, replayed.finish_reason) == (live.model, live.finish_reason)
        assert replayed.replayed_from and replayed.replayed_from == \
            json.loads(path.read_text())["recorded"]
        assert len(replayed.images) == 1
    html = static_bundle(replayed)[0]["text/html"]
    assert f"replayed from cache, recorded on {replayed.replayed_from}" in html


def test_replay_streams_the_recorded_shape(server, tmp_path):
    server.queue(Reply(thinking=THINKING, answer=ANSWER, chunk_chars=5))
    recorded = list(qwen_nb.stream("Shape?", cache="record", cache_dir=tmp_path))
    replayed = list(qwen_nb.stream("Shape?", cache="replay", cache_dir=tmp_path))
    def texts(events, kind):
        return [e.text for e in events if isinstance(e, kind)]
    assert texts(replayed, ThinkingDelta) == texts(recorded, ThinkingDelta)
    assert texts(replayed, AnswerDelta) == texts(recorded, AnswerDelta)
    assert isinstance(replayed[-1], Finished) and replayed[-1].response.replayed_from


def test_replay_miss_names_the_cell_and_says_how_to_record(server, tmp_path):
    with pytest.raises(CacheMissError) as caught:
        ask("Count the cats in this photo\nand the dogs", cache="replay", cache_dir=tmp_path)
    message = str(caught.value)
    assert "Count the cats in this photo" in message
    assert "--cache record" in message and "QWEN_NB_CACHE_MODE=auto" in message
    assert server.requests == [] and entries(tmp_path) == []


def test_record_always_calls_and_overwrites(server, tmp_path):
    server.queue(Reply(answer="first"), Reply(answer="second"))
    ask("Again", cache="record", cache_dir=tmp_path)
    ask("Again", cache="record", cache_dir=tmp_path)
    assert len(server.requests) == 2
    assert ask("Again", cache="replay", cache_dir=tmp_path).answer == "second"
    assert len(entries(tmp_path)) == 1


def test_an_unchanged_reply_leaves_the_file_untouched(server, tmp_path):
    server.queue(Reply(answer="same", chunk_delay=0.001), Reply(answer="same"))
    ask("Stable?", cache="record", cache_dir=tmp_path)
    [path] = entries(tmp_path)
    before = path.read_bytes()
    ask("Stable?", cache="record", cache_dir=tmp_path)
    assert len(server.requests) == 2 and path.read_bytes() == before


def test_incomplete_replies_are_not_recorded(server, tmp_path):
    server.queue(Reply(answer="a long answer that is cut " * 4, cut_after=3))
    with pytest.raises(StreamError):
        ask("Cut?", cache="auto", cache_dir=tmp_path)
    assert entries(tmp_path) == []


def test_entry_is_readable_sorted_json_without_secrets(server, tmp_path):
    server.queue(Reply(thinking=THINKING, answer=ANSWER))
    ask("Secrets?", Image.new("RGB", (48, 48), "blue"), cache="auto", cache_dir=tmp_path)
    [path] = entries(tmp_path)
    text = path.read_text()
    assert FAKE_KEY not in text and "Authorization" not in text and "Bearer" not in text
    assert "base64" not in text  # images are named by digest, not stored
    data = json.loads(text)
    assert text == json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    assert data["response"]["answer"] == ANSWER and data["response"]["thinking"] == THINKING
    assert data["request"]["base_url"] == server.base_url
    assert data["request"]["images"][0]["digest"]
    assert all(len(line.split()) == 3 for line in data["timing"])
    assert {"usage", "finish_reason", "model", "request_id"} <= set(data["response"])


def test_key_covers_what_changes_the_reply_and_nothing_else(server):
    def request(prompt="Q", colour="red", model="m", **options):
        parts = [*api.prepare_images([Image.new("RGB", (40, 40), colour)], max_pixels=None,
                                     inline_urls=False, settings=settings), prompt]
        return api.build_request(parts, model=model, options=api.make_options(**options))

    settings = resolve_settings()
    base = cache_key(request(), server.base_url)
    assert base == cache_key(request(), server.base_url + "/")
    assert base == cache_key(request(stream=False), server.base_url)
    other_key = resolve_settings(api_key="sk-some-other-key")
    assert base == cache_key(request(), other_key.base_url)
    for changed in (request(prompt="Q2"), request(colour="blue"), request(model="m2"),
                    request(seed=1), request(temperature=0.3), request(top_p=0.5),
                    request(max_tokens=10), request(thinking_budget=10)):
        assert cache_key(changed, server.base_url) != base
    assert cache_key(request(), "http://elsewhere/v1") != base


def test_magic_cache_option_and_config(ip, server, tmp_path, monkeypatch):
    monkeypatch.setenv("QWEN_NB_CACHE", str(tmp_path))
    monkeypatch.delenv("QWEN_NB_CACHE_MODE", raising=False)
    server.queue(Reply(thinking=THINKING, answer=ANSWER))
    assert run_cell(ip, "%%qwen --cache auto\nDescribe the cache.").error_in_exec is None
    assert ip.user_ns["_qwen"].replayed_from is None and len(entries(tmp_path)) == 1
    magics = ip.magics_manager.registry["QwenMagics"]
    try:
        run_cell(ip, '%config QwenMagics.cache_mode = "replay"')
        assert run_cell(ip, "%%qwen\nDescribe the cache.").error_in_exec is None
        assert ip.user_ns["_qwen"].replayed_from and len(server.requests) == 1
        assert ip.user_ns["_qwen"].answer == ANSWER
        result = run_cell(ip, "%%qwen\nSomething never recorded")
        assert isinstance(result.error_in_exec, CacheMissError)
        assert "Something never recorded" in str(result.error_in_exec)
        # The environment wins over %config; --cache wins over both.
        monkeypatch.setenv("QWEN_NB_CACHE_MODE", "off")
        server.queue(Reply(answer="live again"))
        assert run_cell(ip, "%%qwen\nDescribe the cache.").error_in_exec is None
        assert ip.user_ns["_qwen"].answer == "live again"
        assert run_cell(ip, "%%qwen --cache replay\nDescribe the cache.").error_in_exec is None
        assert ip.user_ns["_qwen"].answer == ANSWER
    finally:
        magics.cache_mode = ""
    other = tmp_path / "elsewhere"
    monkeypatch.delenv("QWEN_NB_CACHE")
    try:
        magics.cache_dir = str(other)
        server.queue(Reply(answer="in the configured folder"))
        assert run_cell(ip, "%%qwen --cache record\nWhere?").error_in_exec is None
        assert len(entries(other)) == 1
    finally:
        magics.cache_dir = ""
    assert run_cell(ip, "%%qwen --cache sometimes\nBad").error_in_exec is not None


def test_modes_and_folders_resolve_in_order(tmp_path):
    assert resolve_mode(env={}) == "off"
    assert resolve_mode(config="auto", env={}) == "auto"
    assert resolve_mode(config="auto", env={"QWEN_NB_CACHE_MODE": "Replay"}) == "replay"
    assert resolve_mode("record", config="auto", env={"QWEN_NB_CACHE_MODE": "replay"}) == \
        "record"
    with pytest.raises(ConfigError, match="QWEN_NB_CACHE_MODE"):
        resolve_mode(env={"QWEN_NB_CACHE_MODE": "sometimes"})
    assert str(resolve_dir(env={})) == ".qwen_cache"
    assert resolve_dir(config="c", env={"QWEN_NB_CACHE": "e"}).name == "e"
    assert resolve_dir(tmp_path, config="c", env={"QWEN_NB_CACHE": "e"}) == tmp_path


def test_coalesce_keeps_text_and_total_delay():
    segments = [Segment(0.01, "thinking" if i < 600 else "answer", f"{i};") for i in range(2000)]
    merged = coalesce(segments)
    assert len(merged) <= 120
    for kind in ("thinking", "answer"):
        assert "".join(s.text for s in merged if s.kind == kind) == \
            "".join(s.text for s in segments if s.kind == kind)
    assert sum(s.delay for s in merged) == pytest.approx(20.0)
    assert coalesce(segments[:5]) == segments[:5]


def test_hand_edited_entry_still_replays_in_full():
    entry = CacheEntry({"key": "k", "recorded": "2026-01-01",
                        "response": {"answer": "edited answer", "thinking": "t"},
                        "timing": ["0.010 thinking 1", "0.010 answer 3"]})
    segments = entry.segments()
    assert "".join(s.text for s in segments if s.kind == "answer") == "edited answer"
    assert entry.response().replayed_from == "2026-01-01"


def test_replay_redacts_a_key_the_entry_holds(server, tmp_path):
    # An entry from an older version, another machine or a hand edit may hold the key in
    # clear; replay shows what live redaction would, in the events and the output.
    server.queue(Reply(thinking=THINKING, answer=ANSWER, chunk_chars=5))
    qwen_nb.ask("Key?", cache="record", cache_dir=tmp_path)
    [path] = entries(tmp_path)
    data = json.loads(path.read_text())
    data["response"]["answer"] = f"The key is {FAKE_KEY}."
    data["response"]["thinking"] = f"Bearer {FAKE_KEY} was in the header."
    data["response"]["notes"] = [f"note with {FAKE_KEY}"]
    path.write_text(json.dumps(data))

    events = list(qwen_nb.stream("Key?", cache="replay", cache_dir=tmp_path))
    response = events[-1].response
    shown = repr(events) + json.dumps(static_bundle(response)[0])
    assert FAKE_KEY not in shown
    assert response.answer == "The key is [redacted key]."
    assert "".join(e.text for e in events if isinstance(e, AnswerDelta)) == response.answer
    assert response.notes == ("note with [redacted key]",)
    assert len(server.requests) == 1
