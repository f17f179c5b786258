"""A local OpenAI-compatible chat-completions server for tests and benchmarks.

Standard library only. It streams like the AIML API (reasoning deltas, then content
deltas, a finish chunk, a usage chunk with `choices: []`, `[DONE]`), can speak the other
providers' dialects (`reasoning`, `<think>` tags), records every request it receives,
and injects faults on demand (status codes, Retry-After, stalls, cuts, malformed chunks,
error events).

Use in tests:

    server = FakeServer().start()
    server.queue(Reply(answer="hi", thinking="hmm"))
    ...  # point qwen_nb at server.base_url
    server.requests[-1].json        # what the client sent
    server.stop()

From a shell (the browser tests and benchmarks run it as a subprocess):

    python tests/fake_server.py --port 0 --lifetime 600   # prints the base URL
"""

from __future__ import annotations

import argparse
import json
import socket
import struct
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    """What the server does for one request."""

    thinking: str = "The user asks about the image. I look at it carefully."
    answer: str = "It is a **test** answer."
    # reasoning_content (AIML, DashScope) | reasoning (vLLM, Ollama, OpenRouter)
    # | think_tags (<think>...</think> in content) | think_close_only (trace, </think>, answer)
    style: str = "reasoning_content"
    chunk_chars: int = 8
    status: int = 200
    error_body: Any = None  # JSON body sent with a non-200 status
    headers: dict[str, str] = field(default_factory=dict)
    finish_reason: str | None = "stop"
    usage: dict | None = None  # None: computed from the texts
    send_usage: bool = True
    send_done: bool = True
    model: str | None = None  # None: echo the requested model
    request_id: str = "chatcmpl-test-0001"
    # AIML's {"usage": {"credits_used", "usd_spent"}} on the last chunk
    aiml_meta: dict | None = None
    delay_first_byte: float = 0.0
    chunk_delay: float = 0.0
    stall_after: int | None = None  # sleep `stall_seconds` after this many content chunks
    stall_seconds: float = 0.0
    cut_after: int | None = None  # drop the connection after this many chunks
    malformed_at: int | None = None  # send a broken JSON chunk at this index
    error_event_at: int | None = None  # send an {"error": ...} event at this index
    error_message: str = "The model crashed mid-stream"  # that event's message
    raw_event_at: int | None = None  # send `raw_event` verbatim as the data at this index
    raw_event: str = '{"choices": [{"delta": {"content": "oops'
    error_raw: str | None = None  # a non-JSON error body (text/html) for a non-200 status
    crlf: bool = False
    keepalive_comments: bool = False
    close_before_response: bool = False  # reset the connection before any byte
    reset_before_response: bool = False  # abort with a TCP RST (SO_LINGER 0) before any byte
    refusal: str | None = None  # an OpenAI-style `refusal` delta (or message field)
    # Any string above may hold "{authorization}" (the request's Authorization header, as
    # received), "{authorization_url}" (URL-encoded) or "{authorization_u}" (every
    # character \u-escaped, inside JSON only): a hostile or debugging gateway that repeats
    # the key, in the body, the events or the headers.
    # Before the first chunk with `content` (the answer, in the reasoning styles), wait up to
    # 300 s for the test to set this event: the reply is reliably mid-stream however slow the
    # machine is (in-process servers only).
    hold_answer: threading.Event | None = None
    # Hostile servers. `raw`: the exact body (bytes, or a callable giving pieces, which may
    # never end), sent as HTTP chunks `piece_delay` s apart with `raw_content_type`; the
    # client hanging up ends it.
    raw: bytes | list[bytes] | Callable[[], Iterable[bytes]] | None = None
    raw_content_type: str = "text/event-stream"
    piece_delay: float = 0.0
    stall_before_done: float = 0.0  # after the finish and usage chunks, before [DONE]


