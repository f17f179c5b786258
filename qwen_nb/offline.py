"""The offline simulator: a provider that needs no network, no key and no model.

It streams a short thinking trace and a Markdown answer that describe what it received
(the prompt's length, each image's sent size and mean colour, the options) and say plainly
that they come from the simulator. Everything is derived from the request, so the same
request gives the same reply, chunked the same way, on any machine.
"""

from __future__ import annotations

import base64
import colorsys
import json
import math
import random
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ._errors import Interrupted
from ._fingerprint import request_fingerprint
from ._stream import EventStreamBase
from ._types import (
    AnswerDelta,
    ChatRequest,
    Finished,
    PreparedImage,
    PreparedVideo,
    QwenResponse,
    StreamEvent,
    ThinkingDelta,
    Usage,
    UsageUpdate,
)

if TYPE_CHECKING:
    from ._config import Settings

SIMULATOR = "offline simulator"
# The whole reply streams in about this long: live-looking, but fast.
STREAM_SECONDS = 0.3
FIRST_TOKEN_SECONDS = 0.05


@dataclass(frozen=True)
class ImageFacts:
    label: str
    size: tuple[int, int] | None
    format: str
    mean_rgb: tuple[int, int, int] | None
    visual_tokens: int | None

    def describe(self) -> str:
        size = f"{self.size[0]} x {self.size[1]} px" if self.size else "size unknown"
        fmt = f" sent as {self.format.upper()}" if self.format else ""
        if self.mean_rgb is None:
            colour = "colour not examined (a URL the simulator does not fetch)"
        else:
            r, g, b = self.mean_rgb
            colour = f"mean colour rgb({r}, {g}, {b}), {colour_name(self.mean_rgb)}"
        tokens = f", about {self.visual_tokens} visual tokens" if self.visual_tokens else ""
        return f"`{self.label}`: {size}{fmt}, {colour}{tokens}"


def colour_name(rgb: tuple[int, int, int]) -> str:
    """A plain English name for a colour: enough to tell a red square from a blue one."""
    hue, lightness, saturation = colorsys.rgb_to_hls(*(c / 255 for c in rgb))
    if saturation < 0.15 or lightness < 0.08 or lightness > 0.94:
        if lightness < 0.15:
            return "black"
        if lightness > 0.85:
            return "white"
        return "dark grey" if lightness < 0.45 else "grey"
    degrees = hue * 360
    names = (
        (15, "red"),
        (40, "orange"),
        (70, "yellow"),
        (165, "green"),
        (195, "cyan"),
        (255, "blue"),
        (290, "purple"),
        (335, "pink"),
        (360, "red"),
    )
    name = next(label for limit, label in names if degrees < limit)
    if name == "orange" and lightness < 0.35:
        return "brown"
    if lightness < 0.3:
        return f"dark {name}"
    if lightness > 0.75:
        return f"light {name}"
    return name


def image_facts(image: PreparedImage, index: int) -> ImageFacts:
    """Size and mean colour of an image as sent (decodes a data URL with Pillow)."""
    label = image.source or f"image {index}"
    mean: tuple[int, int, int] | None = None
    size = image.sent_size
    if image.url.startswith("data:"):
        import io

        from PIL import Image, ImageStat

        try:
            data = base64.b64decode(image.url.split(",", 1)[1])
            with Image.open(io.BytesIO(data)) as opened:
                size = size or opened.size
                thumbnail = opened.convert("RGB")
                thumbnail.thumbnail((64, 64))
                mean = tuple(round(c) for c in ImageStat.Stat(thumbnail).mean[:3])  # type: ignore[assignment]
        except Exception:  # the simulator describes; it does not judge
            mean = None
    return ImageFacts(label, size, image.format, mean, image.visual_tokens)


def video_thinking(video: PreparedVideo, index: int) -> list[str]:
    """What the simulator saw of one video: its frames, their times and colours."""
    size = "x".join(map(str, video.frame_size or ()))
    lines = [f"Video {index}: {len(video.frames)} frames of {size} px, sent as "
             f"{video.encoding}, about {video.visual_tokens} visual tokens."]
    for i, colour in list(enumerate(_frame_colours(video)))[:16]:
        lines.append(f"Frame {i + 1} at {video.model_time(i):.1f} s: {colour}.")
    return lines


