"""HTTP for chat completions: one shared httpx client, retries, timeouts, the stream object.

Knows nothing of IPython or widgets. `ResponseStream` is an iterator of typed events and
a context manager; `close()` may be called from another thread (the panel's Stop button)
and unblocks a read that is waiting on a silent server.
"""

from __future__ import annotations

import contextvars
import datetime
import email.utils
import json
import math
import random
import socket
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from . import _background
from ._bodies import (
    ACCEPT_ENCODING,
    ERROR_BODY_CAP,
    BodyTooLargeError,
    decoded,
    read_capped,
)
from ._config import Secret, Settings, redact_url
from ._errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    Interrupted,
    ModelNotFoundError,
    QwenError,
    RateLimitError,
    ServerError,
    StreamError,
)
from ._protocol import ChatAccumulator, build_payload, parse_chunk, parse_error_body
from ._redact import guard_http_logs, redact, redact_optional
from ._sse import SSEDecoder
from ._stream import EventStreamBase
from ._types import ChatRequest, Finished, QwenResponse, StreamEvent

if TYPE_CHECKING:
    import httpx

RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 520, 522, 524, 529})
USER_AGENT = "qwen-nb/0.1"

_http_lock = threading.Lock()
_http: httpx.Client | None = None

# A backoff shared by concurrent streams (qwen_nb.batch sets it in its workers): asked
# before each attempt and told of every 429, so one rate limit pauses all workers once.
# Duck-typed: `wait(stop: threading.Event) -> bool` (False: stopped) and `pause(seconds)`.
shared_backoff: contextvars.ContextVar[Any] = contextvars.ContextVar(
    "qwen_nb_backoff", default=None
)


def shared_http() -> httpx.Client:
    """One connection pool for the process: keep-alive across cells, safe across threads."""
    global _http
    with _http_lock:
        if _http is None:
            import httpx

            _http = httpx.Client(
                limits=httpx.Limits(max_connections=32, max_keepalive_connections=16),
                headers={"User-Agent": USER_AGENT},
            )
        return _http


def retry_delay(
    attempt: int, retry_after: str | None, *, base: float = 0.5, cap: float = 20.0
) -> float:
    """Seconds to wait before attempt `attempt + 1`: Retry-After (seconds or an HTTP date)
    when the server gives a usable one, else exponential backoff with full jitter."""
    waited = parse_retry_after(retry_after)
    if waited is not None:
        return waited
    return random.uniform(0, min(cap, base * 2 ** (attempt - 1)))


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """A Retry-After header as seconds from now, or None when absent or unreadable."""
    if not value or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            parsed = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if parsed.tzinfo is None:  # "-0000" means UTC with unknown local zone
            parsed = parsed.replace(tzinfo=datetime.timezone.utc)
        seconds = parsed.timestamp() - (time.time() if now is None else now)
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


def api_error(status: int, body: bytes, headers: Any, *, attempts: int) -> APIError:
    """A provider's error response as the matching exception, in the provider's words
    (with any key it repeats redacted)."""
    message, request_id = parse_error_body(body)
    message = redact(message)
    request_id = redact_optional(request_id or headers.get("x-request-id"))
    suffix = f" (request id {request_id})" if request_id else ""
    tries = f" after {attempts} attempts" if attempts > 1 else ""
    if status in (401, 403):
        return AuthenticationError(
            f"The provider refused the API key (HTTP {status}): {message}{suffix}. Check the "
            "key (qwen_nb.set_api_key() or the provider's environment variable) and that it "
            "may use this model.",
            status_code=status,
            request_id=request_id,
        )
    if status == 404:
        return ModelNotFoundError(
            f"Not found (HTTP 404): {message}{suffix}. Check the model name (-m / --model) "
            "and the base URL.",
            status_code=status,
            request_id=request_id,
        )
    if status == 429:
        return RateLimitError(
            f"Rate limited (HTTP 429){tries}: {message}{suffix}. Wait a little and run the "
            "cell again, or lower the request rate.",
            status_code=status,
            request_id=request_id,
        )
    if status >= 500:
        return ServerError(
            f"The provider failed (HTTP {status}){tries}: {message}{suffix}. This is on the "
            "provider's side; try again later.",
            status_code=status,
            request_id=request_id,
        )
    if status in (400, 413, 422):
        return BadRequestError(
            f"The provider rejected the request (HTTP {status}): {message}{suffix}",
            status_code=status,
            request_id=request_id,
        )
    return APIError(f"HTTP {status}: {message}{suffix}", status_code=status, request_id=request_id)


