"""The one request path shared by the magic, the panel, `ask()` and `stream()`.

inputs -> `build_request` -> `open_stream` (HTTP, offline simulator or cache) -> events
-> `run` feeds a view and returns the final `QwenResponse`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from ._config import Settings, resolve_settings
from ._errors import InputError, Interrupted, QwenError
from ._stream import EventStream
from ._types import (
    DEFAULT_MAX_PIXELS,
    ChatRequest,
    Finished,
    Message,
    Options,
    PreparedImage,
    PreparedVideo,
    PromptPart,
    QwenResponse,
    Reading,
    StreamEvent,
)


class View(Protocol):
    """Anything that shows a reply: live widgets, a terminal printer, the panel."""

    def update(self, event: StreamEvent) -> None: ...
    def fail(self, error: QwenError) -> None: ...


def make_options(
    *,
    temperature: float | None = None,
    top_p: float | None = None,
    max_tokens: int | None = None,
    seed: int | None = None,
    thinking_budget: int | None = None,
    stream: bool = True,
) -> Options:
    """Validated generation options; a bad value is refused before anything is sent."""

    def number(
        name: str, value: Any, low: float, high: float, rule: str, low_open: bool = False
    ) -> float | None:
        if value is None:
            return None
        ok = (
            isinstance(value, (int, float))
            and not isinstance(value, bool)
            and math.isfinite(value)
            and (low < value if low_open else low <= value)
            and value <= high
        )
        if not ok:
            raise InputError(f"{name} = {value!r} is not allowed: {rule}.")
        return float(value)

    def whole(name: str, value: Any, minimum: int | None, rule: str) -> int | None:
        if value is None:
            return None
        if (
            not isinstance(value, int)
            or isinstance(value, bool)
            or (minimum is not None and value < minimum)
        ):
            raise InputError(f"{name} = {value!r} is not allowed: {rule}.")
        return value

    return Options(
        temperature=number("temperature", temperature, 0, 2, "use a number from 0 to 2"),
        top_p=number("top_p", top_p, 0, 1, "use a number above 0 and at most 1", low_open=True),
        max_tokens=whole("max_tokens", max_tokens, 1, "use a whole number above 0"),
        seed=whole("seed", seed, None, "use a whole number"),
        thinking_budget=whole("thinking_budget", thinking_budget, 1, "use a whole number above 0"),
        stream=bool(stream),
    )


def build_request(
    parts: Sequence[PromptPart],
    *,
    model: str,
    system: str | None = None,
    history: Sequence[Message] = (),
    options: Options | None = None,
    reading: Reading | None = None,
) -> ChatRequest:
    """A request from prompt parts (text and images, in order) and earlier turns;
    `reading` says how to read the answer (grounding, JSON, documents)."""
    merged: list[PromptPart] = []
    for part in parts:
        if isinstance(part, str) and merged and isinstance(merged[-1], str):
            merged[-1] += part
        elif not (isinstance(part, str) and not part):
            merged.append(part)
    if not any(isinstance(p, str) and p.strip() for p in merged):
        raise InputError(
            "The prompt is empty: write a question or instruction for the model"
            " (images alone are not enough)."
        )
    # Surrounding whitespace from the cell layout means nothing to the model.
    if isinstance(merged[0], str):
        merged[0] = merged[0].lstrip()
    if isinstance(merged[-1], str):
        merged[-1] = merged[-1].rstrip()
    messages: list[Message] = []
    if system and system.strip():
        messages.append(Message("system", (system.strip(),)))
    messages.extend(history)
    messages.append(Message("user", tuple(p for p in merged if p != "")))
    refuse_key_in_prompt(messages)
    return ChatRequest(
        model=model, messages=tuple(messages), options=options or Options(),
        reading=reading or Reading(),
    )


def refuse_key_in_prompt(messages: Sequence[Message]) -> None:
    """An InputError when any text of the request (or a remote image URL) holds a key
    qwen_nb knows: whether it was typed, interpolated (`{os.environ}`), in the system
    prompt or in the history, a key sent as text would reach the model, the provider's
    logs and the saved notebook."""
    from ._redact import contains_key

    for index, message in enumerate(messages):
        remote_urls = " ".join(image.url for image in message.images
                               if not image.url.startswith("data:"))
        if contains_key(message.text) or contains_key(remote_urls):
            where = ("the system prompt" if message.role == "system" else
                     "the prompt" if index == len(messages) - 1 else
                     "an earlier turn of the conversation")
            if not contains_key(message.text):
                where = f"an image URL of {where}"
            raise InputError(
                f"The prompt contains your API key (in {where}); nothing was sent. Remove "
                "the key, or the {name} reference that put it there, and send again."
            )


def open_stream(
    request: ChatRequest,
    settings: Settings,
    cache: str | None = None,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
) -> EventStream:
    """Where a request goes: the record/replay cache (mode `cache`, else QWEN_NB_CACHE_MODE,
    else off), then the offline simulator or the provider over HTTP.

    A replay-mode miss raises CacheMissError here, before anything is sent."""
    from .cache import open_cached, resolve_mode

    mode = resolve_mode(cache)
    if mode != "off":
        return open_cached(request, settings, mode, _open_live, directory=cache_dir)
    return _open_live(request, settings)


def _open_live(request: ChatRequest, settings: Settings) -> EventStream:
    if (request.images or request.videos) and not settings.is_offline:
        from .media.images import check_payload_size

        frames = [frame for video in request.videos for frame in video.frames]
        check_payload_size([*request.images, *frames], settings.max_payload_bytes)
    if settings.is_offline:
        from .offline import OfflineStream

        return OfflineStream(request, settings)
    from .client import ResponseStream

    return ResponseStream(request, settings)


def run(
    request: ChatRequest,
    settings: Settings,
    view: View | None = None,
    stream: EventStream | None = None,
    *,
    cache: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> QwenResponse:
    """Consume a reply, feeding `view`; on failure the view keeps the partial reply and the
    error (carrying `.response`) is raised. `cache`: off, auto, replay or record."""
    if stream is None:
        try:
            stream = open_stream(request, settings, cache, cache_dir=cache_dir)
        except QwenError as error:  # e.g. a replay miss: the view shows it too
            if view is not None:
                view.fail(error)
            raise
    response: QwenResponse | None = None
    try:
        for event in stream:
            if isinstance(event, Finished):
                # The reply is read (boxes, JSON, documents) as the request asked.
                event = Finished(event.response.replace(reading=request.reading))
                response = event.response
            if view is not None:
                view.update(event)
    except KeyboardInterrupt:
        stream.close()
        error = Interrupted(
            "Interrupted; the partial reply is kept.",
            response=stream.response.replace(
                complete=False, error="interrupted", reading=request.reading),
        )
        if view is not None:
            view.fail(error)
        raise error from None
    except QwenError as error:
        if error.response is not None:
            error.response = error.response.replace(reading=request.reading)
        if view is not None:
            view.fail(error)
        raise
    except Exception as error:
        # A bug (ours or a view's) must still leave the output static and readable, with
        # what arrived, instead of a live widget that never finishes.
        if view is not None:
            partial = stream.response.replace(
                complete=False, error=f"unexpected {type(error).__name__}")
            view.fail(QwenError(f"Unexpected {type(error).__name__}", response=partial))
        raise
    finally:
        stream.close()
    assert response is not None, "an event stream must end with Finished"
    if request.reading.strict and response.interpretation.errors:
        from ._errors import SchemaError

        problems = "; ".join(response.interpretation.errors[:5])
        raise SchemaError(f"The answer does not match the schema (--strict): {problems}",
                          response=response)
    return response


def prepare_images(
    values: Sequence[Any],
    *,
    max_pixels: int | None,
    inline_urls: bool,
    settings: Settings,
    labels: Sequence[str] | None = None,
) -> list[PreparedImage]:
    """Images for `ask()` and the panel, in order; refuses bad ones before sending."""
    if not values:
        return []
    from .media.images import prepare_labelled

    labelled = [
        (value, labels[index] if labels else f"image {index + 1}")
        for index, value in enumerate(values)
    ]
    inline = inline_urls or not settings.provider.fetches_image_urls
    return prepare_labelled(
        labelled, max_pixels=max_pixels or DEFAULT_MAX_PIXELS, inline_urls=inline
    )


def video_values(value: Any) -> list[Any]:
    """`video=` as a list of videos: one video-like value, or a list of Video objects /
    video paths (a list of anything else is the frames of one video)."""
    if value is None:
        return []
    from .media.video import Video, is_video_like

    if isinstance(value, (list, tuple)) and value and all(
        isinstance(item, Video) or (is_video_like(item) and not hasattr(item, "shape"))
        for item in value
    ):
        return list(value)
    return [value]


def prepare_videos(
    values: Sequence[Any],
    *,
    settings: Settings,
    video_as: str | None = None,
    max_video_tokens: int | None = None,
    labels: Sequence[str] | None = None,
) -> list[PreparedVideo]:
    """Videos for `ask()`, the magic, batch and the panel, sampled and encoded the way the
    provider takes them (`video_as`: auto, video_url, frames or images)."""
    if not values:
        return []
    from .media.video import prepare_video
    from .media.video_plan import DEFAULT_MAX_VIDEO_TOKENS

    encoding = resolve_video_encoding(video_as, settings)
    cap = DEFAULT_MAX_VIDEO_TOKENS if max_video_tokens is None else max_video_tokens
    if not isinstance(cap, int) or isinstance(cap, bool) or cap < 1:
        raise InputError(f"max_video_tokens = {cap!r} is not allowed: use a whole number "
                         "above 0.")
    return [
        prepare_video(value, label=labels[index] if labels else f"video {index + 1}",
                      encoding=encoding, max_video_tokens=cap)
        for index, value in enumerate(values)
    ]


def resolve_video_encoding(video_as: str | None, settings: Settings) -> str:
    """`auto` (or None) -> the provider preset's way; else the name, checked."""
    from ._types import VIDEO_ENCODINGS

    if video_as in (None, "", "auto"):
        return settings.provider.video_encoding
    if video_as not in VIDEO_ENCODINGS:
        raise InputError(f"video_as = {video_as!r} is unknown: use auto, "
                         f"{', '.join(VIDEO_ENCODINGS)}.")
    return video_as


