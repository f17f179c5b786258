"""qwen_nb.batch against the local server: order, isolation, shared backoff, interrupt."""

from __future__ import annotations

import _thread
import inspect
import threading
import time

import pytest
from fake_server import FakeServer, Reply
from support import number, prompt_of

import qwen_nb
from qwen_nb import api
from qwen_nb._batch import BatchResult, SharedBackoff, _TextProgress, _WidgetProgress
from qwen_nb._errors import BadRequestError, ImageError, InputError, Interrupted, RateLimitError


def test_results_keep_input_order_whatever_finishes_first(server):
    # Earlier items take longer, so they finish last.
    server.reply_fn = lambda body: Reply(answer=f"answer {number(body)}",
                                         thinking=f"thinking {number(body)}",
                                         delay_first_byte=(9 - number(body)) * 0.04)
    result = qwen_nb.batch([f"item {i}" for i in range(10)], concurrency=4, progress=False)

    assert isinstance(result, BatchResult) and len(result) == 10
    assert [item.answer for item in result] == [f"answer {i}" for i in range(10)]
    assert [item.thinking for item in result] == [f"thinking {i}" for i in range(10)]
    assert [item.index for item in result] == list(range(10))
    assert result.answers == [f"answer {i}" for i in range(10)]
    assert all(item.ok and item.error is None for item in result)
    assert not result.interrupted and result.failed == []
    assert len(server.requests) == 10
    assert result.tokens == sum(item.response.usage.total_tokens for item in result)


def test_concurrency_is_bounded(server):
    server.default_reply = Reply(delay_first_byte=0.2)
    seen = []

    def reply(body):
        seen.append(server.active_streams)
        return Reply(delay_first_byte=0.15)

    server.reply_fn = reply
    result = qwen_nb.batch([f"item {i}" for i in range(9)], concurrency=3, progress=False)
    assert all(item.ok for item in result)
    # Requests in flight at once never exceed the bound (counted by the server).
    assert max(_overlaps(server.requests, 0.15)) <= 3


def _overlaps(requests, duration):
    starts = sorted(r.at for r in requests)
    return [sum(1 for other in starts if start <= other < start + duration * 0.5)
            for start in starts]


def test_one_prompt_many_images_and_pairs(server):
    from PIL import Image

    red = Image.new("RGB", (64, 48), "red")
    blue = Image.new("RGB", (40, 40), "blue")
    server.reply_fn = lambda body: Reply(answer=f"{len(body['messages'][-1]['content'])} parts")

    result = qwen_nb.batch("What colour?", images=[red, [red, blue], blue], progress=False)
    assert [item.prompt for item in result] == ["What colour?"] * 3
    assert [len(item.image_names) for item in result] == [1, 2, 1]
    image_counts = [sum(p["type"] == "image_url" for p in r.json["messages"][-1]["content"])
                    for r in server.requests]
    assert sorted(image_counts) == [1, 1, 2]
    assert [item.answer for item in result] == ["2 parts", "3 parts", "2 parts"]

    server.reset()
    pairs = qwen_nb.batch([("first", red), ("second", None), ("third", [blue]),
                           ("fourth", (red, blue))], progress=False)
    assert [item.prompt for item in pairs] == ["first", "second", "third", "fourth"]
    assert [len(item.image_names) for item in pairs] == [1, 0, 1, 2]
    assert all(item.ok for item in pairs)
    texts = sorted(prompt_of(r.json) for r in server.requests)
    assert texts == ["first", "fourth", "second", "third"]

    server.reset()
    zipped = qwen_nb.batch(["a 1", "b 2"], images=[red, blue], progress=False)
    assert [item.image_names for item in zipped] == [("image 1",), ("image 2",)]


def test_image_names_come_from_paths(server, tmp_path):
    from PIL import Image

    path = tmp_path / "cat.png"
    Image.new("RGB", (32, 32), "white").save(path)
    result = qwen_nb.batch("Describe", images=[str(path), path, Image.open(path)],
                           progress=False)
    assert [item.image_names for item in result] == [("cat.png",)] * 3
    assert all(item.ok for item in result)


