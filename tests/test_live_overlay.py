"""The live view's grounding overlay: drawn in the kernel as soon as boxes are complete,
redrawn as more arrive, read only when the text could hold new coordinates.

Driven by stream events and a fake clock (no kernel); tests/test_live_overlay_kernel.py
runs the same path in a real kernel and tests/browser/test_live_view.py in a browser.
"""

from __future__ import annotations

import base64
import io
import re

from PIL import Image

from qwen_nb._types import AnswerDelta, Reading
from qwen_nb.api import build_request
from qwen_nb.frontend.feed import ReplyFeed
from qwen_nb.frontend.live_overlay import LiveOverlay
from qwen_nb.media.images import prepare_images
from qwen_nb.render import markdown_html

BOXES = [(100 + 60 * i, 100, 140 + 60 * i, 300) for i in range(10)]
GROUNDING = "I found them.\n\n```json\n[\n" + ",\n".join(
    f'  {{"bbox_2d": [{x1}, {y1}, {x2}, {y2}], "label": "cat {i}"}}'
    for i, (x1, y1, x2, y2) in enumerate(BOXES)) + "\n]\n```\n\nThat is all."


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def photo_request(reading: Reading | None = None, *, image: bool = True):
    picture = Image.new("RGB", (800, 600), (40, 120, 40))
    images = prepare_images(picture, label="photo") if image else []
    return build_request([*images, "Find the cats."], model="qwen3-vl-32b-thinking",
                         reading=reading or Reading(ground="cat"))


def feed_answer(feed: ReplyFeed, clock: Clock, answer: str, *, step: int = 5,
                rate: float = 50.0, every: int = 2) -> list[tuple[int, dict]]:
    """(characters streamed so far, message) for every draw, as a live view draws them."""
    messages = []
    for count, index in enumerate(range(0, len(answer), step)):
        clock.now += 1 / rate
        starts = feed.add(AnswerDelta(answer[index:index + step]))
        if starts or count % every == 0:
            message = feed.take()
            if message:
                messages.append((index + step, message))
    clock.now += 1.0
    messages.append((len(answer), feed.take(force=True)))
    return messages


def marks(parts: list[dict]) -> int:
    """How many boxes the overlay says it drew on the one image (its alt text)."""
    (part,) = parts
    return int(re.fullmatch(r"image 1 \(.*\) with (\d+) marks drawn", part["alt"]).group(1))


def decode(url: str) -> Image.Image:
    assert url.startswith(("data:image/png;base64,", "data:image/jpeg;base64,")), url[:40]
    return Image.open(io.BytesIO(base64.b64decode(url.partition(",")[2])))


def picture_of(base: str, parts: list[dict]) -> Image.Image:
    """What the page shows: the picture with the latest layer of marks over it."""
    (part,) = parts
    picture = decode(base).convert("RGBA")
    picture.alpha_composite(decode(part["layer"]).convert("RGBA"))
    return picture.convert("RGB")


def test_the_overlay_appears_with_the_first_complete_box_and_grows():
    clock = Clock()
    overlay = LiveOverlay(photo_request(), clock=clock)
    feed = ReplyFeed(markdown_html, clock=clock, overlay=overlay)
    drawn = [(at, m["overlay"]) for at, m in feed_answer(feed, clock, GROUNDING)
             if "overlay" in m]
    first_box_ends = GROUNDING.index("}") + 1
    assert drawn, "no overlay was sent"
    assert drawn[0][0] >= first_box_ends  # never before a box is complete
    counts = [marks(figures) for _, figures in drawn]
    assert counts == sorted(counts) and len(set(counts)) == len(counts)  # only when it grew
    assert counts[-1] == len(BOXES) and len(counts) >= 3  # updated as boxes arrive
    for at, figures in drawn:  # a box is drawn once its object is closed, never before
        closed = GROUNDING[:at].count("}")
        assert marks(figures) <= closed
    bases = [part["base"] for _, parts in drawn for part in parts if "base" in part]
    assert len(bases) == 1  # the picture travels once; each update is its layer of marks
    assert decode(bases[0]).width == 800  # as sent (the 32 px grid), not larger
    layer = decode(drawn[-1][1][0]["layer"])
    assert layer.mode == "RGBA" and layer.size == decode(bases[0]).size


