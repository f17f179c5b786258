"""Record / replay: a reply is saved once as a small JSON file and replayed on later runs.

The key is a sha256 of the canonical request: base URL, model, messages (image parts by
the digest of their encoded bytes) and the options that change the reply. Never the key
or a header. An entry holds the whole reply and the stream's timing shape, so a replay
streams into the same tabs, only faster.

Modes: ``off``; ``auto`` (replay a hit, call and record a miss); ``replay`` (a miss is a
`CacheMissError`; for CI); ``record`` (always call and overwrite).
"""

from __future__ import annotations

import datetime
import json
import math
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._errors import CacheMissError, ConfigError, Interrupted, QwenError
from ._fingerprint import cache_key, canonical_request
from ._redact import redact
from ._stream import EventStream, EventStreamBase
from ._types import (
    VIDEO_ENCODINGS,
    AnswerDelta,
    ChatRequest,
    Finished,
    PreparedVideo,
    QwenResponse,
    StreamEvent,
    ThinkingDelta,
    Usage,
    UsageUpdate,
)

if TYPE_CHECKING:
    from ._config import Settings

MODES = ("off", "auto", "replay", "record")
DEFAULT_DIR = ".qwen_cache"
FORMAT = "qwen_nb-cache/1"
# A replay streams like the recording but never takes longer than this.
MAX_REPLAY_SECONDS = 0.5
# Chunks are merged into at most this many timing segments, so an entry stays small.
MAX_SEGMENTS = 120
_KINDS = {"thinking": ThinkingDelta, "answer": AnswerDelta}


# --- settings --------------------------------------------------------------------------


def resolve_mode(
    mode: str | None = None, *, config: str | None = None, env: Mapping[str, str] | None = None
) -> str:
    """The cache mode: an explicit choice, then QWEN_NB_CACHE_MODE, then %config, then off."""
    env = os.environ if env is None else env
    for value, origin in (
        (mode, "cache"),
        (env.get("QWEN_NB_CACHE_MODE"), "QWEN_NB_CACHE_MODE"),
        (config, "QwenMagics.cache_mode"),
    ):
        if value is None or value == "":
            continue
        chosen = str(value).strip().lower()
        if chosen not in MODES:
            raise ConfigError(
                f"{origin} = {value!r} is not a cache mode. Choose one of: {', '.join(MODES)}."
            )
        return chosen
    return "off"