def test_failures_are_isolated(server, tmp_path):
    def reply(body):
        if number(body) in (2, 5):
            return Reply(status=400, error_body={"error": {"message": f"bad item {number(body)}"}})
        if number(body) == 7:
            return Reply(cut_after=3)  # the connection breaks mid-stream
        return Reply(answer=f"answer {number(body)}")

    server.reply_fn = reply
    result = qwen_nb.batch([f"item {i}" for i in range(9)], progress=False)

    assert [item.status for item in result] == [
        "ok", "ok", "failed", "ok", "ok", "failed", "ok", "failed", "ok"]
    assert isinstance(result[2].error, BadRequestError) and "bad item 2" in result[2].error.message
    assert "bad item 5" in result[5].error.message
    assert result[7].response is not None and not result[7].response.complete
    assert [item.answer for item in result if item.ok] == [
        f"answer {i}" for i in (0, 1, 3, 4, 6, 8)]
    assert result.responses[2] is None and result.answers[2] is None
    assert [item.index for item in result.failed] == [2, 5, 7]
    assert "3 failed" in result.summary()


def test_a_bad_image_fails_only_its_item(server, tmp_path):
    from PIL import Image

    good = Image.new("RGB", (32, 32), "green")
    result = qwen_nb.batch("What is it?", images=[good, tmp_path / "missing.png", good],
                           progress=False)
    assert [item.status for item in result] == ["ok", "failed", "ok"]
    assert isinstance(result[1].error, ImageError)
    assert len(server.requests) == 2


def test_bad_arguments_are_refused_before_anything_is_sent(server, monkeypatch):
    with pytest.raises(InputError):
        qwen_nb.batch(["a", "b"], images=[1, 2, 3], progress=False)
    with pytest.raises(InputError):
        qwen_nb.batch(["a"], concurrency=0, progress=False)
    with pytest.raises(InputError):
        qwen_nb.batch(["a", "b"], temperature=7, progress=False)
    with pytest.raises(InputError):
        qwen_nb.batch([("a", None, "extra")], progress=False)
    monkeypatch.delenv("QWEN_NB_API_KEY")
    monkeypatch.setenv("QWEN_NB_PROVIDER", "aimlapi")
    with pytest.raises(qwen_nb.ConfigError):
        qwen_nb.batch(["a", "b"], progress=False)
    assert server.requests == []


def test_a_429_pauses_every_worker_once(server):
    """After a 429 with Retry-After: 1, no worker sends anything for about a second."""
    lock = threading.Lock()
    arrivals = []

    def reply(body):
        with lock:
            arrivals.append(number(body))
            order = len(arrivals)
        if order == 1:  # answered after 1 s, while the second request is still in flight
            return Reply(status=429, headers={"Retry-After": "1"}, delay_first_byte=1.0,
                         error_body={"error": {"message": "slow down"}})
        if order == 2:  # ends 0.2 s after the 429: its worker must then wait out the pause
            return Reply(delay_first_byte=1.2)
        return Reply(answer=f"answer {number(body)}")

    server.reply_fn = reply
    result = qwen_nb.batch([f"item {i}" for i in range(6)], concurrency=2, progress=False)

    assert all(item.ok for item in result), [item.error for item in result]
    assert result.rate_limit_pauses == 1
    first, second, *rest = server.requests
    rate_limited_at = first.at + 1.0  # when the 429 went out
    assert second.at < rate_limited_at
    # Every later request waited for the pause (Retry-After 1 s; half of it as tolerance).
    assert rest and all(r.at >= rate_limited_at + 0.5 for r in rest), [
        round(r.at - rate_limited_at, 3) for r in rest]


def test_a_batch_that_keeps_being_rate_limited_reports_it(server):
    server.default_reply = Reply(status=429, headers={"Retry-After": "0"},
                                 error_body={"error": {"message": "quota"}})
    result = qwen_nb.batch(["a 1", "b 2"], progress=False, max_attempts=2)
    assert [item.status for item in result] == ["failed", "failed"]
    assert all(isinstance(item.error, RateLimitError) for item in result)
    assert len(server.requests) == 4


