"""Grounding, overlays and schema answers through the real magic and ask() against the
local OpenAI-compatible server."""

from __future__ import annotations

import base64
import io
import json
import re

import pydantic
import pytest
from fake_server import Reply
from PIL import Image
from support import run_cell

from qwen_nb.media.plan import Budget, plan_size


def photo_with_square() -> Image.Image:
    """4000 x 3000, grey, with a red square at (1000, 750)-(2000, 1500)."""
    image = Image.new("RGB", (4000, 3000), (120, 120, 120))
    image.paste((220, 30, 30), (1000, 750, 2000, 1500))
    return image


def sent_image(body: dict) -> Image.Image:
    part = next(p for p in body["messages"][-1]["content"] if p["type"] == "image_url")
    data = base64.b64decode(part["image_url"]["url"].partition(",")[2])
    return Image.open(io.BytesIO(data))


def overlay_images(html: str) -> list[Image.Image]:
    # The overlay figures only (the output also shows thumbnails of the images sent).
    found = re.findall(r'<figure class="qwen-nb-overlay"[^>]*>'
                       r'<img src="data:image/(?:png|jpeg);base64,([^"]+)"', html)
    return [Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB") for data in found]


def test_relative_boxes_land_on_the_original_within_a_pixel(ip, server):
    ip.user_ns["photo"] = photo_with_square()
    # The red square is at 250..500 x 250..500 in Qwen3-VL's 0-1000 space.
    answer = ('```json\n[{"bbox_2d": [250, 250, 500, 500], "label": "red square"},'
              ' {"point_2d": [375, 375], "label": "centre"}]\n```')
    server.queue(Reply(answer=answer))
    result = run_cell(ip, '%%qwen -i photo --ground "red square"\nFind it.')
    assert result.error_in_exec is None, result.error_in_exec
    body = server.requests[-1].json
    sent = sent_image(body)
    assert sent.size == plan_size(4000, 3000, Budget())  # sent at its planned size
    text = body["messages"][-1]["content"][-1]["text"]
    assert text.startswith("Find it.\n\n")  # the user's own text is kept
    assert ('Locate every instance that belongs to the following categories: "red square". '
            "Report bbox coordinates in JSON format.") in text
    response = ip.user_ns["_qwen"]
    box = response.boxes[0]
    for got, want in zip(box.xyxy, (1000, 750, 2000, 1500), strict=True):
        assert abs(got - want) <= 1
    assert box.label == "red square" and box.raw == (250.0, 250.0, 500.0, 500.0)
    assert response.points[0].xy == (1500.0, 1125.0)
    crop = box.crop()
    assert abs(crop.width - 1000) <= 1 and abs(crop.height - 750) <= 1
    assert crop.getpixel((crop.width // 2, crop.height // 2)) == (220, 30, 30)


def test_absolute_coordinates_for_qwen25_map_through_the_resize(ip, server):
    ip.user_ns["photo"] = photo_with_square()
    width, height = plan_size(4000, 3000, Budget())
    x1, y1, x2, y2 = width / 4, height / 4, width / 2, height / 2
    server.queue(Reply(answer=json.dumps([{"bbox_2d": [x1, y1, x2, y2], "label": "sq"}])))
    result = run_cell(ip, '%qwen -i photo -m qwen2.5-vl-72b-instruct --ground sq')
    assert result.error_in_exec is None, result.error_in_exec
    box = ip.user_ns["_qwen"].boxes[0]
    for got, want in zip(box.xyxy, (1000, 750, 2000, 1500), strict=True):
        assert abs(got - want) <= 1
    assert any("absolute" in note for note in ip.user_ns["_qwen"].interpretation.notes)


def test_answer_tab_shows_the_overlay_with_the_json_folded(ip, server):
    import qwen_nb

    image = photo_with_square()
    server.queue(Reply(answer='[{"bbox_2d": [250, 250, 500, 500], "label": "red square"}]'))
    response = qwen_nb.ask("where", image, ground="red square")
    data, _ = response._repr_mimebundle_()
    html = data["text/html"]
    shown = overlay_images(html)
    assert len(shown) == 1
    drawn = shown[0]
    plain = image.resize(drawn.size)
    # The box's left edge (x = 1000 of 4000) is drawn: those pixels differ from the photo.
    edge_x = round(1000 * drawn.width / 4000)
    ys = range(round(0.3 * drawn.height), round(0.45 * drawn.height))
    changed = sum(1 for y in ys if _far(drawn.getpixel((edge_x, y)), plain.getpixel((edge_x, y))))
    assert changed >= 0.9 * len(ys)
    # ...and a pixel far from the box is the photo's.
    assert not _far(drawn.getpixel((drawn.width - 5, drawn.height - 5)),
                    plain.getpixel((drawn.width - 5, drawn.height - 5)))
    assert "<details" in html and "bbox_2d" in html.split("<details", 1)[1]
    assert response.overlay().size == sent_image(server.requests[-1].json).size
    assert response.overlay(full=True).size == (4000, 3000)


def _far(a, b, tolerance=40):
    return max(abs(x - y) for x, y in zip(a, b, strict=True)) > tolerance


def test_several_images_boxes_go_to_the_image_the_json_names(ip, server):
    ip.user_ns["first"] = Image.new("RGB", (640, 480), "white")
    ip.user_ns["second"] = Image.new("RGB", (1000, 500), "black")
    server.queue(Reply(answer='[{"bbox_2d": [0, 0, 500, 500], "label": "a", "image": 2}]'))
    result = run_cell(ip, '%qwen -i first -i second --ground a')
    assert result.error_in_exec is None, result.error_in_exec
    text = server.requests[-1].json["messages"][-1]["content"][-1]["text"]
    assert '"image": the number of the image' in text
    box = ip.user_ns["_qwen"].boxes[0]
    assert box.image == 1 and box.xyxy == (0.0, 0.0, 500.0, 250.0)


class Fruit(pydantic.BaseModel):
    name: str
    count: int


def test_schema_refused_with_422_still_gives_validated_data(ip, server):
    ip.user_ns["Fruit"] = Fruit
    ip.user_ns["square"] = Image.new("RGB", (64, 64), "red")
    server.queue(
        Reply(status=422, error_body={"detail": [{"loc": ["body", "response_format"],
                                                  "msg": "Extra inputs are not permitted",
                                                  "type": "extra_forbidden"}]}),
        Reply(answer='```json\n{"name": "apple", "count": 3}\n```'),
    )
    result = run_cell(ip, "%%qwen -i square --schema Fruit\nHow many apples?")
    assert result.error_in_exec is None, result.error_in_exec
    first, second = (r.json for r in server.requests[-2:])
    assert first["response_format"]["type"] == "json_schema"
    assert first["response_format"]["json_schema"]["name"] == "Fruit"
    assert "response_format" not in second
    assert "JSON schema:" in second["messages"][-1]["content"][-1]["text"]
    response = ip.user_ns["_qwen"]
    assert response.data == Fruit(name="apple", count=3)
    from qwen_nb.render import details_rows

    values = [value for _, value in details_rows(response)]
    assert any("refused response_format" in v for v in values)
    assert any("validated against the schema" in v for v in values)


def test_invalid_answer_shows_errors_and_fails_only_with_strict(ip, server):
    ip.user_ns["schema"] = {"type": "object", "properties": {"count": {"type": "integer"}},
                            "required": ["count"]}
    server.queue(Reply(answer='{"count": "many"}'))
    result = run_cell(ip, "%%qwen --schema schema\nHow many?")
    assert result.error_in_exec is None
    response = ip.user_ns["_qwen"]
    assert response.data is None and response.interpretation.raw_data == {"count": "many"}
    assert response.answer == '{"count": "many"}'
    html = response._repr_mimebundle_()[0]["text/html"]
    assert "does not match the schema" in html and "count: &#x27;many&#x27; is not of type" in html

    server.queue(Reply(answer='{"count": "many"}'))
    result = run_cell(ip, "%%qwen --schema schema --strict\nHow many?")
    assert type(result.error_in_exec).__name__ == "SchemaError"
    assert ip.user_ns["_qwen"].answer == '{"count": "many"}'


def test_json_sends_json_object_and_parses(server):
    import qwen_nb

    server.queue(Reply(answer='Here you go: {"a": [1, 2]}'))
    response = qwen_nb.ask("give json", json=True)
    assert server.requests[-1].json["response_format"] == {"type": "json_object"}
    assert response.data == {"a": [1, 2]}


@pytest.mark.parametrize("line, message", [
    ("--ground ''", "--ground needs what to locate"),
    ("--points", "--points goes with --ground"),
    ("--strict", "--strict goes with --json"),
    ("--schema nothing_here", "--schema nothing_here: NameError"),
    ("--schema not_a_schema", "not a JSON schema"),
    ("--ground cat --json", "ask for different answers"),
])
def test_bad_vision_options_are_refused_before_sending(ip, server, line, message):
    ip.user_ns["not_a_schema"] = {"hello": 1}
    before = len(server.requests)
    result = run_cell(ip, f"%%qwen {line}\nhello")
    assert message in str(result.error_in_exec)
    assert len(server.requests) == before


def test_batch_reads_each_item_with_the_schema_and_grounding(server):
    import qwen_nb

    images = [Image.new("RGB", (100, 100), "red"), Image.new("RGB", (100, 100), "blue")]
    server.queue(Reply(answer='{"name": "apple", "count": 1}'),
                 Reply(answer='{"name": "pear", "count": "two"}'))
    results = qwen_nb.batch("Count the fruit", images=images, schema=Fruit, concurrency=1,
                            progress=False)
    frame = results.to_pandas()
    assert frame.loc[0, "name"] == "apple" and frame["name"].isna().tolist() == [False, True]
    assert frame.loc[0, "count"] == 1 and frame["count"].isna().tolist() == [False, True]
    assert results[0].response.data == Fruit(name="apple", count=1)
    assert results[1].response.interpretation.errors

    server.queue(Reply(answer='[{"bbox_2d": [0, 0, 500, 500], "label": "a"}]'),
                 Reply(answer="[]"))
    results = qwen_nb.batch("Find", images=images, ground="a", concurrency=1, progress=False)
    frame = results.to_pandas()
    assert frame.loc[0, "boxes"][0]["x2"] == 50.0 and frame.loc[1, "boxes"] == []
    assert "Locate every instance" in server.requests[-1].json["messages"][-1]["content"][-1][
        "text"]


def test_batch_refuses_a_bad_vision_option_before_sending(server):
    import qwen_nb
    from qwen_nb import InputError

    before = len(server.requests)
    with pytest.raises(InputError, match="--doc"):
        qwen_nb.batch(["a", "b"], doc="pdf", progress=False)
    assert len(server.requests) == before


def test_panel_settings_locate_and_answer_as(server, monkeypatch):
    import comm
    from support import FrontEndMessages
    from test_panel import click_send, type_prompt, type_setting

    from qwen_nb.panel import Panel

    sent = FrontEndMessages()
    monkeypatch.setattr(comm, "create_comm", sent.comm_class())
    panel = Panel(namespace={})
    try:
        panel.attach(Image.new("RGB", (400, 300), "white"), "white")
        type_setting(panel, "ground", "door")
        server.queue(Reply(answer='[{"bbox_2d": [0, 0, 500, 500], "label": "door"}]'))
        type_prompt(panel, "Where?")
        click_send(panel)
        assert panel.wait(30)
        text = server.requests[-1].json["messages"][-1]["content"][-1]["text"]
        assert text.startswith("Where?\n\n") and "categories: \"door\"" in text
        assert panel.last_response.boxes[0].xyxy == (0.0, 0.0, 200.0, 150.0)
        # The turn's Answer tab shows the drawn overlay, as the magic's output does.
        turn = sent.turns(panel.widget)[-1]
        assert re.search(r'<img [^>]*src="data:image/', turn["answer"])

        type_setting(panel, "ground", "")
        type_setting(panel, "answer_as", "json")
        server.queue(Reply(answer='{"doors": 1}'))
        type_prompt(panel, "Count doors")
        click_send(panel)
        assert panel.wait(30)
        assert server.requests[-1].json["response_format"] == {"type": "json_object"}
        assert panel.last_response.data == {"doors": 1}
    finally:
        panel.close()


def test_live_overlay_draws_the_complete_items_so_far():
    from qwen_nb._types import QwenResponse
    from qwen_nb.media.images import prepare_images
    from qwen_nb.render.vision import live_overlay_html

    images = tuple(prepare_images(Image.new("RGB", (300, 200), "white"), label="w"))
    first = '```json\n[{"bbox_2d": [0, 0, 500, 500], "label": "a"}, '
    second = '{"bbox_2d": [100, 100, 900, 900], "label": "b"}]'

    def live(answer: str):
        return live_overlay_html(QwenResponse(answer=answer, images=images, complete=False))

    assert live(first[:20]) is None  # no box yet
    assert live(first[:-4]) is None  # the first box's object is not closed yet
    arriving = live(first + second[:25])  # the second box is still arriving
    assert arriving is not None and "with 1 marks drawn" in arriving
    shown = live(first + second)
    assert shown is not None and shown.count("<img ") == 1 and "with 2 marks drawn" in shown