# Optional fields a provider may not know: (field, how its errors name it, whether only a
# "not known" message counts, the Details note when it is dropped). A wrong thinking budget
# must reach the user, so it is dropped only when the field itself is unknown; any refusal
# naming response_format drops it, since the prompt asks for the JSON as well.
_DROPPABLE_FIELDS = (
    ("thinking_budget", ("thinking_budget", "thinking budget"), True,
     "the provider does not accept thinking_budget; sent without it"),
    ("response_format", ("response_format", "response format", "json_schema", "json_object",
                         "structured output"), False,
     "the provider refused response_format; sent without it (the prompt asks for the JSON)"),
    # OpenRouter's thinking budget, and the usage request: strict servers answer 422.
    ("reasoning", ("reasoning",), True,
     "the provider does not accept reasoning; sent without it"),
    ("stream_options", ("stream_options", "stream options"), True,
     "the provider does not accept stream_options; sent without it; usage may be missing"),
)
_NOT_KNOWN_WORDS = (
    "unrecognized", "unrecognised", "unknown", "unsupported", "not supported", "extra",
    "not permitted", "not allowed", "additional propert", "unexpected",
)


def refused_field(payload: dict[str, Any], message: str) -> tuple[str, str] | None:
    """(field, note) when a 400/422 `message` refuses an optional field of `payload`."""
    lowered = message.lower()
    for name, spellings, only_unknown, note in _DROPPABLE_FIELDS:
        if name not in payload or not any(spelling in lowered for spelling in spellings):
            continue
        if not only_unknown or any(word in lowered for word in _NOT_KNOWN_WORDS):
            return name, note
    return None