def test_interrupt_stops_promptly_and_returns_what_finished(server, monkeypatch):
    # An own server: its stalled handlers sleep on after the test, away from the shared one.
    server = FakeServer(lifetime=120).start()
    monkeypatch.setenv("QWEN_NB_BASE_URL", server.base_url)

    def reply(body):
        if number(body) < 2:
            return Reply(answer=f"answer {number(body)}")
        # Thinks a little, then goes silent for a long time.
        return Reply(answer="never", stall_after=3, stall_seconds=60)

    server.reply_fn = reply
    timer = threading.Timer(1.0, _thread.interrupt_main)
    timer.start()
    started = time.monotonic()
    try:
        result = qwen_nb.batch([f"item {i}" for i in range(8)], concurrency=4, progress=False)
    finally:
        timer.cancel()
        server.stop()
    took = time.monotonic() - started

    assert took < 20  # the stalled replies alone would take minutes
    assert result.interrupted
    statuses = [item.status for item in result]
    assert statuses[:2] == ["ok", "ok"]
    assert statuses[2:6] == ["interrupted"] * 4
    assert statuses[6:] == ["not run", "not run"]
    for item in result[2:6]:
        assert isinstance(item.error, Interrupted)
        assert item.response is not None and not item.response.complete
    assert result[6].response is None and result[6].error is None
    assert len(server.requests) == 6
    assert "interrupted" in repr(result)


def test_cached_items_are_served_from_the_cache(server, tmp_path):
    if "cache" not in inspect.signature(api.open_stream).parameters:
        pytest.skip("the record/replay cache is not in this tree")
    server.reply_fn = lambda body: Reply(answer=f"answer {number(body)}")
    prompts = [f"item {i}" for i in range(5)]
    first = qwen_nb.batch(prompts, cache="auto", cache_dir=tmp_path, progress=False)
    assert len(server.requests) == 5
    again = qwen_nb.batch(prompts, cache="auto", cache_dir=tmp_path, progress=False)
    assert len(server.requests) == 5  # nothing new was sent
    assert again.answers == first.answers == [f"answer {i}" for i in range(5)]


def test_a_recorded_batch_replays_without_a_key(server, tmp_path, monkeypatch):
    server.reply_fn = lambda body: Reply(answer=f"answer {number(body)}")
    prompts = [f"item {i}" for i in range(3)]
    qwen_nb.batch(prompts, cache="auto", cache_dir=tmp_path, progress=False)
    monkeypatch.delenv("QWEN_NB_API_KEY")
    for mode in ("auto", "replay"):
        again = qwen_nb.batch(prompts, cache=mode, cache_dir=tmp_path, progress=False)
        assert again.answers == [f"answer {i}" for i in range(3)]
    # A request that was never recorded still needs the key, and says so.
    fresh = qwen_nb.batch(["new item 9"], cache="auto", cache_dir=tmp_path, progress=False)
    assert "API key" in str(fresh[0].error)
    assert len(server.requests) == 3


def test_text_progress_bar_shows_counts_and_tokens(server, capsys):
    server.reply_fn = lambda body: (Reply(status=400) if number(body) == 1
                                    else Reply(delay_first_byte=0.3))
    result = qwen_nb.batch([f"item {i}" for i in range(4)])
    err = capsys.readouterr().err
    last = err.rstrip("\n").split("\r")[-1]
    assert "4/4 done, 1 failed" in last
    assert f"{result.tokens:,} tokens" in last
    assert last.startswith("[") and "#" * 24 in last


def test_text_progress_redraws_in_place():
    import io

    out = io.StringIO()
    progress = _TextProgress(2, stream=out)
    progress.tick(0.0)
    progress.tick(0.0)  # too soon: not redrawn
    assert out.getvalue().count("\r") == 1
    assert "0/2 done" in out.getvalue()


def test_widget_progress_ends_as_plain_text(server, _global_ip):
    from IPython.utils.capture import capture_output

    with capture_output() as captured:
        progress = _WidgetProgress(3)
        progress.tick(0.0)
        assert progress.label.value.startswith("0/3 done")
        result = qwen_nb.batch(["x 1"], progress=False)
        progress.item_done(result[0])
        progress.tick(2.0)
        assert progress.bar.value == 1 and "rate limited" in progress.label.value
        progress.close(result)
    assert captured.outputs  # the widget, then its replacement
    assert progress.box.comm is None  # closed: no widget state left behind


