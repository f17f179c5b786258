"""The grounding parser, driven by tables: what the model wrote -> boxes in original pixels."""

from __future__ import annotations

import pytest

import qwen_nb  # noqa: F401  (plugs the answer reader into QwenResponse)
from qwen_nb._types import PreparedImage, QwenResponse, Reading
from qwen_nb.vision import coords_for_model, find_json, parse_grounding

PHOTO = PreparedImage(url="data:,", source="photo", original_size=(4000, 3000),
                      sent_size=(1280, 960))
OTHER = PreparedImage(url="data:,", source="chart", original_size=(800, 600),
                      sent_size=(800, 608))


@pytest.mark.parametrize(
    "answer, expected",
    [
        # fenced list
        ('```json\n[{"bbox_2d": [100, 200, 300, 400], "label": "cat"}]\n```',
         [("cat", (400.0, 600.0, 1200.0, 1200.0))]),
        # bare single object inside prose
        ('The cat is here: {"bbox_2d": [0, 0, 1000, 1000], "label": "cat"} ok.',
         [("cat", (0.0, 0.0, 4000.0, 3000.0))]),
        # list wrapped in an object
        ('{"objects": [{"bbox_2d": [500, 500, 600, 600], "label": "dog"}]}',
         [("dog", (2000.0, 1500.0, 2400.0, 1800.0))]),
        # cut off at the token limit: the complete item is kept, the half one dropped
        ('```json\n[{"bbox_2d": [100, 100, 200, 200], "label": "a"},\n {"bbox_2d": [300, 3',
         [("a", (400.0, 300.0, 800.0, 600.0))]),
        # numbers as strings, and a label under another key
        ('[{"bbox_2d": ["10", "20", "30", "40"], "text_content": "STOP"}]',
         [("STOP", (40.0, 60.0, 120.0, 120.0))]),
    ],
)
def test_relative_boxes_map_to_original_pixels(answer, expected):
    grounding = parse_grounding(answer, [PHOTO], coords="relative")
    assert [(box.label, box.xyxy) for box in grounding.boxes] == expected
    assert all(box.image == 0 for box in grounding.boxes)


def test_truncation_is_noted():
    answer = '[{"bbox_2d": [1, 1, 2, 2], "label": "a"}, {"bbox_2d": [3'
    grounding = parse_grounding(answer, [PHOTO], coords="relative")
    assert len(grounding.boxes) == 1
    assert any("cut off" in note for note in grounding.notes)


def test_absolute_coordinates_are_pixels_of_the_image_as_sent():
    answer = '[{"bbox_2d": [128, 96, 640, 480], "label": "x"}, {"point_2d": [1280, 960]}]'
    grounding = parse_grounding(answer, [PHOTO], coords="absolute")
    assert grounding.boxes[0].xyxy == (400.0, 300.0, 2000.0, 1500.0)
    assert grounding.points[0].xy == (4000.0, 3000.0)


@pytest.mark.parametrize("model, mode", [
    ("qwen3-vl-32b-thinking", "relative"), ("Qwen/Qwen2-VL-7B-Instruct", "relative"),
    ("qwen2.5-vl-72b-instruct", "absolute"), ("Qwen/Qwen2_5-VL-7B", "absolute"),
    ("qwen/qwen2.5-vl-32b-instruct", "absolute"), (None, "relative"),
])
def test_auto_coordinates_follow_the_model_name(model, mode):
    assert coords_for_model(model) == mode
    grounding = parse_grounding('[{"bbox_2d": [10, 10, 20, 20]}]', [PHOTO], model=model)
    expected = (40.0, 30.0, 80.0, 60.0) if mode == "relative" else (31.25, 31.25, 62.5, 62.5)
    assert grounding.boxes[0].xyxy == expected


def test_clamping_and_corner_order_are_counted():
    answer = ('[{"bbox_2d": [900, 50, -20, 1200], "label": "a"},'
              ' {"bbox_2d": [10, 10, 20, 20], "label": "b"}, {"point_2d": [1001, 5]}]')
    grounding = parse_grounding(answer, [PHOTO], coords="relative")
    assert grounding.boxes[0].xyxy == (0.0, 150.0, 3600.0, 3000.0)
    assert grounding.boxes[0].raw == (900.0, 50.0, -20.0, 1200.0)
    assert grounding.points[0].xy == (4000.0, 15.0)
    notes = " | ".join(grounding.notes)
    assert "2 items had coordinates outside 0-1000: clamped" in notes
    assert "1 box had x2 < x1" in notes


