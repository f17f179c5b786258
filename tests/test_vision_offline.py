"""The offline simulator answers grounding, document and JSON requests in kind, and
record/replay redraws the same overlay from the cached answer and the images."""

from __future__ import annotations

import pydantic
from fake_server import Reply
from PIL import Image

import qwen_nb


def scene() -> Image.Image:
    image = Image.new("RGB", (1200, 900), "white")
    image.paste((200, 20, 20), (100, 100, 500, 400))   # a red block
    image.paste((20, 40, 200), (700, 500, 1100, 800))  # a blue block
    return image


def test_grounding_offline_outlines_the_areas_and_names_them_by_colour():
    response = qwen_nb.ask("", scene(), ground="red block, blue block", provider="offline")
    boxes = {box.label: box for box in response.boxes}
    assert set(boxes) == {"red block", "blue block"}
    red, blue = boxes["red block"], boxes["blue block"]
    assert abs(red.x1 - 100) <= 30 and abs(red.y2 - 400) <= 30
    assert abs(blue.x1 - 700) <= 30 and abs(blue.x2 - 1100) <= 30
    for box in response.boxes:
        assert 0 <= box.x1 < box.x2 <= 1200 and 0 <= box.y1 < box.y2 <= 900
    again = qwen_nb.ask("", scene(), ground="red block, blue block", provider="offline")
    assert again.answer == response.answer  # deterministic

    points = qwen_nb.ask("", scene(), ground="red block", points=True, provider="offline")
    assert points.points and not points.boxes
    assert 100 <= points.points[0].x <= 500


def page() -> Image.Image:
    image = Image.new("RGB", (1000, 1400), "white")
    image.paste((30, 60, 120), (80, 60, 920, 160))     # title band
    image.paste((90, 90, 90), (80, 220, 920, 300))     # a line of text
    image.paste((60, 150, 90), (80, 400, 480, 800))    # a figure
    image.paste((0, 0, 0), (560, 400, 920, 800))       # a table
    return image


def test_documents_offline():
    html = qwen_nb.ask("", page(), doc="html", provider="offline")
    labels = [region.label for region in html.document.regions]
    assert labels == ["title", "paragraph", "image", "table"]
    title = html.document.regions[0]
    assert abs(title.y1 - 60) <= 40 and abs(title.y2 - 160) <= 40
    assert html.document.tables()[0].columns.tolist() == ["area", "colour"]
    markdown = qwen_nb.ask("", page(), doc="markdown", provider="offline")
    assert [region.label for region in markdown.document.regions] == ["image", "table"]
    assert markdown.document.markdown.startswith("# Offline simulator page")


class Inventory(pydantic.BaseModel):
    shop: str
    items: list[str]
    count: int


def test_schema_offline_validates():
    response = qwen_nb.ask("What is in stock?", schema=Inventory, provider="offline")
    assert isinstance(response.data, Inventory) and response.data.items
    plain = qwen_nb.ask("Describe", json=True, provider="offline")
    assert plain.data["simulator"] is True


def test_replayed_grounding_redraws_the_same_overlay(server, tmp_path):
    server.queue(Reply(answer='[{"bbox_2d": [80, 110, 420, 450], "label": "red block"}]'))
    recorded = qwen_nb.ask("Find", scene(), ground="red block", cache="record",
                           cache_dir=tmp_path)
    requests = len(server.requests)
    replayed = qwen_nb.ask("Find", scene(), ground="red block", cache="replay",
                           cache_dir=tmp_path)
    assert len(server.requests) == requests  # served from the cache
    assert replayed.replayed_from and replayed.boxes == recorded.boxes
    assert replayed.overlay().tobytes() == recorded.overlay().tobytes()
    saved = "".join(path.read_text() for path in tmp_path.rglob("*.json"))
    assert "bbox_2d" in saved and "data:image" not in saved and "base64" not in saved
