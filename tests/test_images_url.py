"""http(s) image URLs: sent as URLs, or fetched from a real local server and inlined."""

from __future__ import annotations

import base64
import io
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import pytest
from fake_server import QuietHTTPServer
from PIL import Image

from qwen_nb._errors import ImageError
from qwen_nb.media.images import prepare_images

RED = (220, 30, 40)


def _png(size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, RED).save(buffer, "PNG")
    return buffer.getvalue()


FILES = {"/small.png": _png((640, 480)), "/wide.png": _png((3000, 1000)), "/big.png": b"x" * 5000}


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        if self.path == "/slow.png":
            time.sleep(2.0)
        body = FILES.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    server = QuietHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _decoded(url: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(url.partition(",")[2])))


def test_url_is_sent_as_is_by_default(base_url):
    [prepared] = prepare_images(f"{base_url}/small.png", label="u")
    assert prepared.url == f"{base_url}/small.png"
    assert prepared.sent_size is None and prepared.format == "PNG"


def test_inlined_url_passes_through_small_png(base_url):
    [prepared] = prepare_images(f"{base_url}/small.png", label="u", inline_urls=True)
    assert base64.b64decode(prepared.url.partition(",")[2]) == FILES["/small.png"]
    assert "fetched and inlined" in prepared.notes


def test_inlined_url_is_resized_to_the_grid(base_url):
    [prepared] = prepare_images(f"{base_url}/wide.png", label="u", inline_urls=True)
    image = _decoded(prepared.url)
    assert image.size == prepared.sent_size == (1952, 640)
    assert image.convert("RGB").getpixel((10, 10)) == RED


def test_inlined_ipython_image_url(base_url):
    from IPython.display import Image as IPyImage

    value = IPyImage(url=f"{base_url}/small.png", embed=False)
    [prepared] = prepare_images(value, label="u", inline_urls=True)
    assert prepared.url.startswith("data:image/png;base64,")


@pytest.mark.parametrize(
    "path, options, part",
    [
        ("/missing.png", {}, "HTTP 404"),
        ("/big.png", {"max_url_bytes": 1000}, "over the 0.001 MB limit"),
        ("/slow.png", {"url_timeout": 0.5}, "took longer than 0.5 s"),
    ],
)
def test_fetch_errors(base_url, path, options, part):
    with pytest.raises(ImageError) as caught:
        prepare_images(f"{base_url}{path}", label="u", inline_urls=True, **options)
    assert part in str(caught.value) and "`u`" in str(caught.value)


def test_unreachable_server_is_an_image_error():
    with pytest.raises(ImageError, match="could not fetch"):
        prepare_images("http://127.0.0.1:9/a.png", label="u", inline_urls=True, url_timeout=2)