class QuietHTTPServer(ThreadingHTTPServer):
    """A client that hangs up mid-reply (Stop, interrupt, cut tests) is expected here:
    don't print its traceback into the test output."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


@dataclass
class ReceivedRequest:
    path: str
    headers: dict[str, str]
    json: Any
    at: float


class FakeServer:
    """A threaded HTTP server on 127.0.0.1 with a queue of canned replies."""

    def __init__(self, *, lifetime: float = 1800.0) -> None:
        self.requests: list[ReceivedRequest] = []
        self.default_reply = Reply()
        self.reply_fn: Callable[[Any], Reply] | None = None
        self._queue: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._lifetime = lifetime
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.active_streams = 0
        self.connections = 0  # TCP connections accepted (keep-alive reuse shows here)

    # -- control ------------------------------------------------------------------------

    def queue(self, *replies: Reply) -> FakeServer:
        with self._lock:
            self._queue.extend(replies)
        return self

    def reset(self) -> None:
        with self._lock:
            self._queue.clear()
            self.requests.clear()
            self.default_reply = Reply()
            self.reply_fn = None

    def next_reply(self, body: Any) -> Reply:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
        if self.reply_fn is not None:
            return self.reply_fn(body)
        return self.default_reply

    @property
    def base_url(self) -> str:
        assert self._httpd is not None, "start() the server first"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self, port: int = 0) -> FakeServer:
        server = self

        class Handler(_Handler):
            fake = server

        self._httpd = QuietHTTPServer(("127.0.0.1", port), Handler)
        self._httpd.daemon_threads = True
        # The thread gets the server itself: a test that stops it before the thread first
        # runs (nothing ever connected) has already cleared self._httpd, and shutdown()
        # waits for serve_forever, which then returns at once instead of never starting.
        self._thread = threading.Thread(target=self._serve, args=(self._httpd,), daemon=True,
                                        name="fake-openai")
        self._thread.start()
        return self

    def _serve(self, httpd: QuietHTTPServer) -> None:
        # Bounded: the server stops itself after `lifetime` seconds even if nobody stops it.
        timer = threading.Timer(self._lifetime, self.stop)
        timer.daemon = True
        timer.start()
        try:
            httpd.serve_forever(poll_interval=0.1)
        finally:
            timer.cancel()

    def stop(self) -> None:
        if self._httpd is not None:
            httpd, self._httpd = self._httpd, None
            httpd.shutdown()
            httpd.server_close()

    def __enter__(self) -> FakeServer:
        return self.start() if self._httpd is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def completion_chunks(reply: Reply, model: str) -> list[dict]:
    """The chunk objects of a streamed reply, in order (no faults applied)."""
    deltas: list[dict] = [{"role": "assistant", "content": ""}]
    pieces = _split(reply.thinking, reply.chunk_chars)
    answer_pieces = _split(reply.answer, reply.chunk_chars)
    if reply.style in ("reasoning_content", "reasoning"):
        deltas += [{reply.style: p, "content": None} for p in pieces]
        deltas += [{"content": p} for p in answer_pieces]
    elif reply.style == "think_tags":
        text = f"<think>{reply.thinking}</think>\n\n{reply.answer}"
        deltas += [{"content": p} for p in _split(text, reply.chunk_chars)]
    elif reply.style == "think_close_only":
        text = f"{reply.thinking}</think>\n\n{reply.answer}"
        deltas += [{"content": p} for p in _split(text, reply.chunk_chars)]
    else:
        raise ValueError(f"unknown style {reply.style!r}")
    if reply.refusal is not None:
        deltas += [{"content": None, "refusal": p} for p in _split(reply.refusal,
                                                                   reply.chunk_chars)]
    created = 1_767_000_000
    base = {"id": reply.request_id, "object": "chat.completion.chunk", "created": created,
            "model": model}
    chunks = [
        {**base, "choices": [{"index": 0, "delta": d, "finish_reason": None}]} for d in deltas
    ]
    if reply.finish_reason is not None:
        chunks.append({**base, "choices": [{"index": 0, "delta": {},
                                            "finish_reason": reply.finish_reason}]})
    if reply.send_usage:
        usage_chunk: dict = {**base, "choices": [], "usage": _usage(reply)}
        if reply.aiml_meta is not None:
            usage_chunk["meta"] = reply.aiml_meta
        chunks.append(usage_chunk)
    return chunks


def completion_body(reply: Reply, model: str) -> dict:
    """A non-streamed chat.completion object for the same reply."""
    message: dict = {"role": "assistant"}
    if reply.style in ("reasoning_content", "reasoning"):
        message["content"] = reply.answer
        message[reply.style] = reply.thinking
    elif reply.style == "think_tags":
        message["content"] = f"<think>{reply.thinking}</think>\n\n{reply.answer}"
    else:
        message["content"] = f"{reply.thinking}</think>\n\n{reply.answer}"
    if reply.refusal is not None:
        message["refusal"] = reply.refusal
    return {
        "id": reply.request_id,
        "object": "chat.completion",
        "created": 1_767_000_000,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": reply.finish_reason}],
        "usage": _usage(reply),
    }


def _usage(reply: Reply) -> dict:
    if reply.usage is not None:
        return reply.usage
    reasoning = max(1, len(reply.thinking) // 4) if reply.thinking else 0
    completion = reasoning + max(1, len(reply.answer) // 4)
    return {
        "prompt_tokens": 100,
        "completion_tokens": completion,
        "total_tokens": 100 + completion,
        "completion_tokens_details": {"reasoning_tokens": reasoning},
    }


def _has_content(chunk: dict) -> bool:
    choices = chunk.get("choices") or [{}]
    return bool(choices[0].get("delta", {}).get("content"))


def _split(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] if text else []


class _Handler(BaseHTTPRequestHandler):
    fake: FakeServer
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # Without TCP_NODELAY, small writes wait ~40 ms for delayed ACKs.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.fake.connections += 1

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        if self.path.rstrip("/").endswith("/models"):
            self._send_json(200, {"object": "list", "data": [{"id": "test-model"}]})
        else:
            self._send_json(404, {"error": {"message": f"no route {self.path}"}})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        self.fake.requests.append(
            ReceivedRequest(self.path, dict(self.headers.items()), body, time.time())
        )
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._send_json(404, {"error": {"message": f"no route {self.path}"}})
            return
        if not isinstance(body, dict):
            self._send_json(400, {"error": {"message": "body is not JSON"}})
            return
        reply = self.fake.next_reply(body)
        if "{authorization}" in reply.thinking + reply.answer:
            # Filled before the texts are cut into chunks, so the key may be split too.
            auth = self.headers.get("Authorization", "")
            reply = replace(reply, thinking=reply.thinking.replace("{authorization}", auth),
                            answer=reply.answer.replace("{authorization}", auth))
        if reply.reset_before_response:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
            return
        if reply.close_before_response:
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        if reply.delay_first_byte:
            time.sleep(reply.delay_first_byte)
        if reply.raw is not None:
            self._send_pieces(reply)
            return
        if reply.status != 200 and reply.error_raw is not None:
            self._send_raw(reply.status, reply.error_raw.encode(), "text/html", reply.headers)
            return
        if reply.status != 200:
            self._send_json(reply.status, reply.error_body or {"error": {"message": "fail"}},
                            reply.headers)
            return
        model = reply.model or body.get("model") or "test-model"
        if body.get("stream"):
            self._stream(reply, model)
        else:
            self._send_json(200, completion_body(reply, model), reply.headers)

    def _fill(self, data: bytes, *, in_json: bool = True) -> bytes:
        """Put the received Authorization header where a reply asks for it."""
        if b"{authorization" not in data:
            return data
        from urllib.parse import quote

        auth = self.headers.get("Authorization", "")
        plain = json.dumps(auth)[1:-1] if in_json else auth
        return (data.replace(b"{authorization}", plain.encode())
                .replace(b"{authorization_url}", quote(auth, safe="").encode())
                .replace(b"{authorization_u}", "".join(f"\\u{ord(c):04x}" for c in auth)
                         .encode()))

    def _send_header(self, name: str, value: str) -> None:
        self.send_header(name, self._fill(value.encode(), in_json=False).decode("latin-1"))

    def _send_json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        self._send_raw(status, json.dumps(obj).encode(), "application/json", headers)

    def _send_raw(self, status: int, data: bytes, content_type: str,
                  headers: dict[str, str] | None = None) -> None:
        data = self._fill(data, in_json=content_type == "application/json")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self._send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _send_pieces(self, reply: Reply) -> None:
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.raw_content_type)
        self.send_header("Transfer-Encoding", "chunked")
        for k, v in reply.headers.items():
            self.send_header(k, v)
        self.end_headers()
        raw = reply.raw
        pieces = [raw] if isinstance(raw, bytes) else raw if isinstance(raw, list) else raw()
        try:
            for piece in pieces:
                if piece:
                    self._write_chunk(piece)
                if reply.piece_delay:
                    time.sleep(reply.piece_delay)
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _write_chunk(self, data: bytes) -> None:
        data = self._fill(data)
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _stream(self, reply: Reply, model: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache")
        for k, v in reply.headers.items():
            self._send_header(k, v)
        self.end_headers()
        eol = b"\r\n" if reply.crlf else b"\n"
        self.fake.active_streams += 1
        try:
            if reply.keepalive_comments:
                self._write_chunk(b": keep-alive" + eol + eol)
            for index, chunk in enumerate(completion_chunks(reply, model)):
                if reply.cut_after is not None and index >= reply.cut_after:
                    # Drop the connection mid-body: no terminating chunk, no [DONE].
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if reply.stall_after is not None and index == reply.stall_after:
                    time.sleep(reply.stall_seconds)
                if reply.hold_answer is not None and _has_content(chunk):
                    reply.hold_answer.wait(300)
                    reply = replace(reply, hold_answer=None)
                if reply.raw_event_at == index:
                    self._write_chunk(b"data: " + reply.raw_event.encode() + eol + eol)
                    continue
                if reply.malformed_at == index:
                    self._write_chunk(b'data: {"choices": [{"delta": {"content": "oops' + eol + eol)
                    continue
                if reply.error_event_at == index:
                    err = {"error": {"message": reply.error_message,
                                     "type": "server_error", "code": 500}}
                    self._write_chunk(b"data: " + json.dumps(err).encode() + eol + eol)
                    break
                self._write_chunk(b"data: " + json.dumps(chunk).encode() + eol + eol)
                if reply.chunk_delay:
                    time.sleep(reply.chunk_delay)
            if reply.stall_before_done:
                time.sleep(reply.stall_before_done)
            if reply.send_done:
                self._write_chunk(b"data: [DONE]" + eol + eol)
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client went away (Stop, interrupt)
        finally:
            self.fake.active_streams -= 1


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--lifetime", type=float, default=600.0)
    parser.add_argument("--reply", default="{}", help="JSON of Reply fields for every request")
    args = parser.parse_args(argv)
    server = FakeServer(lifetime=args.lifetime)
    server.default_reply = Reply(**json.loads(args.reply))
    server.start(args.port)
    print(server.base_url, flush=True)
    deadline = time.monotonic() + args.lifetime
    try:
        while server._httpd is not None and time.monotonic() < deadline:
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    server.stop()


if __name__ == "__main__":
    sys.exit(main())