# The keywords of ask() / stream() / batch(), by where each one goes.
SETTINGS_KEYWORDS = ("provider", "base_url", "model", "api_key", "timeout", "connect_timeout",
                     "max_attempts", "max_retry_time", "max_payload_mb", "max_time",
                     "max_reply_mb", "max_line_mb", "max_body_mb")
REQUEST_KEYWORDS = ("system", "max_pixels", "inline_urls", "history", "video_as",
                    "max_video_tokens")
OPTION_KEYWORDS = ("temperature", "top_p", "max_tokens", "seed", "thinking_budget", "stream")
# How to ask for and read boxes, documents and JSON (qwen_nb.vision.request.plan_vision).
VISION_KEYWORDS = ("ground", "points", "coords", "json", "schema", "doc", "strict")


def split_keywords(kwargs: dict[str, Any]) -> tuple[Settings, dict[str, Any], Options]:
    """Keyword options -> (settings, request keywords, generation options), refusing an
    unknown or bad one before anything is sent. Vision keywords go with the request ones."""
    known_names = SETTINGS_KEYWORDS + REQUEST_KEYWORDS + OPTION_KEYWORDS + VISION_KEYWORDS
    unknown = set(kwargs) - set(known_names)
    if unknown:
        known = sorted(known_names)
        raise InputError(
            f"Unknown option {', '.join(sorted(unknown))}. Known options: {', '.join(known)}."
        )
    settings = resolve_settings(**{k: kwargs[k] for k in SETTINGS_KEYWORDS if k in kwargs})
    request = {k: kwargs[k] for k in REQUEST_KEYWORDS + VISION_KEYWORDS if k in kwargs}
    options = make_options(**{k: kwargs[k] for k in OPTION_KEYWORDS if k in kwargs})
    return settings, request, options