def resolve_dir(
    directory: str | os.PathLike[str] | None = None,
    *,
    config: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Path:
    """The cache folder: an explicit one, then QWEN_NB_CACHE, then %config, then
    `.qwen_cache/` in the working directory (a notebook's own folder in its kernel)."""
    env = os.environ if env is None else env
    for value in (directory, env.get("QWEN_NB_CACHE"), config):
        if value is not None and str(value) != "":
            return Path(value).expanduser()
    return Path(DEFAULT_DIR)


# --- keys ------------------------------------------------------------------------------


def prompt_label(request: ChatRequest, limit: int = 60) -> str:
    """The first non-empty line of the last user message: how a cell is named in messages."""
    for message in reversed(request.messages):
        if message.role == "user":
            for line in message.text.splitlines():
                if line.strip():
                    line = line.strip()
                    return line if len(line) <= limit else line[: limit - 1] + "…"
    return "(no text)"


def entry_name(request: ChatRequest, key: str) -> str:
    """`what-is-in-this-picture-3f9a1c7e5d2b4a60.json`: readable in a git listing."""
    slug = re.sub(r"[^a-z0-9]+", "-", prompt_label(request, 40).lower()).strip("-")[:40]
    return f"{slug.strip('-') or 'prompt'}-{key[:16]}.json"


# --- entries ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    """A piece of the stream: `delay` seconds after the previous one, `text` of one kind."""

    delay: float
    kind: str  # "thinking" or "answer"
    text: str


class CacheEntry:
    """One recorded reply, read from or written to one JSON file."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    @property
    def key(self) -> str:
        return self.data.get("key", "")

    @property
    def recorded(self) -> str:
        return self.data.get("recorded", "")

    def response(self) -> QwenResponse:
        reply = self.data["response"]
        usage = Usage(
            **{
                k: v
                for k, v in (reply.get("usage") or {}).items()
                if k in Usage.__dataclass_fields__
            }
        )
        return QwenResponse(
            answer=reply.get("answer", ""),
            thinking=reply.get("thinking", ""),
            usage=usage,
            finish_reason=reply.get("finish_reason"),
            model=reply.get("model"),
            request_id=reply.get("request_id"),
            elapsed=reply.get("elapsed"),
            time_to_first_token=reply.get("time_to_first_token"),
            thinking_seconds=_seconds(reply.get("thinking_seconds")),
            provider=reply.get("provider"),
            # A refusal and the transport's notes (e.g. "sent without thinking_budget") are
            # part of what the original showed; without them a replayed refusal would read
            # as "no answer text".
            refusal=reply.get("refusal"),
            notes=tuple(str(note) for note in reply.get("notes") or ()),
            replayed_from=self.recorded or "unknown date",
        )

    def videos(self, request: ChatRequest) -> tuple[PreparedVideo, ...]:
        """The request's videos, as the recorded call finally sent them."""
        encoding = self.data["response"].get("video_encoding")
        if encoding not in VIDEO_ENCODINGS:
            return request.videos
        return tuple(video.with_encoding(encoding) for video in request.videos)

    def segments(self) -> list[Segment]:
        """The timing shape, as segments whose texts add up to the thinking and answer."""
        reply = self.data["response"]
        texts = {"thinking": reply.get("thinking", ""), "answer": reply.get("answer", "")}
        offsets = {"thinking": 0, "answer": 0}
        segments = []
        for line in self.data.get("timing") or ():
            delay, kind, length = _parse_timing(line)
            start = offsets[kind]
            segments.append(Segment(delay, kind, texts[kind][start : start + length]))
            offsets[kind] = start + length
        for kind in ("thinking", "answer"):  # a hand-edited entry still replays in full
            if offsets[kind] < len(texts[kind]):
                segments.append(Segment(0.0, kind, texts[kind][offsets[kind] :]))
        return segments

    def dumps(self) -> str:
        return json.dumps(self.data, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def _parse_timing(line: str) -> tuple[float, str, int]:
    try:
        delay, kind, length = line.split()
        if kind not in _KINDS:
            raise ValueError(kind)
        return max(0.0, float(delay)), kind, int(length)
    except ValueError:
        raise ConfigError(
            f"A cache entry has a broken timing line {line!r}; delete the file to record it again."
        ) from None


def make_entry(
    request: ChatRequest,
    base_url: str,
    key: str,
    response: QwenResponse,
    segments: list[Segment],
    *,
    recorded: str | None = None,
) -> CacheEntry:
    """An entry for a finished reply: what was asked (no image bytes), the reply, timing."""
    usage = {k: v for k, v in response.usage.__dict__.items() if v is not None}
    return CacheEntry(
        {
            "format": FORMAT,
            "key": key,
            "recorded": recorded or datetime.datetime.now(datetime.timezone.utc).date().isoformat(),
            "request": {
                "base_url": base_url,
                "model": request.model,
                "prompt": prompt_label(request, 200),
                "images": [
                    {
                        "digest": image.digest,
                        "format": image.format,
                        "sent_size": "x".join(map(str, image.sent_size or ())) or None,
                    }
                    for image in request.images
                ],
                "options": canonical_request(request)["options"],
                # Only when present, so ordinary entries stay as they were.
                **({"videos": [
                    {"digest": video.digest, "frames": len(video.frames),
                     "encoding": video.encoding,
                     "frame_size": "x".join(map(str, video.frame_size or ())) or None}
                    for video in request.videos
                ]} if request.videos else {}),
            },
            "response": {
                "answer": response.answer,
                "thinking": response.thinking,
                "usage": usage,
                "finish_reason": response.finish_reason,
                "model": response.model,
                "request_id": response.request_id,
                "provider": response.provider,
                "elapsed": _round(response.elapsed),
                "time_to_first_token": _round(response.time_to_first_token),
                "thinking_seconds": _round(response.thinking_seconds),
                # Only when present, so ordinary entries stay as they were.
                **({"refusal": response.refusal} if response.refusal else {}),
                **({"notes": list(response.notes)} if response.notes else {}),
                # Videos the provider refused and got as images: the replay maps times so.
                **({"video_encoding": response.videos[0].encoding}
                   if response.videos and request.videos
                   and response.videos[0].encoding != request.videos[0].encoding else {}),
            },
            "timing": [f"{s.delay:.3f} {s.kind} {len(s.text)}" for s in segments],
        }
    )


def _seconds(value: object) -> float | None:
    """A recorded duration, or None when missing or not a number (older or edited file)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
        return float(value)
    return None


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def coalesce(segments: list[Segment], limit: int = MAX_SEGMENTS) -> list[Segment]:
    """Merge neighbouring chunks of one kind until at most `limit` segments remain. A merged
    segment arrives when its last chunk did, so the delays still add up to the total."""
    width = sum(s.delay for s in segments) / limit
    while len(segments) > limit:
        merged: list[Segment] = []
        for segment in segments:
            last = merged[-1] if merged else None
            if last is not None and last.kind == segment.kind and last.delay <= width:
                merged[-1] = Segment(
                    last.delay + segment.delay, last.kind, last.text + segment.text
                )
            else:
                merged.append(segment)
        if len(merged) == len(segments):  # the kinds alternate: nothing more to merge
            break
        segments, width = merged, width * 2 or 1e-6
    return segments


class Cache:
    """A folder of entries."""

    def __init__(self, directory: str | os.PathLike[str] | None = None) -> None:
        self.directory = resolve_dir(directory)

    def path_for(self, request: ChatRequest, key: str) -> Path:
        return self.directory / entry_name(request, key)

    def load(self, request: ChatRequest, key: str) -> CacheEntry | None:
        path = self.path_for(request, key)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"The cache entry {path} cannot be read ({exc}); delete it to record it again."
            ) from None
        if not isinstance(data, dict) or data.get("key") != key or "response" not in data:
            return None
        problem = entry_problem(data)
        if problem is not None:
            raise ConfigError(
                f"The cache entry {path} is corrupt ({problem}); delete it to record it again."
            )
        return CacheEntry(redacted_entry(data))

    def save(self, request: ChatRequest, entry: CacheEntry) -> Path:
        """Write atomically. An unchanged reply leaves the file (and its date) as it was,
        so re-recording a deterministic reply does not churn git."""
        path = self.path_for(request, entry.key)
        try:
            old = self.load(request, entry.key)
        except ConfigError:  # an unreadable old entry is what recording replaces
            old = None
        if old is not None and _same_reply(old, entry):
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            temporary.write_text(entry.dumps(), encoding="utf-8")
            os.replace(temporary, path)
        except BaseException:
            # A full disk or a read-only folder: no half-written file is left behind.
            temporary.unlink(missing_ok=True)
            raise
        return path


_TEXT_FIELDS = ("answer", "thinking")
_OPTIONAL_TEXT_FIELDS = ("finish_reason", "model", "request_id", "provider", "refusal")
_OPTIONAL_NUMBER_FIELDS = ("elapsed", "time_to_first_token")


def redacted_entry(data: dict[str, Any]) -> dict[str, Any]:
    """`data` with every key known now redacted from its recorded reply.

    Entries are written redacted, but a folder may hold one recorded by an older version,
    copied from elsewhere or edited by hand; replay must not show a key that live
    redaction would hide. If redaction changed the text, the timing (lengths of the
    recorded text) no longer fits it, so the reply replays in one piece.
    """
    reply = data["response"]
    cleaned = _redact_strings(reply)
    if cleaned != reply:
        data = {**data, "response": cleaned, "timing": []}
    return data


def _redact_strings(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list):
        return [_redact_strings(item) for item in value]
    if isinstance(value, dict):
        return {key: _redact_strings(item) for key, item in value.items()}
    return value


def entry_problem(data: dict[str, Any]) -> str | None:
    """What is wrong with a parsed entry's types (a hand edit, a bad merge), or None: checked
    on load, so replay and rendering never meet a wrong type."""
    if not isinstance(data.get("recorded", ""), str):
        return "recorded is not a string"
    reply = data["response"]
    if not isinstance(reply, dict):
        return "response is not an object"
    for name in _TEXT_FIELDS:
        if not isinstance(reply.get(name, ""), str):
            return f"response.{name} is not a string"
    for name in _OPTIONAL_TEXT_FIELDS:
        if not isinstance(reply.get(name), (str, type(None))):
            return f"response.{name} is not a string"
    for name in _OPTIONAL_NUMBER_FIELDS:
        if not _is_number(reply.get(name), optional=True):
            return f"response.{name} is not a number"
    usage = reply.get("usage") or {}
    if not isinstance(usage, dict):
        return "response.usage is not an object"
    for name, value in usage.items():
        if name in Usage.__dataclass_fields__ and not _is_number(value, optional=True):
            return f"response.usage.{name} is not a number"
    notes = reply.get("notes") or []
    if not isinstance(notes, list) or not all(isinstance(n, str) for n in notes):
        return "response.notes is not a list of strings"
    timing = data.get("timing") or []
    if not isinstance(timing, list) or not all(isinstance(t, str) for t in timing):
        return "timing is not a list of strings"
    for line in timing:
        try:
            _parse_timing(line)
        except ConfigError:
            return f"timing line {line!r} is broken"
    return None


def _is_number(value: Any, *, optional: bool) -> bool:
    if value is None:
        return optional
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _same_reply(old: CacheEntry, new: CacheEntry) -> bool:
    fields = ("answer", "thinking", "usage", "finish_reason", "model", "refusal")
    return all(old.data["response"].get(f) == new.data["response"].get(f) for f in fields)


# --- streams ---------------------------------------------------------------------------


class ReplayStream(EventStreamBase):
    """Streams a recorded reply with its recorded rhythm, compressed to at most
    MAX_REPLAY_SECONDS. Same protocol as `client.ResponseStream`."""

    def __init__(
        self,
        request: ChatRequest,
        entry: CacheEntry,
        *,
        path: Path | None = None,
        max_seconds: float = MAX_REPLAY_SECONDS,
    ) -> None:
        self.request = request
        self.entry = entry
        self.path = path
        self.max_seconds = max_seconds
        self._stop = threading.Event()
        self._thinking: list[str] = []
        self._answer: list[str] = []
        self._final: QwenResponse | None = None

    def close(self) -> None:
        self._stop.set()

    @property
    def response(self) -> QwenResponse:
        if self._final is not None:
            return self._final
        return self.entry.response().replace(
            answer="".join(self._answer),
            thinking="".join(self._thinking),
            images=self.request.images,
            videos=self.entry.videos(self.request),
            complete=False,
            error="stopped",
        )

    def _events(self) -> Iterator[StreamEvent]:
        segments = self.entry.segments()
        total = sum(s.delay for s in segments)
        scale = min(1.0, self.max_seconds / total) if total > 0 else 0.0
        for segment in segments:
            if self._stop.wait(segment.delay * scale) or self._stop.is_set():
                raise Interrupted(
                    "Stopped by the user; the partial reply is kept.", response=self.response
                )
            if not segment.text:
                continue
            (self._thinking if segment.kind == "thinking" else self._answer).append(segment.text)
            yield _KINDS[segment.kind](segment.text)
        final = self.entry.response().replace(images=self.request.images,
                                              videos=self.entry.videos(self.request))
        yield UsageUpdate(final.usage)
        self._final = final
        yield Finished(final)


class RecordingStream(EventStreamBase):
    """Passes a live stream through and writes an entry when it finishes complete."""

    def __init__(
        self, inner: EventStream, request: ChatRequest, *, cache: Cache, key: str, base_url: str
    ) -> None:
        self.inner = inner
        self.request = request
        self.cache = cache
        self.key = key
        self.base_url = base_url
        self.saved_to: Path | None = None

    def close(self) -> None:
        self.inner.close()

    @property
    def response(self) -> QwenResponse:
        return self.inner.response

    def _events(self) -> Iterator[StreamEvent]:
        segments: list[Segment] = []
        last = time.monotonic()
        for event in self.inner:
            now = time.monotonic()
            if isinstance(event, (ThinkingDelta, AnswerDelta)) and event.text:
                segments.append(Segment(now - last, event.type, event.text))
                last = now
            elif isinstance(event, Finished) and event.response.complete:
                entry = make_entry(
                    self.request, self.base_url, self.key, event.response, coalesce(segments)
                )
                try:
                    self.saved_to = self.cache.save(self.request, entry)
                except (OSError, QwenError) as exc:
                    # The reply arrived whole (and was paid for): a cache folder that cannot
                    # be written must not lose it. The Details tab says it was not recorded.
                    note = (
                        f"not recorded: the cache folder {self.cache.directory} cannot be "
                        f"written ({type(exc).__name__}: {getattr(exc, 'strerror', None) or exc})"
                    )
                    event = Finished(event.response.replace(notes=(*event.response.notes, note)))
            yield event


def open_cached(
    request: ChatRequest,
    settings: Settings,
    mode: str,
    open_live: Callable[[ChatRequest, Settings], EventStream],
    *,
    directory: str | os.PathLike[str] | None = None,
) -> EventStream:
    """The cache in front of `open_live`, as `mode` says (not "off")."""
    cache = Cache(directory)
    key = cache_key(request, settings.base_url)
    if mode in ("auto", "replay"):
        entry = cache.load(request, key)
        if entry is not None:
            return ReplayStream(request, entry, path=cache.path_for(request, key))
        if mode == "replay":
            raise CacheMissError(
                f'No recording of the request "{prompt_label(request)}" in '
                f"{cache.directory}/ (cache mode replay). Record it once with "
                '%%qwen --cache record (or ask(..., cache="record")), or set '
                "QWEN_NB_CACHE_MODE=auto, run the notebook with a key, and commit the "
                f"{cache.directory}/ folder."
            )
    return RecordingStream(
        open_live(request, settings), request, cache=cache, key=key, base_url=settings.base_url
    )
