"""Every image kind through %%qwen (-i and {name}) reaches the local server decodable, in order."""

from __future__ import annotations

import base64
import io
import os
import threading

import matplotlib
import numpy as np
import pytest
from PIL import Image
from support import run_cell

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

RED = (220, 30, 40)


def _png(size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, RED).save(buffer, "PNG")
    return buffer.getvalue()


def _values(tmp_path) -> dict[str, object]:
    from IPython.display import Image as IPyImage

    path = tmp_path / "red.png"
    path.write_bytes(_png((300, 200)))
    figure, axes = plt.subplots()
    axes.imshow(np.tile(np.uint8(RED), (10, 10, 1)))
    axes.set_axis_off()
    return {
        "pil": Image.new("RGB", (4000, 3000), RED),
        "array": np.tile(np.uint8(RED), (200, 300, 1)),
        "figure": figure,
        "axes": axes,
        "data": _png((300, 200)),
        "buffer": io.BytesIO(_png((300, 200))),
        "path": str(path),
        "pathlib_path": path,
        "ipy": IPyImage(data=_png((300, 200))),
        "several": [Image.new("RGB", (64, 64), RED), _png((300, 200))],
    }


def _sent_images(server) -> list[Image.Image]:
    content = server.requests[-1].json["messages"][-1]["content"]
    parts = [p for p in content if p["type"] == "image_url"]
    images = []
    for part in parts:
        payload = part["image_url"]["url"].partition(",")[2]
        image = Image.open(io.BytesIO(base64.b64decode(payload)))
        image.load()
        images.append(image.convert("RGB"))
    return images


@pytest.mark.parametrize(
    "name",
    ["pil", "array", "figure", "axes", "data", "buffer", "path", "pathlib_path", "ipy", "several"],
)
@pytest.mark.parametrize("how", ["-i", "{name}"])
def test_each_kind_reaches_the_server(ip, server, tmp_path, name, how):
    ip.user_ns.update(_values(tmp_path))
    cell = (
        f"%%qwen -i {name}\nWhat colour?" if how == "-i" else f"%%qwen\nWhat colour is {{{name}}}?"
    )
    result = run_cell(ip, cell)
    assert result.error_in_exec is None, result.error_in_exec
    sent = _sent_images(server)
    assert len(sent) == (2 if name == "several" else 1)
    if name == "pil":
        assert sent[0].size == (1312, 960)
    for image in sent:
        if image.size != (300, 200):  # small encoded PNGs are sent as they are
            assert image.width % 32 == 0 and image.height % 32 == 0
        assert image.width * image.height <= 1280 * 32 * 32
        centre = image.getpixel((image.width // 2, image.height // 2))
        assert all(abs(a - b) <= 8 for a, b in zip(centre, RED, strict=True)), centre
    plt.close("all")


def test_bad_image_fails_the_cell_before_sending(ip, server):
    ip.user_ns["thing"] = {"not": "an image"}
    result = run_cell(ip, "%%qwen -i thing\nWhat is this?")
    assert type(result.error_in_exec).__name__ == "ImageError"
    assert "`thing`" in str(result.error_in_exec) and "dict" in str(result.error_in_exec)
    assert server.requests == []


@pytest.mark.parametrize(
    "cell",
    [
        "%qwen What colour is {photo}?",  # one line: IPython used to put str(photo) here
        "%%qwen -i {crops[0].image()}\nWhat colour?",  # as -i {_qwen.boxes[0].crop()}
        "%qwen -i crops[0].image() What colour?",
    ],
)
def test_braced_expressions_on_the_magic_line_send_the_image(ip, server, cell):
    class Crop:
        def image(self):
            return Image.new("RGB", (640, 480), RED)

    ip.user_ns["crops"] = [Crop()]
    ip.user_ns["photo"] = Crop().image()
    result = run_cell(ip, cell)
    assert result.error_in_exec is None, result.error_in_exec
    sent = _sent_images(server)
    assert len(sent) == 1 and sent[0].size == (640, 480)
    texts = [p["text"] for p in server.requests[-1].json["messages"][-1]["content"]
             if p["type"] == "text"]
    assert "PIL.Image" not in " ".join(texts) and "What colour" in " ".join(texts)


class _WatchedPath(os.PathLike):
    """An image path that records which thread read it (a worker prepares it there)."""

    def __init__(self, path: str, reads: list[tuple[str, str]]) -> None:
        self.path, self.reads = path, reads

    def __fspath__(self) -> str:
        self.reads.append((self.path, threading.current_thread().name))
        return self.path


def test_several_images_in_one_cell_go_through_the_shared_pool_in_order(ip, server, tmp_path):
    colours = {"first": (220, 30, 40), "second": (30, 160, 60), "third": (40, 60, 200)}
    reads: list[tuple[str, str]] = []
    for name, colour in colours.items():
        path = tmp_path / f"{name}.png"
        Image.new("RGB", (320, 240), colour).save(path)
        ip.user_ns[name] = _WatchedPath(str(path), reads)
    result = run_cell(ip, "%%qwen -i first -i second\nAnd {third}: which colours?")
    assert result.error_in_exec is None, result.error_in_exec
    sent = [image.getpixel((5, 5)) for image in _sent_images(server)]
    assert sent == list(colours.values())  # -i options in their order, then {third}
    for name in colours:
        workers = {thread for path, thread in reads if path.endswith(f"{name}.png")}
        # The pool a list in one -i uses; serial preparation read every path in this thread.
        assert any(thread.startswith("qwen-images") for thread in workers), (name, workers)
