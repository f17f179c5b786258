"""batch() at scale against the local server: lean results, lazy inputs, folders, globs,
Series, results as they finish, JSONL / Parquet, and resuming an interrupted batch."""

from __future__ import annotations

import _thread
import gc
import itertools
import json
import threading

import numpy as np
import pytest
from fake_server import Reply
from PIL import Image
from support import number

import qwen_nb
from qwen_nb._batch import BatchStream
from qwen_nb._errors import InputError


def noise(seed: int, size=(96, 64)) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def reachable_strings(root, limit: int = 200_000):
    """Every str reachable from `root` through containers and object attributes."""
    seen, stack, found = set(), [root], []
    while stack and len(seen) < limit:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, str):
            found.append(obj)
            continue
        if isinstance(obj, (type, type(gc))):  # classes and modules lead everywhere
            continue
        stack.extend(gc.get_referents(obj))
    return found


def test_results_keep_no_image_payloads(server):
    images = [noise(seed) for seed in range(6)]
    result = qwen_nb.batch("Describe", images=images, concurrency=3, progress=False)
    assert all(item.ok for item in result)
    sent = [part["image_url"]["url"] for r in server.requests
            for part in r.json["messages"][-1]["content"] if part["type"] == "image_url"]
    assert len(sent) == 6 and all(url.startswith("data:image/") for url in sent)
    kept = [item.response.images[0] for item in result]
    # What a table needs stays: digest, sizes, format, bytes.
    assert all(image.digest and image.sent_size and image.nbytes and image.format
               for image in kept)
    assert sorted(image.digest for image in kept) == sorted(
        __import__("hashlib").sha256(__import__("base64").b64decode(url.partition(",")[2]))
        .hexdigest() for url in sent)
    assert all(not image.has_payload for image in kept)
    with pytest.raises(ValueError, match="payload was dropped"):
        kept[0].to_part()
    # Nothing reachable from the result holds a data URL.
    strings = reachable_strings(result)
    assert strings and not [s for s in strings if s.startswith("data:")]


def test_a_failed_item_keeps_no_payload_either(server):
    server.reply_fn = lambda body: Reply(cut_after=2)  # the stream breaks: a partial reply
    result = qwen_nb.batch("Describe", images=[noise(1)], progress=False)
    item = result[0]
    assert item.status == "failed" and item.response is not None
    assert item.response.images and not item.response.images[0].has_payload
    assert not [s for s in reachable_strings(result) if s.startswith("data:")]


def test_a_generator_is_read_lazily_with_bounded_lookahead(server):
    pulled = []
    lookahead = []

    def images():
        for n in itertools.count():  # endless: only what is sent may be read
            pulled.append(n)
            yield noise(n, (40, 40))

    def reply(body):
        lookahead.append(len(pulled) - len(server.requests))
        return Reply(answer="ok")

    server.reply_fn = reply
    stream = qwen_nb.batch("Describe", images=images(), concurrency=2, ordered=False,
                           progress=False)
    assert isinstance(stream, BatchStream)
    got = list(itertools.islice(stream, 12))
    stream.close()
    assert len(got) == 12 and all(item.ok for item in got)
    # At most one item per worker is read ahead of what the server has received...
    assert max(lookahead) <= 2
    # ...and the workers wait for a slow reader: 12 read, at most 2 x 2 queued, 2 sending.
    assert len(pulled) <= len(server.requests) + 2
    assert len(server.requests) <= 12 + 4 + 2


def test_ordered_false_yields_in_finishing_order(server):
    # Item i takes (5 - i) * 60 ms: with every item in flight at once, the last finishes first.
    server.reply_fn = lambda body: Reply(answer=f"answer {number(body)}",
                                         delay_first_byte=(5 - number(body)) * 0.06)
    stream = qwen_nb.batch([f"item {i}" for i in range(6)], concurrency=6, ordered=False,
                           progress=False)
    order = [item.index for item in stream]
    assert sorted(order) == list(range(6))
    assert order[0] == 5 and order[-1] == 0
    assert order != sorted(order)


def test_to_jsonl_streams_and_to_parquet_writes_the_table(server, tmp_path):
    server.reply_fn = lambda body: Reply(answer=f"answer {number(body)}")
    prompts = [f"item {i}" for i in range(5)]
    count = qwen_nb.batch(prompts, ordered=False, progress=False).to_jsonl(tmp_path / "a.jsonl")
    assert count == 5
    rows = [json.loads(line) for line in (tmp_path / "a.jsonl").read_text().splitlines()]
    assert sorted((r["index"], r["answer"]) for r in rows) == [(i, f"answer {i}")
                                                             for i in range(5)]
    assert all(r["status"] == "ok" and r["total_tokens"] > 0 for r in rows)

    result = qwen_nb.batch(prompts, progress=False)
    result.to_jsonl(tmp_path / "b.jsonl")
    lines = (tmp_path / "b.jsonl").read_text().splitlines()
    assert [json.loads(line)["index"] for line in lines] == list(range(5))
    pq = pytest.importorskip("pyarrow.parquet")
    result.to_parquet(tmp_path / "b.parquet")
    table = pq.read_table(tmp_path / "b.parquet").to_pylist()
    assert [row["answer"] for row in table] == [f"answer {i}" for i in range(5)]
    assert list(table[0])[:3] == ["index", "prompt", "image"]


