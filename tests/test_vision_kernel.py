"""A grounding answer in a notebook run by a real kernel: the saved file and its nbconvert
HTML hold the drawn overlay, an image whose box edge differs from the photo."""

from __future__ import annotations

import base64
import io
import re

import pytest
from fake_server import Reply
from PIL import Image
from test_kernel import execute, qwen_outputs

pytestmark = pytest.mark.kernel


def test_saved_notebook_and_nbconvert_html_hold_the_overlay(server, tmp_path):
    server.queue(Reply(answer='```json\n[{"bbox_2d": [250, 250, 500, 500], "label": "red"}]\n```'))
    nb, path = execute([
        "%load_ext qwen_nb",
        "from PIL import Image\nphoto = Image.new('RGB', (4000, 3000), (120, 120, 120))\n"
        "photo.paste((220, 30, 30), (1000, 750, 2000, 1500))",
        '%%qwen -i photo --ground "red square"\nFind the square.',
        "print([round(v) for v in _qwen.boxes[0].xyxy])",
    ], server, tmp_path)
    assert nb.cells[3].outputs[0]["text"].strip() == "[1000, 750, 2000, 1500]"
    html = qwen_outputs(nb.cells[2])[0]["data"]["text/html"]
    drawn = _first_image(html)
    plain = Image.new("RGB", drawn.size, (120, 120, 120))
    square = tuple(round(v * drawn.width / 4000) for v in (1000, 750, 2000, 1500))
    plain.paste((220, 30, 30), square)
    edge_x = round(1000 * drawn.width / 4000)
    assert max(abs(a - b) for a, b in zip(drawn.getpixel((edge_x, drawn.height // 3)),
                                           plain.getpixel((edge_x, drawn.height // 3)),
                                           strict=True)) > 40

    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_filename(str(path))
    converted = _first_image(body)
    assert converted.size == drawn.size
    assert converted.tobytes() == drawn.tobytes()


def _first_image(html: str) -> Image.Image:
    match = re.search(r'<img [^>]*src="data:image/(?:png|jpeg);base64,([^"]+)"', html)
    assert match, "no embedded overlay image"
    return Image.open(io.BytesIO(base64.b64decode(match.group(1)))).convert("RGB")
