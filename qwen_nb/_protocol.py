"""The chat-completions wire format: payloads out, chunks in, thinking apart from answer.

No I/O here. `ChatAccumulator` turns parsed chunks into typed events and a snapshot,
whatever dialect the provider speaks: `reasoning_content` (AIML API, DashScope),
`reasoning` (vLLM >= 0.11, Ollama, OpenRouter) or `<think>` tags inside `content`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from typing import Any

from ._errors import StreamError
from ._redact import MIN_KEY_LENGTH, redact, secret_forms
from ._types import (
    AnswerDelta,
    ChatRequest,
    Message,
    PreparedVideo,
    QwenResponse,
    StreamEvent,
    ThinkingDelta,
    Usage,
    UsageUpdate,
)

OPEN_TAG = "<think>"
CLOSE_TAG = "</think>"


# --- payload ---------------------------------------------------------------------------


def message_payload(message: Message, video_encoding: str | None = None) -> dict[str, Any]:
    """A message as JSON: plain string content when it is text only, else typed parts.

    `video_encoding` overrides each video's own encoding (the fallback to images)."""
    if not message.images and not message.videos:
        return {"role": message.role, "content": message.text}
    content: list[dict[str, Any]] = []
    for part in message.parts:
        if isinstance(part, str):
            if part:
                content.append({"type": "text", "text": part})
        elif isinstance(part, PreparedVideo):
            video = part.with_encoding(video_encoding) if video_encoding else part
            content.extend(video.to_parts())
        else:
            content.append(part.to_part())
    return {"role": message.role, "content": content}


def build_payload(
    request: ChatRequest,
    *,
    thinking_budget_param: str | None,
    video_encoding: str | None = None,
) -> dict[str, Any]:
    """The JSON body for /chat/completions.

    `thinking_budget_param` says how this provider takes a thinking budget:
    "thinking_budget" (DashScope style, top level), "reasoning.max_tokens" (OpenRouter),
    or None (not sent). `video_encoding` sends every video that way instead of its own.
    """
    opts = request.options
    payload: dict[str, Any] = {
        "model": request.model,
        "messages": [message_payload(m, video_encoding) for m in request.messages],
    }
    mp4_videos = [
        v for v in request.videos if (video_encoding or v.encoding) == "video_url" and v.mp4_url
    ]
    if mp4_videos:
        # vLLM samples a video_url itself; the MP4 holds exactly the frames chosen here, at
        # this rate, so sampling at the same fps keeps every one of them.
        payload["mm_processor_kwargs"] = {
            "fps": round(mp4_videos[0].sample_fps, 4),
            "do_sample_frames": True,
        }
    for name in ("temperature", "top_p", "max_tokens", "seed"):
        value = getattr(opts, name)
        if value is not None:
            payload[name] = value
    if opts.thinking_budget is not None and thinking_budget_param:
        if thinking_budget_param == "reasoning.max_tokens":
            payload["reasoning"] = {"max_tokens": opts.thinking_budget}
        else:
            payload[thinking_budget_param] = opts.thinking_budget
    if opts.response_format is not None:
        payload["response_format"] = opts.response_format
    if opts.stream:
        payload["stream"] = True
        payload["stream_options"] = {"include_usage": True}
    else:
        payload["stream"] = False
    return payload


# --- think tags ------------------------------------------------------------------------


def _partial_tag_suffix(text: str, tag: str) -> int:
    """Length of the longest end of `text` that could be the start of `tag`."""
    if tag[0] not in text[1 - len(tag) :]:  # the hot path: no partial tag possible
        return 0
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if tag.startswith(text[-size:]):
            return size
    return 0