def video_answer(video: PreparedVideo, index: int) -> list[str]:
    """One video in the answer, with a JSON list of the spans where the frames' mean
    colour stays the same, so timelines can be tried offline (times as the model sees
    them)."""
    spans: list[dict[str, str]] = []
    for i, colour in enumerate(_frame_colours(video)):
        moment = _clock(video.model_time(i))
        if spans and spans[-1]["event"] == f"frames look {colour}":
            spans[-1].pop("time", None)
            spans[-1]["end"] = moment
        else:
            spans.append({"start": moment, "event": f"frames look {colour}"})
    for span in spans:  # a single frame is a moment, not a span
        if "end" not in span:
            span["time"] = span.pop("start")
    size = "x".join(map(str, video.frame_size or ()))
    return [
        f"- Video {index}: `{video.source}`, {len(video.frames)} frames of {size} px, "
        f"sent as {video.encoding}",
        "",
        "```json",
        json.dumps(spans, indent=1),
        "```",
        "",
    ]


def _frame_colours(video: PreparedVideo) -> list[str]:
    colours = []
    for i, frame in enumerate(video.frames, 1):
        mean = image_facts(frame, i).mean_rgb
        colours.append(colour_name(mean) if mean else "unknown")
    return colours


def _clock(seconds: float) -> str:
    minutes, rest = divmod(round(seconds, 1), 60)
    return f"{int(minutes):02d}:{rest:04.1f}"


def text_tokens(text: str) -> int:
    """Rule-of-thumb token count: about four characters a token."""
    return math.ceil(len(text) / 4) if text else 0


def prompt_tokens(request: ChatRequest) -> int:
    """Text tokens of every message, a few per message for the chat template, and the
    visual tokens of every image."""
    total = 0
    for message in request.messages:
        total += 4 + text_tokens(message.text)
        total += sum(image.visual_tokens or 256 for image in message.images)
        total += sum(video.visual_tokens for video in message.videos)
    return total


def compose(request: ChatRequest) -> tuple[str, str]:
    """The (thinking, answer) for a request; a pure function of the request."""
    fingerprint = request_fingerprint(request)
    from .offline_vision import vision_answer  # boxes, documents, JSON: answered in kind

    special = vision_answer(request, random.Random(int(fingerprint[:16], 16)), colour_name)
    if special is not None:
        return special
    user = next(m for m in reversed(request.messages) if m.role == "user")
    text = user.text
    words = len(text.split())
    # Images are shown where they were written, so interleaving can be checked at a glance.
    numbers = {id(image): f"image {i}" for i, image in enumerate(request.images, 1)}
    numbers.update({id(video): f"video {i}" for i, video in enumerate(request.videos, 1)})
    marked = "".join(part if isinstance(part, str) else f" [{numbers[id(part)]}] "
                     for part in user.parts)
    first_line = next((" ".join(line.split()) for line in marked.splitlines() if line.strip()),
                      "")
    if len(first_line) > 80:
        first_line = first_line[:79] + "…"
    facts = [image_facts(image, i) for i, image in enumerate(request.images, 1)]
    system = next((m.text for m in request.messages if m.role == "system"), None)
    history = sum(1 for m in request.messages if m.role != "system") - 1
    opts = request.options
    options = [
        f"{name}={getattr(opts, name)}"
        for name in ("temperature", "top_p", "max_tokens", "seed", "thinking_budget")
        if getattr(opts, name) is not None
    ]
    images_word = "image" if len(facts) == 1 else "images"

    thinking_lines = [
        "I am the offline simulator, not a model: I do not interpret anything, I only "
        "describe what arrived.",
        f"The prompt has {len(text):,} characters ({words:,} words) and comes with "
        f"{len(facts)} {images_word}.",
    ]
    thinking_lines += [
        f"Image {i}: {fact.describe().replace('`', '')}." for i, fact in enumerate(facts, 1)
    ]
    for i, video in enumerate(request.videos, 1):
        thinking_lines += video_thinking(video, i)
    thinking_lines += [
        f"Options: {', '.join(options) if options else 'provider defaults'}.",
        "I will answer with a heading, a list, a formula and a code block, so the "
        "renderer can be checked.",
    ]
    thinking = "\n".join(thinking_lines)

    answer = [
        "### Offline simulator reply",
        "",
        "**This is not a model's answer.** qwen_nb's offline simulator describes the request "
        "instead of looking at it. Set `AIML_API_KEY` (or another provider's key) and run "
        "the cell again for a real answer.",
        "",
        "**What it received**",
        "",
        f"- Prompt: {len(text):,} characters, {words:,} words"
        + (f', first line: "{first_line}"' if first_line else ""),
        f"- Images: {len(facts)}",
    ]
    answer += [f"  {i}. {fact.describe()}" for i, fact in enumerate(facts, 1)]
    for i, video in enumerate(request.videos, 1):
        answer += video_answer(video, i)
    answer += [
        f"- Options: {', '.join(options) if options else 'provider defaults'}",
        f"- System prompt: {f'{len(system):,} characters' if system else 'none'}; "
        f"earlier turns: {max(0, history)}",
        "",
        f"Prompt size, by the usual rule of thumb: $t \\approx \\lceil n/4 \\rceil + "
        f"\\sum_i v_i = {prompt_tokens(request):,}$ tokens, where $n$ is the text length and "
        "$v_i$ the visual tokens of image $i$.",
        "",
        "```python",
        f'request_fingerprint = "{fingerprint[:16]}"  # same request, same reply',
        "```",
    ]
    return thinking, "\n".join(answer)