def vision_plan(request_keywords: dict[str, Any], images: int) -> Any:
    """The VisionPlan for the vision keywords among `request_keywords` (checked here)."""
    from .vision.request import plan_vision

    names = (*VISION_KEYWORDS, "schema_label")
    return plan_vision(
        **{k: request_keywords[k] for k in names if k in request_keywords}, images=images
    )


def with_vision(
    parts: Sequence[PromptPart], options: Options, plan: Any
) -> tuple[list[PromptPart], Options]:
    """The prompt with the plan's instruction after the user's text, and its
    response_format in the options."""
    parts = list(parts)
    if plan.instruction:
        has_text = any(isinstance(p, str) and p.strip() for p in parts)
        parts.append(("\n\n" if has_text else "") + plan.instruction)
    if plan.response_format is not None:
        import dataclasses

        options = dataclasses.replace(options, response_format=plan.response_format)
    return parts, options


def _settings_and_request(
    prompt: str, images: Sequence[Any], kwargs: dict[str, Any], video: Any = None
) -> tuple[Settings, ChatRequest]:
    settings, request, options = split_keywords(kwargs)
    prepared = prepare_images(images, max_pixels=request.get("max_pixels"),
                              inline_urls=request.get("inline_urls", False), settings=settings)
    videos = prepare_videos(video_values(video), settings=settings,
                            video_as=request.get("video_as"),
                            max_video_tokens=request.get("max_video_tokens"))
    plan = vision_plan(request, len(prepared))
    parts, options = with_vision([*prepared, *videos, prompt], options, plan)
    return settings, build_request(
        parts, model=settings.model, system=request.get("system"),
        history=request.get("history", ()), options=options, reading=plan.reading,
    )