class ResponseStream(EventStreamBase):
    """Iterate for events (the last one is `Finished`); `.response` is the snapshot so far."""

    def __init__(
        self,
        request: ChatRequest,
        settings: Settings,
        *,
        http: httpx.Client | None = None,
        assume_thinking: bool | None = None,
        backoff: Any = None,
    ) -> None:
        settings.require_key()  # fail before anything is shown or sent
        self.request = request
        self._backoff = backoff if backoff is not None else shared_backoff.get()
        self.settings = settings
        self._http = http
        if assume_thinking is None:
            assume_thinking = "thinking" in request.model.lower()
        self._accumulator = ChatAccumulator(assume_thinking=assume_thinking)
        self._stop = threading.Event()
        self._response: httpx.Response | None = None
        self.attempts = 0
        self.notes: list[str] = []
        # Set when a provider refused a video part and the videos went again as images.
        self.video_encoding: str | None = None
        self.cost_usd: float | None = None
        self.complete = False
        self._expired = threading.Event()  # --max-time ran out
        self._deadline = 0.0

    # -- public -------------------------------------------------------------------------

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    @property
    def response(self) -> QwenResponse:
        return self._snapshot()

    def close(self) -> None:
        """Stop now, from any thread: wakes a blocked read and frees the connection."""
        self._stop.set()
        self._wake()

    def _expire(self) -> None:
        """The --max-time watchdog: end a read that is waiting on a silent server."""
        self._expired.set()
        self._wake()

    def _wake(self) -> None:
        response = self._response
        if response is None or response.is_closed:
            # A closed response (its body fully read) has given its connection back to the
            # shared pool, where another stream may be using it now: never touch its socket.
            return
        # Closing an httpx response from another thread does not wake a recv() blocked on
        # a silent server; shutting the socket down does.
        stream = response.extensions.get("network_stream")
        sock = stream.get_extra_info("socket") if stream is not None else None
        if isinstance(sock, socket.socket):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if threading.current_thread() is threading.main_thread() or sock is None:
            response.close()

    # -- internals ----------------------------------------------------------------------

    def _snapshot(self, **extra: Any) -> QwenResponse:
        usage_cost = self.cost_usd
        fields: dict[str, Any] = {
            "attempts": max(1, self.attempts),
            "provider": self.settings.provider.name,
            "images": self.request.images,
            "videos": tuple(
                v.with_encoding(self.video_encoding) if self.video_encoding else v
                for v in self.request.videos
            ),
            "notes": (*self.notes, *self._accumulator.notes),
            "complete": self.complete,
        }
        response = self._accumulator.snapshot(**{**fields, **extra})
        if usage_cost is not None and response.usage.cost_usd is None:
            response = response.replace(
                usage=response.usage.__class__(
                    **{**response.usage.__dict__, "cost_usd": usage_cost}
                )
            )
        if response.model is None:
            response = response.replace(model=self.request.model)
        # The second line of defence: a key the server escaped unusually in JSON is plain
        # after parsing, and one split across chunks is whole only in the joined text.
        return response.replace(
            answer=redact(response.answer),
            thinking=redact(response.thinking),
            refusal=redact_optional(response.refusal),
            model=redact_optional(response.model),
            request_id=redact_optional(response.request_id),
            finish_reason=redact_optional(response.finish_reason),
            error=redact_optional(response.error),
            notes=tuple(redact(note) for note in response.notes),
        )

    def _fail(self, error: QwenError) -> QwenError:
        """Attach what arrived so far to `error`, marked incomplete."""
        self._accumulator.finish()
        error.response = self._snapshot(complete=False, error=error.message)
        return error

    def _events(self) -> Iterator[StreamEvent]:
        import httpx

        settings = self.settings
        provider = settings.provider
        payload = build_payload(self.request, thinking_budget_param=provider.thinking_budget_param)
        if self.request.options.thinking_budget is not None and not provider.thinking_budget_param:
            self.notes.append(
                f"--thinking-budget was not sent: the {provider.name} preset has no thinking "
                "budget parameter (set it on the server, if it has one)"
            )
        # The --max-time watchdog: wakes a read blocked on a silent server at the deadline.
        self._deadline = time.monotonic() + settings.max_time
        watchdog = _background.alarms.call_after(settings.max_time, self._expire)
        try:
            response = self._connect(payload)
        except QwenError as error:
            watchdog.cancel()
            raise self._fail(error) from None
        except BaseException:
            watchdog.cancel()
            raise
        self._response = response
        done = False
        chunks: Iterator[bytes] | None = None
        accumulator = self._accumulator
        try:
            content_type = response.headers.get("content-type", "").lower()
            if content_type.startswith(("text/html", "application/xhtml")):
                raise html_page_error(response.status_code, settings.base_url)
            chunks = decoded(response.iter_raw(), response.headers.get("content-encoding"))
            streamed = self.request.options.stream and not content_type.startswith(
                "application/json"
            )
            if streamed:
                decoder = SSEDecoder(settings.max_line_chars)
                max_reply, deadline = settings.max_reply_chars, self._deadline
                first = True
                for raw in chunks:
                    if first:
                        first = False
                        if looks_like_html(raw):
                            raise html_page_error(response.status_code, settings.base_url)
                    for data in decoder.decode(raw):
                        if data == "[DONE]":
                            done = True
                            break
                        yield from accumulator.handle_chunk(parse_chunk(data))
                    if done:
                        break
                    if accumulator.text_chars > max_reply:
                        raise reply_too_large(max_reply)
                    if self._stop.is_set():
                        raise Interrupted(STOPPED)
                    if time.monotonic() > deadline:
                        self._expired.set()
                        break
                if not done and not self._expired.is_set():
                    for data in decoder.flush():
                        if data == "[DONE]":
                            done = True
                        else:
                            yield from accumulator.handle_chunk(parse_chunk(data))
            else:
                # Also a server that ignored "stream": true and sent one JSON body.
                body, more = read_capped(chunks, settings.max_body_bytes)
                if more:
                    raise BodyTooLargeError(
                        f"The server's reply is larger than {settings.max_body_bytes / 1e6:g} MB "
                        "(after decompression); it was not read further. Raise the cap with "
                        "QWEN_NB_MAX_BODY_MB or max_body_mb= if such replies are expected."
                    )
                if looks_like_html(body):
                    raise html_page_error(response.status_code, settings.base_url)
                yield from accumulator.handle_chunk(parse_chunk(body.decode("utf-8", "replace")))
                if accumulator.text_chars > settings.max_reply_chars:
                    raise reply_too_large(settings.max_reply_chars)
                done = True
            if self._expired.is_set() and not done:
                yield from self._after_deadline()
                return
            yield from accumulator.finish()
            if self._stop.is_set() and not done:
                raise Interrupted(STOPPED)
            if not done and self._accumulator.finish_reason is None:
                raise StreamError(
                    "The stream ended before the model finished (no [DONE] and "
                    "no finish reason). The partial reply is kept; run the cell "
                    "again for a full one."
                )
            self.complete = True
            yield Finished(self._snapshot())
        except QwenError as error:
            raise self._fail(error) from None
        except KeyboardInterrupt:
            raise self._fail(Interrupted(INTERRUPTED)) from None
        except httpx.TimeoutException:
            if self._expired.is_set() or accumulator.finish_reason is not None:
                yield from self._after_deadline(read_timeout=not self._expired.is_set())
                return
            raise self._fail(
                APITimeoutError(
                    f"Read timeout: no data from the server for {self.settings.read_timeout:g} s "
                    "between chunks. The partial reply is kept. Allow longer silences with "
                    "--timeout SECONDS or QWEN_NB_TIMEOUT.",
                    kind="read",
                )
            ) from None
        except (httpx.HTTPError, OSError) as exc:
            if self._stop.is_set():
                raise self._fail(Interrupted(STOPPED)) from None
            if self._expired.is_set():
                yield from self._after_deadline()
                return
            if self._accumulator.finish_reason is not None:
                # The model had finished; only the usage chunk or [DONE] was lost.
                yield from self._accumulator.finish()
                yield from self._complete_after_finish(
                    "the connection closed after the finish reason; usage may be missing"
                )
                return
            raise self._fail(
                StreamError(
                    f"The connection broke mid-stream ({type(exc).__name__}). The partial reply "
                    "is kept; it was not retried, to avoid paying twice."
                )
            ) from None
        finally:
            watchdog.cancel()
            self._response = None
            if done and chunks is not None and not self._stop.is_set():
                release_in_background(response, chunks)
            else:
                response.close()

    def _complete_after_finish(self, note: str) -> Iterator[StreamEvent]:
        """The model had finished but the end of the stream never came: complete, noted
        (the accumulator has been flushed by the caller)."""
        self.notes.append(note)
        self.complete = True
        yield Finished(self._snapshot())

    def _after_deadline(self, *, read_timeout: bool = False) -> Iterator[StreamEvent]:
        """--max-time ran out, or the server went silent: complete if the model had already
        finished (only the usage chunk or [DONE] was still due), else a failure."""
        yield from self._accumulator.finish()
        if self._accumulator.finish_reason is not None:
            waited = "the read timeout" if read_timeout else "--max-time"
            yield from self._complete_after_finish(
                f"the server went silent after the finish reason ({waited} ended the wait); "
                "usage may be missing"
            )
            return
        raise self._fail(
            APITimeoutError(
                f"The reply took longer than --max-time ({self.settings.max_time:g} s) and was "
                "ended there; the partial reply is kept. Allow longer with --max-time SECONDS, "
                "QWEN_NB_MAX_TIME, %config QwenMagics.max_time or ask(max_time=...).",
                kind="total",
            )
        )

    def _connect(self, payload: dict[str, Any]) -> httpx.Response:
        """Send the request; retry 429 / 5xx / refused or reset connections while no byte
        of a reply has arrived, within max_attempts and max_retry_time."""
        import httpx

        http = self._http or shared_http()
        guard_http_logs()  # httpcore's DEBUG lines quote every response header
        settings = self.settings
        key = settings.require_key()
        # httpx.Headers masks Authorization in its repr, so even a verbose traceback that
        # prints local variables shows no key.
        headers = httpx.Headers(
            {
                "Accept": "text/event-stream" if payload.get("stream") else "application/json",
                "Accept-Encoding": ACCEPT_ENCODING,
                "Content-Type": "application/json",
            }
        )
        if key is not None:
            headers["Authorization"] = "Bearer " + key.reveal()
        timeout = httpx.Timeout(
            settings.read_timeout,
            connect=settings.connect_timeout,
            write=max(30.0, settings.read_timeout),
        )
        url = settings.base_url + "/chat/completions"
        started = time.monotonic()
        body = json.dumps(payload, ensure_ascii=False).encode()
        while True:
            if self._stop.is_set():
                raise Interrupted("Stopped before the reply started.")
            if self._backoff is not None and not self._backoff.wait(self._stop):
                raise Interrupted("Stopped while waiting out a rate limit.")
            self.attempts += 1
            error: QwenError
            retry_after = None
            try:
                response = http.send(
                    http.build_request("POST", url, content=body, headers=headers, timeout=timeout),
                    stream=True,
                    # A redirect would carry the key to wherever the server points: never.
                    follow_redirects=False,
                )
            except (httpx.ConnectTimeout, httpx.PoolTimeout):
                error = APITimeoutError(
                    f"Connect timeout: could not connect to {settings.base_url} within "
                    f"{settings.connect_timeout:g} s. Check the base URL and the network, or "
                    "allow longer with --connect-timeout or QWEN_NB_CONNECT_TIMEOUT.",
                    kind="connect",
                )
            except httpx.WriteTimeout:
                raise APITimeoutError(
                    f"Write timeout: sending the request took longer than "
                    f"{max(30.0, settings.read_timeout):g} s (large images on a slow link?). "
                    "Lower --max-pixels or raise --timeout.",
                    kind="write",
                ) from None
            except httpx.TimeoutException:
                # The request reached the server, which may be working on it: retrying could
                # pay twice, so this is reported instead.
                raise APITimeoutError(
                    f"Read timeout: the server sent nothing for {settings.read_timeout:g} s "
                    "after the request. Allow longer with --timeout SECONDS or "
                    "QWEN_NB_TIMEOUT.",
                    kind="read",
                ) from None
            except httpx.RemoteProtocolError as exc:
                if "disconnected" not in str(exc).lower():
                    # Not HTTP a client can read (e.g. headers over httpcore's 100 KB limit):
                    # the same server would answer the same way, so it is not retried.
                    raise StreamError(
                        f"The server's reply is not valid HTTP ({_short(exc, key)}; oversized "
                        "or malformed response headers?). It was not retried. Check that the "
                        f"base URL {settings.base_url} is an OpenAI-compatible server."
                    ) from None
                error = APIConnectionError(
                    f"Could not reach {settings.base_url} ({type(exc).__name__}: "
                    f"{_short(exc, key)}). Check the base URL, that the server is running, "
                    "and the network."
                )
            except httpx.TransportError as exc:  # refused, reset, DNS, closed before a byte
                if self._stop.is_set():
                    raise Interrupted("Stopped before the reply started.") from None
                error = APIConnectionError(
                    f"Could not reach {settings.base_url} ({type(exc).__name__}: "
                    f"{_short(exc, key)}). Check the base URL, that the server is running, "
                    "and the network."
                )
            except KeyboardInterrupt:
                raise Interrupted("Interrupted before the reply started.") from None
            else:
                if 200 <= response.status_code < 300:
                    self._read_headers(response)
                    return response
                if 300 <= response.status_code < 400:
                    response.close()
                    raise redirect_error(response, url)
                try:
                    raw, _ = read_capped(
                        decoded(response.iter_raw(), response.headers.get("content-encoding")),
                        ERROR_BODY_CAP,
                    )
                except (httpx.HTTPError, StreamError):
                    raw = b""
                except KeyboardInterrupt:
                    raise Interrupted("Interrupted before the reply started.") from None
                finally:
                    response.close()
                error = api_error(
                    response.status_code, raw, response.headers, attempts=self.attempts
                )
                refused = (
                    refused_field(payload, error.message)
                    if response.status_code in (400, 422) else None
                )
                if refused is not None:
                    # Not every provider documents thinking_budget or response_format; one
                    # that refuses it gets the request again without it, and the Details tab
                    # says so. That refused request is not counted as an attempt.
                    payload = {k: v for k, v in payload.items() if k != refused[0]}
                    body = json.dumps(payload, ensure_ascii=False).encode()
                    self.notes.append(refused[1])
                    self.attempts -= 1
                    continue
                if (
                    response.status_code in (400, 422)
                    and self.video_encoding is None
                    and any(v.encoding != "images" for v in self.request.videos)
                ):
                    # Video parts are where providers disagree most: one that refuses
                    # them gets the frames once more as timestamped images (which every
                    # image-capable server takes), and the Details tab says so.
                    self.video_encoding = "images"
                    messages = build_payload(
                        self.request, thinking_budget_param=None, video_encoding="images"
                    )["messages"]
                    payload = {
                        **{k: v for k, v in payload.items() if k != "mm_processor_kwargs"},
                        "messages": messages,
                    }
                    body = json.dumps(payload, ensure_ascii=False).encode()
                    self.notes.append(
                        "the provider refused the video part "
                        f"({_short(Exception(error.message), key)}); sent again as "
                        "timestamped images"
                    )
                    self.attempts -= 1
                    continue
                if response.status_code not in RETRY_STATUSES:
                    raise error
                retry_after = response.headers.get("retry-after")
            delay = retry_delay(self.attempts, retry_after)
            now = time.monotonic()
            time_left = min(settings.max_retry_time - (now - started), self._deadline - now)
            if self.attempts >= settings.max_attempts or delay > time_left:
                raise self._gave_up(error, delay, time_left, retry_after)
            if self._backoff is not None and isinstance(error, RateLimitError):
                # Only a pause this call will wait out itself (so at most max_retry_time)
                # is shared: one Retry-After: 99999 must not stall every batch worker.
                self._backoff.pause(delay)
            try:
                if self._stop.wait(delay):
                    raise Interrupted("Stopped while waiting to retry.")
            except KeyboardInterrupt:
                raise Interrupted(
                    "Interrupted while waiting to retry; nothing was received."
                ) from None

    def _read_headers(self, response: httpx.Response) -> None:
        spent = response.headers.get("x-aimlapi-usd-spent")
        if spent:
            try:
                cost = float(spent)
            except ValueError:
                cost = math.nan
            if math.isfinite(cost) and cost >= 0:  # never "$nan"
                self.cost_usd = cost
        request_id = response.headers.get("x-request-id")
        if request_id and not self._accumulator.request_id:
            self._accumulator.request_id = redact(request_id)

    def _gave_up(
        self, error: QwenError, delay: float, time_left: float, retry_after: str | None
    ) -> QwenError:
        """The last error, saying how many attempts were made and why there is no next."""
        extra = ""
        if self.attempts > 1 and not isinstance(error, APIError):
            extra += f" (tried {self.attempts} times)"
        if self.attempts < self.settings.max_attempts:
            if parse_retry_after(retry_after) is not None:
                extra += (
                    f" The server asked to wait {delay:.0f} s before retrying, longer "
                    f"than the {max(0.0, time_left):.0f} s left of max_retry_time."
                )
            else:
                extra += " Out of retry time (max_retry_time)."
        if extra:
            error.message += extra
            error.args = (error.message,)
        return error


