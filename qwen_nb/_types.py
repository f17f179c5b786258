"""Plain values that flow through qwen_nb: images, requests, stream events, responses.

Standard library only, so importing this module costs nothing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar

# Qwen3-VL sees the image as 16 px patches merged 2 x 2: one visual token per 32 x 32 unit.
QWEN3_VL_UNIT = 32
DEFAULT_MAX_PIXELS = 1280 * QWEN3_VL_UNIT * QWEN3_VL_UNIT
# The released Qwen3-VL processor (preprocessor_config.json: size.shortest_edge 65,536,
# size.longest_edge 16,777,216, in pixels) enlarges or shrinks every image into this range
# on the server, so planning inside it makes the size sent the size the model sees.
QWEN3_VL_MIN_PIXELS = 65_536  # 64 visual tokens
QWEN3_VL_MAX_PIXELS = 16_777_216  # 16,384 visual tokens
DEFAULT_MIN_PIXELS = QWEN3_VL_MIN_PIXELS


@dataclass(frozen=True)
class PreparedImage:
    """One image ready to send: a data URL (or a remote URL) plus what was done to it."""

    url: str
    source: str
    original_size: tuple[int, int] | None = None
    sent_size: tuple[int, int] | None = None
    format: str = ""
    nbytes: int = 0
    digest: str = ""  # sha256 of the encoded bytes (or of the URL): stable cache keys
    notes: tuple[str, ...] = ()
    page: int | None = None  # 1-based page number when the image is a PDF page

    @property
    def visual_tokens(self) -> int | None:
        """Estimated visual tokens: one per 32 x 32 unit of the size sent."""
        if self.sent_size is None:
            return None
        width, height = self.sent_size
        return math.ceil(width / QWEN3_VL_UNIT) * math.ceil(height / QWEN3_VL_UNIT)

    @property
    def has_payload(self) -> bool:
        """False once `without_payload()` dropped the data URL (a result kept for reading)."""
        return bool(self.url)

    def without_payload(self) -> PreparedImage:
        """The same description (digest, sizes, format, notes) minus the megabytes of data
        URL: what a batch result keeps after the request is sent. Remote URLs stay."""
        if not self.url.startswith("data:"):
            return self
        return dataclasses.replace(self, url="")

    def to_part(self) -> dict[str, Any]:
        if not self.url:
            raise ValueError(f"{self.source}: this image's payload was dropped after sending.")
        return {"type": "image_url", "image_url": {"url": self.url}}

    def __repr__(self) -> str:  # a data URL is megabytes long: never print it
        size = "x".join(map(str, self.sent_size)) if self.sent_size else "?"
        return f"PreparedImage(source={self.source!r}, size={size}, format={self.format!r})"


# How a video goes out: one video_url part holding a small MP4 (vLLM), a DashScope frame
# list ({"type": "video", "video": [...]}), or images interleaved with "<t seconds>" text
# (the Qwen cookbook's method; any image-capable server).
VIDEO_ENCODINGS = ("video_url", "frames", "images")
# DashScope assumes this rate for a frame list, whose fps cannot be passed.
DASHSCOPE_FRAME_LIST_FPS = 2.0


@dataclass(frozen=True)
class PreparedVideo:
    """A video sampled into frames, ready to send in one of VIDEO_ENCODINGS.

    `frames` are the JPEG frames sent (or packed into `mp4_url`); `timestamps` are their
    times in the source, in seconds; `thumbnails` are small JPEG data URLs for Details.
    """

    source: str
    frames: tuple[PreparedImage, ...]
    timestamps: tuple[float, ...]
    encoding: str = "images"
    mp4_url: str | None = None  # data:video/mp4;base64,... when encoding == "video_url"
    sample_fps: float = 2.0
    original_size: tuple[int, int] | None = None
    duration: float | None = None  # of the source (or of the chosen start..end range)
    thumbnails: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def frame_size(self) -> tuple[int, int] | None:
        return self.frames[0].sent_size if self.frames else None

    @property
    def visual_tokens(self) -> int:
        """Qwen3-VL's estimate: frames / 2 (temporal patches) x (h / 32) x (w / 32)."""
        size = self.frame_size
        if size is None:
            return 0
        width, height = size
        per_frame = max(1, round(width / QWEN3_VL_UNIT)) * max(1, round(height / QWEN3_VL_UNIT))
        return -(-len(self.frames) // 2) * per_frame

    @property
    def nbytes(self) -> int:
        if self.encoding == "video_url" and self.mp4_url:
            return len(self.mp4_url) * 3 // 4
        return sum(frame.nbytes for frame in self.frames)

    @property
    def digest(self) -> str:
        """sha256 over the frames' own digests and times: the bytes actually sent."""
        pairs = zip(self.frames, self.timestamps, strict=True)
        joined = "|".join(f"{frame.digest}@{moment:.3f}" for frame, moment in pairs)
        return hashlib.sha256(f"{self.encoding}|{joined}".encode()).hexdigest()

    def without_payload(self) -> PreparedVideo:
        """The same description (frames' digests and sizes, times, thumbnails) minus the
        frames' data URLs and the MP4: what a batch result keeps after sending."""
        return dataclasses.replace(
            self, frames=tuple(frame.without_payload() for frame in self.frames), mp4_url=None
        )

    def with_encoding(self, encoding: str) -> PreparedVideo:
        return dataclasses.replace(self, encoding=encoding)

    def source_time(self, model_time: float) -> float:
        """A time in the model's answer -> seconds in the source.

        Images carry their source times as text; a video_url MP4 and a DashScope frame list
        start at 0, at the sampling rate or DashScope's assumed 2 fps respectively."""
        if self.encoding == "images" or not self.timestamps:
            return model_time
        rate = self.sample_fps if self.encoding == "video_url" else DASHSCOPE_FRAME_LIST_FPS
        index = model_time * rate
        step = 1 / self.sample_fps if self.sample_fps > 0 else 0.0
        return self.timestamps[0] + index * step

    def model_time(self, index: int) -> float:
        """When frame `index` happens as the model sees it (the inverse of source_time)."""
        if self.encoding == "images":
            return self.timestamps[index]
        rate = self.sample_fps if self.encoding == "video_url" else DASHSCOPE_FRAME_LIST_FPS
        return index / rate

    def to_parts(self) -> list[dict[str, Any]]:
        """The content parts for this encoding."""
        if self.encoding == "video_url" and self.mp4_url:
            return [{"type": "video_url", "video_url": {"url": self.mp4_url}}]
        if self.encoding == "frames":
            return [{"type": "video", "video": [frame.url for frame in self.frames]}]
        parts: list[dict[str, Any]] = []
        for frame, timestamp in zip(self.frames, self.timestamps, strict=True):
            parts.append({"type": "text", "text": f"<{timestamp:.1f} seconds>"})
            parts.append(frame.to_part())
        return parts

    def __repr__(self) -> str:
        size = "x".join(map(str, self.frame_size)) if self.frame_size else "?"
        return (
            f"PreparedVideo(source={self.source!r}, frames={len(self.frames)}, size={size}, "
            f"encoding={self.encoding!r})"
        )


# A prompt is text, images and videos interleaved in the order written.
PromptPart = str | PreparedImage | PreparedVideo


@dataclass(frozen=True)
class Message:
    """One chat message; `parts` keeps text and images in order."""

    role: str
    parts: tuple[PromptPart, ...]

    @property
    def text(self) -> str:
        return "".join(p for p in self.parts if isinstance(p, str))

    @property
    def images(self) -> tuple[PreparedImage, ...]:
        return tuple(p for p in self.parts if isinstance(p, PreparedImage))

    @property
    def videos(self) -> tuple[PreparedVideo, ...]:
        return tuple(p for p in self.parts if isinstance(p, PreparedVideo))


@dataclass(frozen=True)
class Options:
    """Generation options. None means "let the provider decide" and is not sent."""

    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    seed: int | None = None
    thinking_budget: int | None = None
    stream: bool = True
    response_format: dict[str, Any] | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Reading:
    """How to read an answer beyond its text: grounding coordinates, JSON, a document.

    Travels with the request to the response; never sent and never part of a cache key
    (what is sent is in the messages and `Options.response_format`).
    """

    coords: str = "auto"  # relative (0-1000), absolute (pixels as sent) or auto (by model)
    ground: str | None = None  # what --ground asked to locate
    json: bool = False  # --json / --schema: the answer should be JSON
    schema: Any = field(default=None, compare=False)  # pydantic model class or JSON-schema dict
    doc: str | None = None  # "html" or "markdown" for document parsing
    strict: bool = False  # an answer that does not validate fails the cell


@dataclass(frozen=True)
class ChatRequest:
    """Everything needed to make one call, except the key (which lives in Settings)."""

    model: str
    messages: tuple[Message, ...]
    options: Options = field(default_factory=Options)
    reading: Reading = field(default_factory=Reading)

    @property
    def images(self) -> tuple[PreparedImage, ...]:
        return tuple(img for m in self.messages for img in m.images)

    @property
    def videos(self) -> tuple[PreparedVideo, ...]:
        return tuple(video for m in self.messages for video in m.videos)


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    reasoning_tokens: int | None = None
    total_tokens: int | None = None
    cost_usd: float | None = None
    # AIML API's own accounting (meta.usage), shown beside the cost.
    credits_used: float | None = None
    tokens_used: int | None = None


# --- stream events -------------------------------------------------------------------
# `type` is a class constant, not a field: a reply is thousands of deltas, and a frozen
# dataclass pays for every field it sets (0.32 against 0.61 us per event here).


@dataclass(frozen=True)
class ThinkingDelta:
    text: str
    type: ClassVar[str] = "thinking"


@dataclass(frozen=True)
class AnswerDelta:
    text: str
    type: ClassVar[str] = "answer"


@dataclass(frozen=True)
class UsageUpdate:
    usage: Usage
    type: ClassVar[str] = "usage"


@dataclass(frozen=True)
class Finished:
    """The stream ended; `response` is the final (possibly incomplete) result."""

    response: QwenResponse
    type: ClassVar[str] = "done"


StreamEvent = ThinkingDelta | AnswerDelta | UsageUpdate | Finished


# --- the result ------------------------------------------------------------------------


@dataclass(frozen=True)
class QwenResponse:
    """The result of one call: the answer, the thinking trace, and how it went."""

    answer: str = ""
    thinking: str = ""
    usage: Usage = field(default_factory=Usage)
    finish_reason: str | None = None
    model: str | None = None
    request_id: str | None = None
    elapsed: float | None = None
    time_to_first_token: float | None = None
    complete: bool = True
    error: str | None = None
    attempts: int = 1
    provider: str | None = None
    images: tuple[PreparedImage, ...] = ()
    notes: tuple[str, ...] = ()
    replayed_from: str | None = None  # recording date when served from the cache
    refusal: str | None = None  # the model's refusal text, when it declined to answer
    # From the first thinking token to the first answer token (or the end): the
    # Thinking tab's "Thinking · 12 s" label.
    thinking_seconds: float | None = None
    reading: Reading = field(default_factory=Reading, repr=False)
    videos: tuple[PreparedVideo, ...] = ()

    @property
    def events(self) -> list[Any]:
        """Moments and spans the answer locates in time, in the first video's source
        seconds (`vision.timeline.TimelineEvent`); empty when there are none."""
        from .vision.timeline import parse_events

        events = parse_events(self.answer)
        if not self.videos:
            return events
        video = self.videos[0]
        return [event.mapped(video.source_time) for event in events]

    def replace(self, **changes: Any) -> QwenResponse:
        return dataclasses.replace(self, **changes)

    @cached_property
    def interpretation(self) -> Any:
        """What the answer means beyond text (boxes, points, data, document); computed once."""
        if _answer_reader is None:  # only before qwen_nb/__init__ has run
            raise RuntimeError("import qwen_nb first: it plugs in the answer reader")
        return _answer_reader(self)

    @property
    def boxes(self) -> Any:
        """Grounding boxes (`bbox_2d`) in pixels of the images you passed."""
        return self.interpretation.boxes

    @property
    def points(self) -> Any:
        """Grounding points (`point_2d`) in pixels of the images you passed."""
        return self.interpretation.points

    @property
    def data(self) -> Any:
        """The answer's JSON (validated against --schema when one was given), or None."""
        return self.interpretation.data

    @property
    def document(self) -> Any:
        """The parsed document of a --doc answer (clean HTML/Markdown, regions), or None."""
        return self.interpretation.document

    def overlay(self, i: int = 0, *, full: bool = False) -> Any:
        """Image `i` of the request with its boxes and points drawn (a PIL image): as the
        model saw it, or with `full=True` on the full-resolution original."""
        if _overlay_drawer is None:
            raise RuntimeError("import qwen_nb first: it plugs in the overlay drawer")
        return _overlay_drawer(self, i, full)

    def __str__(self) -> str:
        return self.answer

    def __repr__(self) -> str:
        state = "complete" if self.complete else f"incomplete: {self.error}"
        return (
            f"QwenResponse(model={self.model!r}, answer={_clip(self.answer)!r}, "
            f"thinking={_clip(self.thinking)!r}, finish_reason={self.finish_reason!r}, {state})"
        )

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> tuple[dict, dict]:
        if _bundle_renderer is None:  # only before qwen_nb/__init__ has run
            return {"text/plain": repr(self)}, {}
        return _bundle_renderer(self)


# The renderer (render/) sits above this module, since it reads these types; the package's
# __init__, which sits above both, plugs it in, so values never import their views.
BundleRenderer = Callable[[QwenResponse], tuple[dict, dict]]
_bundle_renderer: BundleRenderer | None = None


def set_bundle_renderer(renderer: BundleRenderer) -> None:
    """Choose how a QwenResponse displays itself in a notebook (the static tabs)."""
    global _bundle_renderer
    _bundle_renderer = renderer


# Likewise vision/ (what an answer means) and render/overlay (drawing it) read these types,
# so the package plugs them in; they load on first use of `.boxes` or `.overlay()`.
AnswerReader = Callable[[QwenResponse], Any]
OverlayDrawer = Callable[[QwenResponse, int, bool], Any]
_answer_reader: AnswerReader | None = None
_overlay_drawer: OverlayDrawer | None = None


def set_answer_reader(reader: AnswerReader, drawer: OverlayDrawer) -> None:
    """Choose how a QwenResponse reads its answer (boxes, data, document) and draws it."""
    global _answer_reader, _overlay_drawer
    _answer_reader, _overlay_drawer = reader, drawer


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