def ask(
    prompt: str,
    *images: Any,
    video: Any = None,
    show: bool = False,
    cache: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    **options: Any,
) -> QwenResponse:
    """Ask the model about `images` (PIL images, arrays, figures, paths, URLs...).

    Options: model, system, provider, base_url, api_key, timeout, connect_timeout,
    max_attempts, max_retry_time, max_payload_mb, max_time (seconds for the whole call),
    max_reply_mb, max_line_mb, max_body_mb (caps against broken servers), temperature,
    top_p, max_tokens, seed, thinking_budget, max_pixels, inline_urls, stream, video_as,
    max_video_tokens; and
    ground= ("cat, red car": boxes in `.boxes`), points=True, coords= (auto, relative,
    absolute), json=True, schema= (pydantic model or JSON-schema dict: `.data`),
    strict=True, doc= ("html" or "markdown": `.document`). `video`: a path, bytes, a
    T x H x W x 3 array, a list of frames, a qwen_nb.Video, or a list of Video objects /
    paths (several videos). With `show=True`
    the reply streams into the notebook as the magic shows it. `cache`: off, auto, replay
    or record (default: QWEN_NB_CACHE_MODE, else off); `cache_dir`: default QWEN_NB_CACHE,
    else .qwen_cache/.
    """
    settings, request = _settings_and_request(prompt, images, dict(options), video)
    view = None
    if show:
        from .frontend.live import make_view

        view = make_view(request=request)
    return run(request, settings, view, cache=cache, cache_dir=cache_dir)


def stream(
    prompt: str,
    *images: Any,
    video: Any = None,
    cache: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    **options: Any,
) -> Iterator[StreamEvent]:
    """Yield typed events as they arrive: ThinkingDelta, AnswerDelta, UsageUpdate, Finished.
    `cache`, `cache_dir` and `video` as for `ask()`."""
    settings, request = _settings_and_request(prompt, images, dict(options), video)
    events = open_stream(request, settings, cache, cache_dir=cache_dir)
    try:
        yield from events
    finally:
        events.close()