def chunk(text: str, rng: random.Random) -> list[str]:
    """Split like a real stream: small pieces of 1 to 12 characters."""
    pieces, start = [], 0
    while start < len(text):
        size = rng.randint(1, 12)
        pieces.append(text[start : start + size])
        start += size
    return pieces


class OfflineStream(EventStreamBase):
    """Same protocol as `client.ResponseStream`: iterate for events (the last one is
    `Finished`), `close()` from any thread, `.response` is the snapshot so far."""

    def __init__(
        self, request: ChatRequest, settings: Settings, *, seconds: float = STREAM_SECONDS
    ) -> None:
        self.request = request
        self.settings = settings
        self.seconds = seconds
        self._stop = threading.Event()
        self._thinking: list[str] = []
        self._answer: list[str] = []
        # The simulator reports its own schedule, not this run's wall clock, so a
        # re-executed notebook shows the same figures.
        self._clock = 0.0
        self._first_token: float | None = None
        self._usage = Usage()
        self._finish_reason: str | None = None
        self._complete = False
        fingerprint = request_fingerprint(request)
        self.request_id = f"offline-{fingerprint[:24]}"
        self._rng = random.Random(int(fingerprint[:16], 16))
        model = request.model
        self.model = model if SIMULATOR in model else f"{model} ({SIMULATOR})"

    def close(self) -> None:
        self._stop.set()

    @property
    def response(self) -> QwenResponse:
        return QwenResponse(
            answer="".join(self._answer),
            thinking="".join(self._thinking),
            usage=self._usage,
            finish_reason=self._finish_reason,
            model=self.model,
            request_id=self.request_id,
            elapsed=round(self._clock, 3),
            time_to_first_token=None if self._first_token is None else round(self._first_token, 3),
            complete=self._complete,
            error=None if self._complete else "stopped",
            provider="offline",
            images=self.request.images,
            videos=self.request.videos,
        )

    def _events(self) -> Iterator[StreamEvent]:
        thinking, answer = compose(self.request)
        opts = self.request.options
        # Budgets behave as on a real provider: thinking is cut at its budget, the whole
        # reply at max_tokens (finish reason "length").
        if opts.thinking_budget is not None:
            thinking = thinking[: opts.thinking_budget * 4]
        finish_reason = "stop"
        if opts.max_tokens is not None:
            room = opts.max_tokens * 4
            thinking = thinking[:room]
            room -= len(thinking)
            if room < len(answer):
                answer, finish_reason = answer[: max(0, room)], "length"
        if opts.stream:
            plan = [(ThinkingDelta, p) for p in chunk(thinking, self._rng)]
            plan += [(AnswerDelta, p) for p in chunk(answer, self._rng)]
        else:
            plan = [(ThinkingDelta, thinking), (AnswerDelta, answer)]
        step = max(0.0, self.seconds - FIRST_TOKEN_SECONDS) / max(1, len(plan))
        for index, (kind, piece) in enumerate(plan):
            delay = FIRST_TOKEN_SECONDS if index == 0 else step
            if self._stop.wait(delay):
                raise Interrupted(
                    "Stopped by the user; the partial reply is kept.", response=self.response
                )
            self._clock += delay
            if not piece:
                continue
            if self._first_token is None:
                self._first_token = self._clock
            (self._thinking if kind is ThinkingDelta else self._answer).append(piece)
            yield kind(piece)
        reasoning = text_tokens(thinking)
        completion = reasoning + text_tokens(answer)
        prompt = prompt_tokens(self.request)
        self._usage = Usage(
            prompt_tokens=prompt,
            completion_tokens=completion,
            reasoning_tokens=reasoning,
            total_tokens=prompt + completion,
        )
        yield UsageUpdate(self._usage)
        self._finish_reason = finish_reason
        self._complete = True
        yield Finished(self.response)