class ThinkTagSplitter:
    """Splits `content` text carrying `<think>...</think>` into thinking and answer.

    Only for servers that send no reasoning field. Tags may be split across chunks, so a
    possible partial tag is held back until the next piece decides it, and so are newlines
    at the end of the thinking (dropped before `</think>`). Nothing is moved after it was
    emitted, so the deltas joined are exactly the final texts.

    Some servers send only the closing tag (Qwen3-VL-Thinking's chat template puts
    `<think>` in the prompt). With `assume_thinking` (a model named "...Thinking"), text
    that does not open with `<think>` is held back until it is decided: a `</think>` makes
    it thinking, the end of the reply without one makes it the answer (a plain reply). Without
    `assume_thinking`, such text is the answer and any tag in it is text.
    """

    def __init__(self, *, assume_thinking: bool) -> None:
        self.assume_thinking = assume_thinking
        self.mode = "start"  # start -> thinking -> answer, or start -> answer
        self.saw_open = False
        self.saw_close = False
        self._held = ""
        self._newlines = ""
        self._undecided: list[str] = []  # assumed thinking, until </think> or the end
        self._thinking: list[str] = []
        self._answer: list[str] = []
        self._answer_started = False

    @property
    def thinking(self) -> str:
        return "".join(self._thinking)

    @property
    def answer(self) -> str:
        return "".join(self._answer)

    @property
    def unclosed(self) -> bool:
        """`<think>` opened and no `</think>` came (a reply cut short while thinking)."""
        return self.mode == "thinking" and self.saw_open

    def feed(self, text: str) -> list[StreamEvent]:
        text = self._held + text
        self._held = ""
        events: list[StreamEvent] = []
        while text:
            if self.mode == "start":
                stripped = text.lstrip()
                if len(stripped) < len(OPEN_TAG) and OPEN_TAG.startswith(stripped):
                    self._held = text  # could still become "<think>"
                    return events
                if stripped.startswith(OPEN_TAG):
                    self.saw_open = True
                    self.mode = "thinking"
                    text = stripped[len(OPEN_TAG) :].lstrip("\n")
                else:
                    self.mode = "thinking" if self.assume_thinking else "answer"
                continue
            if self.mode == "answer":
                events.extend(self._emit_answer(text))
                break
            index = text.find(CLOSE_TAG)
            if index >= 0:
                before, text = text[:index], text[index + len(CLOSE_TAG) :]
                if self._undecided:  # the guess held back is thinking after all
                    before = "".join(self._undecided) + before
                    self._undecided = []
                self._emit_thinking(before, events)
                self._newlines = ""
                self.saw_close = True
                self.mode = "answer"
                continue
            keep = _partial_tag_suffix(text, CLOSE_TAG)
            if keep:
                text, self._held = text[:-keep], text[-keep:]
            if self.saw_open:
                self._emit_thinking(text, events)
            elif text:
                self._undecided.append(text)
            break
        return events

    def _emit_thinking(self, text: str, events: list[StreamEvent]) -> None:
        text = self._newlines + text if self._thinking else text.lstrip("\n")
        kept = text.rstrip("\n")
        self._newlines = text[len(kept) :]
        if kept:
            self._thinking.append(kept)
            events.append(ThinkingDelta(kept))

    def _emit_answer(self, text: str) -> list[StreamEvent]:
        if not self._answer_started:
            text = text.lstrip("\n")
            if not text:
                return []
            self._answer_started = True
        self._answer.append(text)
        return [AnswerDelta(text)]

    def finish(self) -> list[StreamEvent]:
        """End of content: release held text (trailing newlines of the thinking go)."""
        events: list[StreamEvent] = []
        held, self._held = self._held, ""
        if self.mode == "start" and held:
            self.mode = "answer"
        if self.mode == "thinking" and not self.saw_open:
            # No </think> came: what was held back as a guess is a plain answer.
            held = "".join(self._undecided) + held
            self._undecided = []
            self.mode = "answer"
        if held:
            if self.mode == "thinking":
                self._emit_thinking(held, events)
            else:
                events.extend(self._emit_answer(held))
        self._newlines = ""
        return events


# --- accumulation ----------------------------------------------------------------------