def test_a_folder_and_a_glob(server, tmp_path):
    for name in ("b.png", "a.png", "c.jpg"):
        noise(len(name)).save(tmp_path / name)
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "sub").mkdir()
    server.reply_fn = lambda body: Reply(answer="seen")

    folder = qwen_nb.batch("Describe", images=tmp_path, progress=False)
    assert [item.image_names for item in folder] == [("a.png",), ("b.png",), ("c.jpg",)]
    assert all(item.ok for item in folder)
    pngs = qwen_nb.batch("Describe", images=str(tmp_path / "*.png"), progress=False)
    assert [item.image_names for item in pngs] == [("a.png",), ("b.png",)]
    assert len(server.requests) == 5


def test_bad_folder_glob_and_frame_inputs_are_refused_before_sending(server, tmp_path):
    with pytest.raises(InputError, match="no image files"):
        qwen_nb.batch("Describe", images=tmp_path, progress=False)
    with pytest.raises(InputError, match="matched no files"):
        qwen_nb.batch("Describe", images=str(tmp_path / "*.png"), progress=False)
    with pytest.raises(InputError, match="neither a folder nor a glob"):
        qwen_nb.batch("Describe", images=str(tmp_path / "one.png"), progress=False)
    with pytest.raises(InputError, match="cannot be paired"):
        qwen_nb.batch(["a", "b"], images=iter([1, 2]), progress=False)
    pd = pytest.importorskip("pandas")
    with pytest.raises(InputError, match=r"images=df\['path'\]"):
        qwen_nb.batch("Describe", images=pd.DataFrame({"path": ["x.png"]}), progress=False)
    assert server.requests == []


def test_a_pandas_series_of_paths_and_of_prompts(server, tmp_path):
    pd = pytest.importorskip("pandas")
    paths = []
    for n in range(3):
        path = tmp_path / f"p{n}.png"
        noise(n).save(path)
        paths.append(str(path))
    frame = pd.DataFrame({"path": paths, "question": [f"item {n}" for n in range(3)]},
                         index=[10, 20, 30])  # a non-default index must not matter
    server.reply_fn = lambda body: Reply(answer=f"answer {number(body)}")
    by_image = qwen_nb.batch("Describe item 0", images=frame["path"], progress=False)
    assert [item.image_names for item in by_image] == [("p0.png",), ("p1.png",), ("p2.png",)]
    paired = qwen_nb.batch(frame["question"], images=frame["path"], progress=False)
    assert paired.answers == ["answer 0", "answer 1", "answer 2"]
    frame["answer"] = paired.answers
    assert list(frame["answer"]) == ["answer 0", "answer 1", "answer 2"]


def test_a_bad_item_in_a_generator_fails_there_and_stops_reading(server):
    def pairs():
        yield ("item 0", None)
        yield ("item 1", None)
        yield ("item 2", None, "extra")  # wrong shape
        yield ("item 3", None)

    result = qwen_nb.batch(pairs(), concurrency=1, progress=False)
    assert [item.status for item in result] == ["ok", "ok", "failed"]
    assert "Item 2" in result[2].error.message
    assert len(server.requests) == 2


def test_an_interrupted_batch_of_1000_resends_only_what_is_missing(server, tmp_path):
    """Ctrl-C after 300 requests; the re-run with cache="auto" sends exactly the rest."""
    server.reply_fn = lambda body: Reply(answer=f"answer {number(body)}")
    prompts = [f"item {i}" for i in range(1000)]
    fired = threading.Event()

    def reply(body):
        if len(server.requests) >= 300 and not fired.is_set():
            fired.set()
            _thread.interrupt_main()
        return Reply(answer=f"answer {number(body)}")

    server.reply_fn = reply
    first = qwen_nb.batch(prompts, concurrency=8, cache="auto", cache_dir=tmp_path,
                          progress=False)
    assert first.interrupted
    finished = first.counts()["ok"]
    assert 250 <= finished < 1000
    assert len(first) == 1000  # the rest are "not run"
    sent_before = len(server.requests)

    server.reply_fn = lambda body: Reply(answer=f"answer {number(body)}")
    again = qwen_nb.batch(prompts, concurrency=8, cache="auto", cache_dir=tmp_path,
                          progress=False)
    assert not again.interrupted and all(item.ok for item in again)
    assert again.answers == [f"answer {i}" for i in range(1000)]
    resent = [number(r.json) for r in server.requests[sent_before:]]
    assert len(resent) == 1000 - finished  # only what had not finished
    done_first = {item.index for item in first if item.ok}
    assert not done_first & set(resent)