def html_page_error(status: int, base_url: str) -> APIError:
    return APIError(
        f"The server answered with an HTML page (HTTP {status}), not a chat completion: a "
        "login or captive-portal page, or a base URL that points at a web site? Check the "
        f"base URL ({redact_url(base_url)}) and the network.",
        status_code=status,
    )


def looks_like_html(start: bytes) -> bool:
    """True for a body that opens like a web page (servers often omit the content type)."""
    head = start[:256].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return head.startswith((b"<!doctype html", b"<html", b"<head", b"<body"))


def redirect_error(response: httpx.Response, url: str) -> APIError:
    """A 3xx as an error that says where it pointed; the redirect is never followed."""
    import httpx

    location = response.headers.get("location", "")
    try:
        target = redact(redact_url(str(httpx.URL(url).join(location)))) if location else "nowhere"
    except httpx.InvalidURL:
        target = "an unreadable address"
    return APIError(
        f"The server answered with a redirect (HTTP {response.status_code}) to {target}. "
        "qwen_nb does not follow redirects, so the API key was not sent there. If that is "
        "the right server, use its address as the base URL.",
        status_code=response.status_code,
    )


def reply_too_large(cap: int) -> StreamError:
    return StreamError(
        f"The reply passed {cap / 1e6:g} MB of text (answer + thinking) and was cut there; "
        "the partial reply is kept. Raise the cap with QWEN_NB_MAX_REPLY_MB or "
        "max_reply_mb= if such replies are expected."
    )