def parse_usage(raw: Any) -> Usage | None:
    if not isinstance(raw, dict):
        return None
    details = raw.get("completion_tokens_details")
    reasoning = details.get("reasoning_tokens") if isinstance(details, dict) else None
    if reasoning is None:
        reasoning = raw.get("reasoning_tokens")
    return Usage(
        prompt_tokens=_count(raw.get("prompt_tokens")),
        completion_tokens=_count(raw.get("completion_tokens")),
        reasoning_tokens=_count(reasoning),
        total_tokens=_count(raw.get("total_tokens")),
    )


_MAX_COUNT = 2**53  # no real count comes near; a bigger one is noise, not a token count


def _count(value: Any) -> int | None:
    """A token count, or None for anything that is not a plain, sane whole number."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _MAX_COUNT:
        return value
    return None


def _money(value: Any) -> float | None:
    """A cost or credit figure, or None for NaN, infinities, negatives and non-numbers."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) and number >= 0 else None


def reasoning_text(value: Any, depth: int = 0) -> str | None:
    """A reasoning field as text: a string, or an object / list of objects with `text`."""
    if type(value) is str:
        return value or None
    if depth > 3:
        return None
    if isinstance(value, dict):
        return reasoning_text(value.get("text", value.get("content")), depth + 1)
    if isinstance(value, list):
        return "".join(filter(None, (reasoning_text(v, depth + 1) for v in value))) or None
    return None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


# json.loads is the C scanner behind two Python frames and two whitespace regexes: 5.4 us
# per chunk here against 3.2 us for the scanner alone. A chunk the scanner reads whole goes
# that way; anything else (whitespace around it, extra data, errors) takes json.loads' path,
# so the values and the errors are json.loads' own.
_scan_json = json.JSONDecoder().scan_once


def parse_chunk(data: str) -> Any:
    """One SSE data payload as JSON; anything else is the provider's fault, not a crash."""
    try:
        value, end = _scan_json(data, 0)
        if end == len(data):
            return value
    except (StopIteration, ValueError, RecursionError):
        pass
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:
        huge_int = isinstance(exc, ValueError) and "integer string conversion" in str(exc)
    if huge_int:
        # An integer too long for int() (a broken usage count): read it as "no count"
        # rather than lose a reply that is otherwise fine.
        try:
            return json.loads(data, parse_int=_bounded_int)
        except (ValueError, RecursionError):
            pass
    # Raised outside the except block: the decoder's error (whose `doc` is the whole,
    # unredacted chunk) must not ride along as __context__.
    raise StreamError(f"The provider sent a malformed chunk: {redact(data)[:120]!r}")


def _bounded_int(digits: str) -> int | None:
    return int(digits) if len(digits) < 100 else None


