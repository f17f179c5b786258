"""Events located in time, parsed from answers as Qwen3-VL writes them (a table)."""

from __future__ import annotations

import pytest

from qwen_nb._types import PreparedImage, PreparedVideo, QwenResponse
from qwen_nb.vision.timeline import TimelineEvent, parse_events, parse_time


def spans(answer: str) -> list[tuple]:
    return [(e.start, e.end, e.label, e.bbox) for e in parse_events(answer)]


@pytest.mark.parametrize(("value", "seconds"), [
    (12, 12.0), (12.5, 12.5), ("12.5", 12.5), ("12.5 s", 12.5), ("12.5s", 12.5),
    ("3 seconds", 3.0), ("<3.0 seconds>", 3.0), ("00:12", 12.0), ("01:02", 62.0),
    ("1:02:03.5", 3723.5), ("00:07,5", 7.5), ("-3", None), ("soon", None), (True, None),
    (None, None), (-1, None), ("12:75", None),
])
def test_parse_time(value, seconds):
    assert parse_time(value) == seconds


@pytest.mark.parametrize(("answer", "expected"), [
    # JSON as the Qwen3-VL cookbook asks for it, fenced
    ('```json\n[{"start": "00:12", "end": "00:18", "event": "dog runs"}]\n```',
     [(12.0, 18.0, "dog runs", None)]),
    # bare JSON, several items, other key names, seconds as numbers
    ('Here: [{"start_time": 1.5, "end_time": 4, "description": "a"}, '
     '{"begin": "0:05", "to": "0:07", "label": "b"}] done',
     [(1.5, 4.0, "a", None), (5.0, 7.0, "b", None)]),
    # a moment with a box
    ('{"time": 3.5, "bbox_2d": [300, 400, 100, 200], "label": "ball"}',
     [(3.5, None, "ball", (100.0, 200.0, 300.0, 400.0))]),
    # a span as a list, nested under a key
    ('{"events": [{"timestamps": ["00:02", "00:04"], "caption": "jump"}]}',
     [(2.0, 4.0, "jump", None)]),
    # end before start is put in order; equal start and end is a moment
    ('[{"start": 9, "end": 3, "event": "x"}, {"start": 5, "end": 5, "event": "y"}]',
     [(3.0, 9.0, "x", None), (5.0, None, "y", None)]),
    # prose
    ("The cat jumps from 12.5 s to 18 s.", [(12.5, 18.0, "The cat jumps.", None)]),
    ("- Between 00:12 and 00:18 the dog runs", [(12.0, 18.0, "the dog runs", None)]),
    ("At 00:45 the light turns red.", [(45.0, None, "the light turns red.", None)]),
    ("<7.0 seconds> a flash", [(7.0, None, "a flash", None)]),
    ("It lasts 2.5 - 4 seconds", [(2.5, 4.0, "It lasts", None)]),
    # not time: plain numbers, arithmetic, JSON without times
    ("3 - 5 apples, 10 to 12 people", []),
    ('[{"label": "cat", "bbox_2d": [1, 2, 3, 4]}]', []),
    ("No events here.", []),
    # JSON and prose together; the JSON's text is not read twice as prose
    ('```json\n{"start": "00:01", "end": "00:02", "event": "from 5 s to 6 s"}\n```\n'
     "Later, from 8 s to 9 s, a bird.",
     [(1.0, 2.0, "from 5 s to 6 s", None), (8.0, 9.0, "Later, a bird.", None)]),
])
def test_parse_events(answer, expected):
    assert spans(answer) == expected


def test_broken_json_is_skipped_and_prose_still_read():
    assert spans('[{"start": "00:01", "end": ') == []
    ((start, end, label, _),) = spans('{"start": 1, "end": }  then at 00:03 a cat')
    assert (start, end) == (3.0, None) and label.endswith("then a cat")


def test_labels_are_kept_as_text_and_clipped():
    (event,) = parse_events('[{"time": 1, "event": "<script>x</script>' + "a" * 300 + '"}]')
    assert event.label.startswith("<script>") and len(event.label) == 120


def _video(encoding: str, timestamps: tuple[float, ...], fps: float) -> PreparedVideo:
    frame = PreparedImage(url="data:image/jpeg;base64,", source="f", sent_size=(64, 64))
    return PreparedVideo(source="v", frames=(frame,) * len(timestamps), timestamps=timestamps,
                         encoding=encoding, sample_fps=fps)


@pytest.mark.parametrize(("encoding", "model_time", "source_time"), [
    ("images", 13.0, 13.0),        # the images carried their source times as text
    ("video_url", 2.0, 12.0),      # the MP4 starts at 0: offset by the range start
    ("frames", 1.0, 14.0),         # DashScope assumes 2 fps: frame 2, at 0.5 fps -> +4 s
])
def test_events_are_mapped_to_source_seconds(encoding, model_time, source_time):
    timestamps = (10.0, 12.0, 14.0, 16.0) if encoding != "video_url" else (10.0, 11.0)
    fps = 0.5 if encoding != "video_url" else 1.0
    video = _video(encoding, timestamps, fps)
    response = QwenResponse(answer=f'[{{"time": {model_time}, "event": "e"}}]', videos=(video,))
    assert response.events == [TimelineEvent(source_time, None, "e")]
    # ... and the model's own view of each frame inverts it
    assert video.source_time(video.model_time(1)) == pytest.approx(video.timestamps[1])