def test_the_drawn_picture_shows_the_boxes():
    clock = Clock()
    overlay = LiveOverlay(photo_request(), clock=clock)
    feed = ReplyFeed(markdown_html, clock=clock, overlay=overlay)
    drawn = [m["overlay"] for _, m in feed_answer(feed, clock, GROUNDING) if "overlay" in m]
    picture = picture_of(drawn[0][0]["base"], drawn[-1])
    x1, y1, _, y2 = BOXES[-1]  # relative 0-1000 -> pixels
    edge = picture.getpixel((round(x1 / 1000 * picture.width),
                             round((y1 + y2) / 2000 * picture.height)))
    assert max(abs(a - b) for a, b in zip(edge, (40, 120, 40), strict=True)) > 60


def test_the_answer_is_read_at_most_every_interval_and_only_after_a_closing_brace():
    clock = Clock()
    overlay = LiveOverlay(photo_request(), clock=clock, interval=0.5)
    feed = ReplyFeed(markdown_html, clock=clock, overlay=overlay)
    feed_answer(feed, clock, GROUNDING, step=1, every=1)  # a draw after every character
    seconds = clock.now
    assert overlay.readings <= seconds / 0.5 + 2
    assert overlay.readings <= GROUNDING.count("}") + 1

    prose = LiveOverlay(photo_request(), clock=clock)
    feed = ReplyFeed(markdown_html, clock=clock, overlay=prose)
    feed_answer(feed, clock, "Braces {like these} and [lists] but no coordinates. " * 40)
    assert prose.readings == 0  # never named bbox_2d / point_2d: never parsed


def test_a_key_split_between_two_draws_is_still_seen():
    clock = Clock()
    overlay = LiveOverlay(photo_request(), clock=clock)
    overlay.add('[{"bbox')
    assert overlay.take() is None
    overlay.add('_2d": [1, 2, 300, 400], "label": "a"}')
    figures = overlay.take()
    assert figures is not None and marks(figures) == 1


def test_points_are_drawn_live_too():
    clock = Clock()
    overlay = LiveOverlay(photo_request(Reading(ground="cat")), clock=clock)
    feed = ReplyFeed(markdown_html, clock=clock, overlay=overlay)
    answer = '```json\n[{"point_2d": [500, 500], "label": "a"}, {"point_2d": [200, 700]'
    drawn = [m["overlay"] for _, m in feed_answer(feed, clock, answer) if "overlay" in m]
    assert [marks(figures) for figures in drawn] == [1]  # the second point is not closed


def test_no_overlay_without_images_or_in_json_and_document_modes():
    assert not LiveOverlay.wanted(photo_request(image=False))
    assert not LiveOverlay.wanted(photo_request(Reading(json=True)))
    assert not LiveOverlay.wanted(photo_request(Reading(doc="html")))
    assert LiveOverlay.wanted(photo_request(Reading()))  # boxes in a plain answer are drawn


def test_a_plain_answer_sends_exactly_the_messages_it_sent_before():
    answer = "## Result\n\nA **green** picture {with braces} and no boxes.\n\n" * 30
    plain_clock, overlay_clock = Clock(), Clock()
    plain = feed_answer(ReplyFeed(markdown_html, clock=plain_clock), plain_clock, answer)
    watched = feed_answer(ReplyFeed(markdown_html, clock=overlay_clock,
                                    overlay=LiveOverlay(photo_request(), clock=overlay_clock)),
                          overlay_clock, answer)
    assert watched == plain