class ChatAccumulator:
    """Folds chat-completion chunks (or one whole completion) into events and a snapshot."""

    def __init__(self, *, assume_thinking: bool = False, started: float | None = None) -> None:
        self.started = time.monotonic() if started is None else started
        self.first_token_at: float | None = None
        self.answer_started_at: float | None = None
        self.request_id: str | None = None
        self.model: str | None = None
        self.finish_reason: str | None = None
        self.usage = Usage()
        self.cost_usd: float | None = None
        self.credits_used: float | None = None
        self.tokens_used: int | None = None
        self.text_chars = 0  # answer + thinking received, for the reply-size cap
        self._reasoning: list[str] = []
        # Once the server gave a reasoning field, `content` is the answer byte for byte:
        # "<think>" in it is text. Tag splitting is only for servers that send none.
        self._separated = False
        self._raw_answer: list[str] = []
        self._content = ThinkTagSplitter(assume_thinking=assume_thinking)
        self._saw_delta = False
        self._finished = False
        self._refusal: list[str] = []
        # Every form of every key qwen_nb knows: a server that repeats one in a delta gets
        # it redacted before any event carries it (a delta shorter than a key is skipped).
        self._secrets = secret_forms()

    def _hidden(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                return redact(text)
        return text

    @property
    def thinking(self) -> str:
        return "".join(self._reasoning) + self._content.thinking

    @property
    def answer(self) -> str:
        return self._content.answer + "".join(self._raw_answer)

    @property
    def notes(self) -> list[str]:
        if self._finished and self._content.unclosed:
            return ["the thinking opened with <think> and never closed: the reply has no "
                    "answer (cut short by max_tokens?)"]
        return []

    def handle_chunk(self, chunk: Any) -> list[StreamEvent]:
        """One parsed `chat.completion.chunk`; raises StreamError for an error event or
        a chunk that is not an object. Fields of unexpected types are ignored."""
        if not isinstance(chunk, dict):
            raise StreamError(
                f"The provider sent a chunk that is not an object: {redact(repr(chunk)):.200}")
        error = chunk.get("error")
        if error:
            raise StreamError(f"The provider reported an error mid-stream: {error_text(error)}")
        # This runs once per chunk (thousands per reply): plain lookups, no helper calls
        # on the common path.
        if self.request_id is None:
            self.request_id = _text(chunk.get("id"))
        model = chunk.get("model")
        if model and type(model) is str:
            self.model = model
        events: list[StreamEvent] = []
        choices = chunk.get("choices")
        for position, choice in enumerate(choices if type(choices) is list else ()):
            # A choice without "index" is the one at its place in the list, never merged
            # into choice 0 from elsewhere.
            if type(choice) is not dict or choice.get("index", position) != 0:
                continue
            delta = choice.get("delta")
            if delta is None:
                # A whole `message` (a non-streamed body, or a last chunk repeating the
                # reply): used only when no delta brought text, so nothing is doubled.
                delta = None if self._saw_delta else choice.get("message")
            if delta and type(delta) is dict:
                self._handle_delta(delta, events)
            finish_reason = choice.get("finish_reason")
            if finish_reason and type(finish_reason) is str:
                self.finish_reason = finish_reason
        raw_usage = chunk.get("usage")
        if raw_usage:
            usage = parse_usage(raw_usage)
            # A usage object with no counts at all (`"usage": {}` on a later chunk) must
            # not erase the counts an earlier chunk gave.
            if usage is not None and usage != Usage():
                self.usage = usage
                events.append(UsageUpdate(usage))
        meta = chunk.get("meta")
        if meta and isinstance(meta, dict) and isinstance(meta.get("usage"), dict):
            self._read_meta(meta["usage"])
        return events

    def _note_answer_start(self, events: list[StreamEvent]) -> None:
        """When the first answer text arrived: the end of the thinking time."""
        for event in events:
            if event.type == "answer":
                self.answer_started_at = time.monotonic()
                return

    def _read_meta(self, usage: dict) -> None:
        """AIML's `meta.usage`: usd_spent, credits_used, tokens_used (finite ones only)."""
        spent = _money(usage.get("usd_spent"))
        if spent is not None:
            self.cost_usd = spent
        credits = _money(usage.get("credits_used"))
        if credits is not None:
            self.credits_used = credits
        tokens = _count(usage.get("tokens_used"))
        if tokens is not None:
            self.tokens_used = tokens

    def _handle_delta(self, delta: dict, events: list[StreamEvent]) -> None:
        self._saw_delta = True
        # The common case is one plain string (or nothing): no helper call for it.
        reasoning = delta.get("reasoning_content") or delta.get("reasoning")
        if reasoning and type(reasoning) is not str:
            reasoning = reasoning_text(reasoning) or reasoning_text(delta.get("reasoning"))
        if reasoning:
            if self.first_token_at is None:
                self.first_token_at = time.monotonic()
            if len(reasoning) >= MIN_KEY_LENGTH and self._secrets:
                reasoning = self._hidden(reasoning)
            self._separated = True
            self.text_chars += len(reasoning)
            self._reasoning.append(reasoning)
            events.append(ThinkingDelta(reasoning))
        refusal = delta.get("refusal")
        if refusal and type(refusal) is str:
            # OpenAI-style refusal: kept apart, shown as a refusal, not an answer.
            self._mark_first_token()
            self._refusal.append(self._hidden(refusal))
        content = delta.get("content")
        if content and type(content) is str:
            if self.first_token_at is None:
                self.first_token_at = time.monotonic()
            if len(content) >= MIN_KEY_LENGTH and self._secrets:
                content = self._hidden(content)
            self.text_chars += len(content)
            if self._separated:
                if self.answer_started_at is None:
                    self.answer_started_at = time.monotonic()
                self._raw_answer.append(content)
                events.append(AnswerDelta(content))
            else:
                split = self._content.feed(content)
                if self.answer_started_at is None and split:
                    self._note_answer_start(split)
                events.extend(split)

    def _mark_first_token(self) -> None:
        if self.first_token_at is None:
            self.first_token_at = time.monotonic()

    def finish(self) -> list[StreamEvent]:
        """Call once at the end of the stream (complete or not)."""
        if self._finished:
            return []
        self._finished = True
        return self._content.finish()

    def snapshot(self, **extra: Any) -> QwenResponse:
        """The result so far; `extra` sets fields the transport knows (attempts, error...)."""
        now = time.monotonic()
        usage = self.usage
        if self.cost_usd is not None and usage.cost_usd is None:
            usage = dataclasses.replace(usage, cost_usd=self.cost_usd)
        if self.credits_used is not None or self.tokens_used is not None:
            usage = dataclasses.replace(usage, credits_used=self.credits_used,
                                        tokens_used=self.tokens_used)
        fields: dict[str, Any] = {
            "answer": self.answer,
            "thinking": self.thinking,
            "usage": usage,
            "finish_reason": self.finish_reason,
            "model": self.model,
            "request_id": self.request_id,
            "elapsed": now - self.started,
            "time_to_first_token": (
                None if self.first_token_at is None else self.first_token_at - self.started
            ),
            "refusal": "".join(self._refusal) or None,
            "thinking_seconds": self._thinking_seconds(now),
        }
        fields.update(extra)
        return QwenResponse(**fields)


    def _thinking_seconds(self, now: float) -> float | None:
        if self.first_token_at is None or not self.thinking:
            return None
        return (self.answer_started_at or now) - self.first_token_at


def error_text(error: Any) -> str:
    """The provider's own words from an error object or body, whatever its shape."""
    try:
        return _error_text(error)
    except RecursionError:  # absurdly nested JSON
        return "(an error too deeply nested to show)"


def _error_text(error: Any) -> str:
    for _ in range(8):  # {"error": {"error": ...}} nests; never follow it far
        if not (isinstance(error, dict) and error.get("error")):
            break
        error = error["error"]
    if isinstance(error, dict):
        message = error.get("message") or error.get("detail") or error.get("msg")
        if isinstance(message, list):
            message = "; ".join(str(m) for m in message)
        if message:
            return redact(str(message))
        return redact(json.dumps(error))[:300]
    return redact(str(error))[:300]


def parse_error_body(body: bytes) -> tuple[str, str | None]:
    """(message, request id) from an HTTP error body: OpenAI-style `{"error": {...}}`
    or AIML's `{"message", "statusCode", "requestId"}`; plain text otherwise."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # not JSON, or nested too deep to parse
        text = redact(body.decode("utf-8", "replace")).strip()
        return (text[:300] or "(empty response body)"), None
    request_id = None
    if isinstance(data, dict):
        request_id = data.get("requestId") or data.get("request_id")
        inner = data.get("error")
        if isinstance(inner, dict):
            request_id = request_id or inner.get("request_id")
    if request_id is not None and not isinstance(request_id, (str, int)):
        request_id = None
    return error_text(data), (str(request_id) if request_id else None)
