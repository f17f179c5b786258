"""HTTP for chat completions: one shared httpx client, retries, timeouts, the stream object.

Knows nothing of IPython or widgets. `ResponseStream` is an iterator of typed events and
a context manager; `close()` may be called from another thread (the panel's Stop button)
and unblocks a read that is waiting on a silent server.
"""

from __future__ import annotations

import contextvars
import email.utils
import json
import random
import socket
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ._config import Settings
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
from ._protocol import ChatAccumulator, build_payload, parse_error_body
from ._sse import SSEDecoder
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
shared_backoff: contextvars.ContextVar[Any] = contextvars.ContextVar("qwen_nb_backoff",
                                                                     default=None)


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


def retry_delay(attempt: int, retry_after: str | None, *, base: float = 0.5,
                cap: float = 20.0) -> float:
    """Seconds to wait before attempt `attempt + 1`: Retry-After (seconds or an HTTP date)
    when the server gives one, else exponential backoff with full jitter."""
    if retry_after:
        try:
            return max(0.0, float(retry_after))
        except ValueError:
            parsed = email.utils.parsedate_to_datetime(retry_after) if retry_after else None
            if parsed is not None:
                return max(0.0, parsed.timestamp() - time.time())
    return random.uniform(0, min(cap, base * 2 ** (attempt - 1)))


def api_error(status: int, body: bytes, headers: Any, *, attempts: int) -> APIError:
    """A provider's error response as the matching exception, in the provider's words."""
    message, request_id = parse_error_body(body)
    request_id = request_id or headers.get("x-request-id")
    suffix = f" (request id {request_id})" if request_id else ""
    tries = f" after {attempts} attempts" if attempts > 1 else ""
    if status in (401, 403):
        return AuthenticationError(
            f"The provider refused the API key (HTTP {status}): {message}{suffix}. Check the "
            "key (qwen_nb.set_api_key() or the provider's environment variable) and that it "
            "may use this model.", status_code=status, request_id=request_id)
    if status == 404:
        return ModelNotFoundError(
            f"Not found (HTTP 404): {message}{suffix}. Check the model name (-m / --model) "
            "and the base URL.", status_code=status, request_id=request_id)
    if status == 429:
        return RateLimitError(
            f"Rate limited (HTTP 429){tries}: {message}{suffix}. Wait a little and run the "
            "cell again, or lower the request rate.", status_code=status, request_id=request_id)
    if status >= 500:
        return ServerError(
            f"The provider failed (HTTP {status}){tries}: {message}{suffix}. This is on the "
            "provider's side; try again later.", status_code=status, request_id=request_id)
    if status in (400, 413, 422):
        return BadRequestError(
            f"The provider rejected the request (HTTP {status}): {message}{suffix}",
            status_code=status, request_id=request_id)
    return APIError(f"HTTP {status}: {message}{suffix}", status_code=status,
                    request_id=request_id)


def _mentions_thinking_budget(message: str) -> bool:
    lowered = message.lower()
    return "thinking_budget" in lowered or "thinking budget" in lowered or (
        "budget" in lowered and ("unrecognized" in lowered or "extra" in lowered))