def test_several_images_use_the_index_the_json_names():
    answer = ('[{"bbox_2d": [0, 0, 500, 500], "label": "a", "image": 2},'
              ' {"bbox_2d": [0, 0, 500, 500], "label": "b", "image": 1}]')
    grounding = parse_grounding(answer, [PHOTO, OTHER], coords="relative")
    assert [(b.label, b.image, b.xyxy) for b in grounding.boxes] == [
        ("a", 1, (0.0, 0.0, 400.0, 300.0)), ("b", 0, (0.0, 0.0, 2000.0, 1500.0))]
    assert "image" not in grounding.boxes[0].attributes
    assert any("'image' field" in note and "1-based" in note for note in grounding.notes)


def test_zero_based_index_and_by_name():
    zero = parse_grounding('[{"bbox_2d": [0,0,1,1], "img_idx": 0},'
                           ' {"bbox_2d": [0,0,1,1], "img_idx": 1}]', [PHOTO, OTHER])
    assert [b.image for b in zero.boxes] == [0, 1]
    named = parse_grounding('[{"bbox_2d": [0,0,1,1], "image": "chart"}]', [PHOTO, OTHER])
    assert named.boxes[0].image == 1


def test_several_images_without_an_index_say_which_rule_was_used():
    grounding = parse_grounding('[{"bbox_2d": [0, 0, 10, 10]}]', [PHOTO, OTHER])
    assert grounding.boxes[0].image == 0
    assert any("named no image of the 2 sent: placed on image 1" in n for n in grounding.notes)


def test_extra_attributes_are_kept():
    grounding = parse_grounding(
        '[{"bbox_2d": [0, 0, 10, 10], "label": "car", "color": "red", "type": "sedan"}]',
        [PHOTO])
    assert grounding.boxes[0].attributes == {"color": "red", "type": "sedan"}
    frame = grounding.boxes.to_pandas()
    assert list(frame["color"]) == ["red"] and frame.loc[0, "x2"] == 40.0


@pytest.mark.parametrize("answer", [
    "bbox_2d is a key I like", '{"bbox_2d": "nope"}',
    '[{"bbox_2d": [1, 2, 3]}]', '[{"bbox_2d": [1, 2, 3, NaN]}]', "```json\n{{{{[[[[\n```bbox_2d",
    '[{"point_2d": [true, false]}]', '{"bbox_2d": [1e999, 0, 1, 1]}', "[" * 5000 + "bbox_2d",
])
def test_garbage_gives_a_note_never_a_crash(answer):
    grounding = parse_grounding(answer, [PHOTO])
    assert not grounding
    assert grounding.notes


def test_no_image_keeps_the_model_coordinates():
    grounding = parse_grounding('[{"bbox_2d": [1, 2, 3, 4]}]', [])
    assert grounding.boxes[0].xyxy == (1.0, 2.0, 3.0, 4.0) and grounding.boxes[0].image is None
    assert any("no image was sent" in note for note in grounding.notes)


def test_plain_answers_are_not_parsed():
    assert parse_grounding("A cat on a mat. [1, 2]", [PHOTO]).notes == ()


def test_response_exposes_boxes_points_and_notes_in_details():
    response = QwenResponse(
        answer='[{"bbox_2d": [100, 100, 200, 200], "label": "a"}, {"point_2d": [5, 5]}]',
        images=(PHOTO,), model="qwen3-vl", reading=Reading(coords="relative"))
    assert response.boxes[0].xyxy == (400.0, 300.0, 800.0, 600.0)
    assert response.points[0].xy == (20.0, 15.0)
    from qwen_nb.render import details_rows

    assert any("grounding: 1 box, 1 point" in value for _, value in details_rows(response))


@pytest.mark.parametrize("text, value", [
    ('```json\n{"a": 1}\n```', {"a": 1}),
    ('Sure! {"a": [1, 2]} hope that helps', {"a": [1, 2]}),
    ('{"a": 1, "b": {"c": [1, 2', {"a": 1}),
    ('{"a": "x", "b": "unterminated', {"a": "x"}),
    ("nothing", None),
])
def test_find_json(text, value):
    found = find_json(text)
    assert (found.value if found else None) == value