STOPPED = "Stopped by the user; the partial reply is kept."
INTERRUPTED = "Interrupted by the user; the partial reply is kept."


def release_in_background(response: httpx.Response, rest: Iterator[bytes]) -> None:
    """After [DONE], read the rest of the body (normally only the end of the chunked
    encoding) on a daemon thread, so httpx returns the connection to the pool and the next
    call skips a new TCP + TLS handshake. Closing the response unread would drop the
    connection; reading here would make the caller wait on a server that never ends the
    body (bounded only by the read timeout), which now costs just this thread."""

    def drain() -> None:
        try:
            for _ in rest:
                pass
        except Exception:
            pass  # the reply is complete already; only the connection's reuse is at stake
        finally:
            response.close()

    _background.helpers.submit(drain)


def _short(exc: BaseException, key: Secret | None = None) -> str:
    """An exception's text, clipped, and never with the key in it (h11 quotes bad headers)."""
    text = redact(str(exc) or type(exc).__name__)
    if key is not None:
        secret = key.reveal()
        printable = "".join(ch for ch in secret if ch.isprintable()).strip()
        for form in sorted({secret, printable, repr(secret)[1:-1]}, key=len, reverse=True):
            if len(form) >= 4:
                text = text.replace(form, "********")
    return text if len(text) < 160 else text[:157] + "..."