class ResponseStream:
    """Iterate for events (the last one is `Finished`); `.response` is the snapshot so far."""

    def __init__(self, request: ChatRequest, settings: Settings, *,
                 http: httpx.Client | None = None, assume_thinking: bool | None = None,
                 backoff: Any = None) -> None:
        self.request = request
        self._backoff = backoff if backoff is not None else shared_backoff.get()
        self.settings = settings
        self._http = http
        if assume_thinking is None:
            assume_thinking = "thinking" in request.model.lower()
        self._accumulator = ChatAccumulator(assume_thinking=assume_thinking)
        self._stop = threading.Event()
        self._response: httpx.Response | None = None
        self._iterator: Iterator[StreamEvent] | None = None
        self.attempts = 0
        self.notes: list[str] = []
        self.cost_usd: float | None = None
        self.complete = False

    # -- public -------------------------------------------------------------------------

    def __iter__(self) -> Iterator[StreamEvent]:
        if self._iterator is None:
            self._iterator = self._events()
        return self._iterator

    def __enter__(self) -> ResponseStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    @property
    def response(self) -> QwenResponse:
        return self._snapshot()

    def close(self) -> None:
        """Stop now, from any thread: wakes a blocked read and frees the connection."""
        self._stop.set()
        response = self._response
        if response is None:
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
            "attempts": max(1, self.attempts), "provider": self.settings.provider.name,
            "images": self.request.images, "notes": tuple(self.notes), "complete": self.complete,
        }
        response = self._accumulator.snapshot(**{**fields, **extra})
        if usage_cost is not None and response.usage.cost_usd is None:
            response = response.replace(usage=response.usage.__class__(
                **{**response.usage.__dict__, "cost_usd": usage_cost}))
        if response.model is None:
            response = response.replace(model=self.request.model)
        return response

    def _fail(self, error: QwenError) -> QwenError:
        """Attach what arrived so far to `error`, marked incomplete."""
        self._accumulator.finish()
        error.response = self._snapshot(complete=False, error=error.message)
        return error

    def _events(self) -> Iterator[StreamEvent]:
        import httpx

        payload = build_payload(self.request,
                                thinking_budget_param=self.settings.provider.thinking_budget_param)
        response = self._connect(payload)
        self._response = response
        done = False
        try:
            if self.request.options.stream:
                decoder = SSEDecoder()
                for raw in response.iter_bytes():
                    for data in decoder.decode(raw):
                        if data == "[DONE]":
                            done = True
                            break
                        yield from self._accumulator.handle_chunk(_parse_chunk(data))
                    if done:
                        break
                    if self._stop.is_set():
                        raise Interrupted("Stopped by the user; the partial reply is kept.")
                if not done:
                    for data in decoder.flush():
                        if data != "[DONE]":
                            yield from self._accumulator.handle_chunk(_parse_chunk(data))
            else:
                yield from self._accumulator.handle_chunk(_parse_chunk(response.read().decode()))
                done = True
            yield from self._accumulator.finish()
            if self._stop.is_set() and not done:
                raise Interrupted("Stopped by the user; the partial reply is kept.")
            if not done and self._accumulator.finish_reason is None:
                raise StreamError("The stream ended before the model finished (no [DONE] and "
                                  "no finish reason). The partial reply is kept; run the cell "
                                  "again for a full one.")
            self.complete = True
            yield Finished(self._snapshot())
        except QwenError as error:
            raise self._fail(error) from None
        except KeyboardInterrupt:
            raise self._fail(Interrupted("Interrupted; the partial reply is kept.")) from None
        except httpx.ReadTimeout:
            raise self._fail(APITimeoutError(
                f"Read timeout: no data from the server for {self.settings.read_timeout:g} s "
                "between chunks. The partial reply is kept. Raise it with --timeout or "
                "QWEN_NB_TIMEOUT.", kind="read")) from None
        except (httpx.TransportError, OSError) as exc:
            if self._stop.is_set():
                raise self._fail(Interrupted("Stopped by the user; the partial reply is kept.")
                                 ) from None
            raise self._fail(StreamError(
                f"The connection broke mid-stream ({type(exc).__name__}). The partial reply "
                "is kept; it was not retried, to avoid paying twice.")) from None
        finally:
            response.close()
            self._response = None

    def _connect(self, payload: dict[str, Any]) -> httpx.Response:
        """Send the request; retry 429 / 5xx / refused connections before any byte of the
        reply has arrived, within max_attempts and max_retry_time."""
        import httpx

        http = self._http or shared_http()
        settings = self.settings
        key = settings.require_key()
        headers = {"Accept": "text/event-stream" if payload.get("stream") else "application/json"}
        if key is not None:
            headers["Authorization"] = f"Bearer {key.reveal()}"
        timeout = httpx.Timeout(settings.read_timeout, connect=settings.connect_timeout,
                                write=max(30.0, settings.read_timeout))
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
                request = http.build_request("POST", url, content=body, timeout=timeout,
                                             headers={**headers,
                                                      "Content-Type": "application/json"})
                response = http.send(request, stream=True)
            except httpx.ConnectTimeout:
                error = APITimeoutError(
                    f"Connect timeout: could not connect to {settings.base_url} within "
                    f"{settings.connect_timeout:g} s. Check the base URL and the network.",
                    kind="connect")
            except httpx.ReadTimeout:
                raise APITimeoutError(
                    f"Read timeout: the server sent nothing for {settings.read_timeout:g} s "
                    "after the request. Raise it with --timeout or QWEN_NB_TIMEOUT.",
                    kind="read") from None
            except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError) as exc:
                error = APIConnectionError(
                    f"Could not reach {settings.base_url} ({type(exc).__name__}: "
                    f"{_short(exc)}). Check the base URL, that the server is running, and "
                    "the network.")
            except KeyboardInterrupt:
                raise Interrupted("Interrupted before the reply started.") from None
            else:
                if response.status_code == 200:
                    spent = response.headers.get("x-aimlapi-usd-spent")
                    if spent:
                        try:
                            self.cost_usd = float(spent)
                        except ValueError:
                            pass
                    request_id = response.headers.get("x-request-id")
                    if request_id and not self._accumulator.request_id:
                        self._accumulator.request_id = request_id
                    return response
                raw = response.read()
                response.close()
                error = api_error(response.status_code, raw, response.headers,
                                  attempts=self.attempts)
                if (response.status_code in (400, 422) and "thinking_budget" in payload
                        and _mentions_thinking_budget(str(error))):
                    # Not every provider documents thinking_budget; those that refuse it
                    # get the request again without it, and the Details tab says so.
                    body = json.dumps({k: v for k, v in payload.items()
                                       if k != "thinking_budget"}, ensure_ascii=False).encode()
                    payload = {k: v for k, v in payload.items() if k != "thinking_budget"}
                    self.notes.append("provider refused thinking_budget; sent without it")
                    self.attempts -= 1
                    continue
                if response.status_code not in RETRY_STATUSES:
                    raise error
                retry_after = response.headers.get("retry-after")
            delay = retry_delay(self.attempts, retry_after)
            if self._backoff is not None and isinstance(error, RateLimitError):
                self._backoff.pause(delay)
            out_of_time = time.monotonic() - started + delay > settings.max_retry_time
            if self.attempts >= settings.max_attempts or out_of_time:
                if self.attempts > 1 and isinstance(error, APIConnectionError):
                    error.message += f" (tried {self.attempts} times)"
                    error.args = (error.message,)
                raise error
            if self._stop.wait(delay):
                raise Interrupted("Stopped while waiting to retry.")


def _parse_chunk(data: str) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        raise StreamError(f"The provider sent a malformed chunk: {data[:120]!r}") from None


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) < 160 else text[:157] + "..."