def test_shared_backoff_waits_and_can_be_stopped():
    backoff = SharedBackoff()
    stop = threading.Event()
    assert backoff.wait(stop)
    backoff.pause(30)
    backoff.pause(1)  # a shorter pause never shortens a longer one
    assert backoff.remaining > 20 and backoff.pauses == 1
    threading.Timer(0.1, stop.set).start()
    assert backoff.wait(stop) is False


def test_to_pandas_gives_one_row_per_item(server):
    server.reply_fn = lambda body: (Reply(status=400, error_body={"error": {"message": "no"}})
                                    if number(body) == 1 else
                                    Reply(answer=f"answer {number(body)}", thinking="hmm"))
    result = qwen_nb.batch([f"item {i}" for i in range(3)], progress=False)
    try:
        import pandas
    except ImportError:
        with pytest.raises(ImportError, match="pip install pandas"):
            result.to_pandas()
        return
    frame = result.to_pandas()
    assert list(frame.columns) == ["prompt", "image", "answer", "thinking", "prompt_tokens",
                                   "completion_tokens", "reasoning_tokens", "total_tokens",
                                   "elapsed", "status", "error"]
    assert list(frame["prompt"]) == ["item 0", "item 1", "item 2"]
    assert list(frame["answer"]) == ["answer 0", "", "answer 2"]
    assert list(frame["status"]) == ["ok", "failed", "ok"]
    assert "HTTP 400" in frame["error"][1] and pandas.isna(frame["error"][0])
    assert frame["total_tokens"][0] > 0


def test_batch_is_exported_lazily():
    import subprocess
    import sys

    code = ("import sys, qwen_nb; assert 'qwen_nb._batch' not in sys.modules; "
            "f = qwen_nb.batch; assert callable(f); "
            "print(sorted(m for m in ('httpx', 'ipywidgets', 'PIL') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.kernel
def test_in_a_kernel_a_progress_widget_then_plain_text_and_interrupt_returns(tmp_path):
    import os
    from pathlib import Path

    from jupyter_client.manager import start_new_kernel

    server = FakeServer(lifetime=300).start()

    def reply(body):
        if number(body) < 3:
            return Reply(answer=f"answer {number(body)}", delay_first_byte=0.2)
        return Reply(answer="never", stall_after=3, stall_seconds=60)

    server.reply_fn = reply
    env = {**os.environ, "QWEN_NB_BASE_URL": server.base_url, "QWEN_NB_API_KEY": "k",
           "QWEN_NB_MODEL": "qwen3-vl-32b-thinking",
           "PYTHONPATH": str(Path(__file__).parents[1])}
    km, kc = start_new_kernel(kernel_name="python3", env=env, cwd=str(tmp_path))
    try:
        msg_id = kc.execute("import qwen_nb\n"
                            "result = qwen_nb.batch([f'item {i}' for i in range(8)], "
                            "concurrency=2)")
        deadline = time.monotonic() + 60
        while len(server.requests) < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(server.requests) == 5  # items 0-2 done, 3 and 4 stalled
        km.interrupt_kernel()
        reply_msg = kc.get_shell_msg(timeout=60)
        while reply_msg["parent_header"].get("msg_id") != msg_id:
            reply_msg = kc.get_shell_msg(timeout=60)
        messages = []
        while True:
            msg = kc.get_iopub_msg(timeout=30)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            messages.append(msg)
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
        assert reply_msg["content"]["status"] == "ok"  # returned what finished
        models = [m["content"]["data"]["state"].get("_model_name") for m in messages
                  if m["msg_type"] == "comm_open"]
        assert "IntProgressModel" in models
        final = [m for m in messages if m["msg_type"] == "update_display_data"][-1]
        text = final["content"]["data"]["text/plain"]
        assert text.startswith("Interrupted: 8 items: 3 ok") and "interrupted" in text
        assert "application/vnd.jupyter.widget-view+json" not in final["content"]["data"]
        out = kc.execute_interactive(
            "print([item.status for item in result], result.interrupted)", timeout=60,
            output_hook=messages.append)
        assert out["content"]["status"] == "ok"
        printed = "".join(m["content"].get("text", "") for m in messages
                          if m["msg_type"] == "stream")
        assert ("['ok', 'ok', 'ok', 'interrupted', 'interrupted', 'not run', 'not run', "
                "'not run'] True") in printed
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
        server.stop()
