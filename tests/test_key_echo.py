"""A server that repeats the key it was sent: the key still shows up nowhere.

The local server echoes the request's `Authorization` header (as received, URL-encoded, or
with every character \\u-escaped inside JSON) into each place a server's words reach
qwen_nb: error bodies, the error event, malformed and non-object chunks, request ids (body
and header), model names, chunk ids, finish reasons, other headers, the answer and the
thinking. Then every text qwen_nb produced is searched for the key in all its forms.
"""

from __future__ import annotations

import contextlib
import json
import sys
from urllib.parse import quote

import pytest
from fake_server import Reply
from IPython.utils.capture import capture_output
from support import FAKE_KEY, run_cell, run_notebook_with_key
from test_secrets import everything_about, log_text

import qwen_nb
from qwen_nb import QwenError
from qwen_nb._redact import REPLACEMENT

ECHOES = {
    "error body 401": Reply(status=401, error_body={
        "error": {"message": "Invalid header Authorization: {authorization}"}}),
    "error body html 500": Reply(status=500, error_raw=(
        "<html><h1>Debug</h1><pre>Authorization: {authorization}\nHost: x</pre></html>")),
    "error body url-encoded 400": Reply(status=400, error_body={
        "error": {"message": "refused https://gw/?auth={authorization_url}"}}),
    "error body \\u-escaped 403": Reply(status=403, error_body={
        "error": {"message": "refused {authorization_u}"}}),
    "error body as a bare object 422": Reply(status=422, error_body={
        "error": {"headers": {"authorization": "{authorization}"}}}),
    "request id in the body": Reply(status=401, error_body={
        "message": "Unauthorized", "statusCode": 401, "requestId": "{authorization}"}),
    "request id header, error": Reply(status=404, headers={"x-request-id": "{authorization}"}),
    "request id header, stream": Reply(headers={"X-Request-Id": "{authorization}"}),
    "error event": Reply(error_event_at=3, error_message="upstream saw {authorization}"),
    "error event \\u-escaped": Reply(error_event_at=3, error_message="saw {authorization_u}"),
    "malformed chunk": Reply(raw_event_at=3, raw_event='{"choices": [{"delta": '
                             '{"content": "{authorization}'),
    "non-object chunk": Reply(raw_event_at=3, raw_event='"{authorization}"'),
    "non-object chunk \\u-escaped": Reply(raw_event_at=3, raw_event='["{authorization_u}"]'),
    "model name": Reply(model="{authorization}"),
    "model name \\u-escaped": Reply(model="{authorization_u}"),
    "chunk id": Reply(request_id="{authorization}"),
    "finish reason": Reply(finish_reason="{authorization}"),
    "other header": Reply(headers={"X-Echo-Authorization": "{authorization}"}),
    "answer": Reply(answer="Your header: {authorization}. Done.", chunk_chars=200),
    "answer, split across chunks": Reply(answer="Your header: {authorization}. Done."),
    "thinking \\u-escaped": Reply(thinking="The header is {authorization_u} here.",
                                   chunk_chars=200),
}


def key_forms() -> list[str]:
    """The key as the searches look for it: as is, without its prefix, URL-encoded."""
    return [FAKE_KEY, FAKE_KEY[6:], quote(FAKE_KEY, safe="")]


def assert_no_key(text: str) -> None:
    for form in key_forms():
        assert form not in text


def outcome(call) -> tuple[str, BaseException | None]:
    try:
        return everything_about(call()), None
    except QwenError as error:
        text = everything_about(error)
        if error.__context__ is not None:
            text += everything_about(error.__context__)
        return text, error


# Events and chunks exist only in a streamed reply.
STREAM_ONLY = {"error event", "error event \\u-escaped", "malformed chunk", "non-object chunk",
               "non-object chunk \\u-escaped"}
CASES = [(echo, True) for echo in ECHOES] + [
    (echo, False) for echo in ECHOES if echo not in STREAM_ONLY]


@pytest.mark.parametrize(("echo", "stream"), CASES,
                         ids=[f"{e}-{'stream' if s else 'no-stream'}" for e, s in CASES])
def test_an_echoed_key_is_redacted_everywhere(server, logs, echo, stream):
    server.default_reply = ECHOES[echo]
    produced, _ = outcome(lambda: qwen_nb.ask("hello", stream=stream, max_attempts=1))
    produced += log_text(logs)
    assert server.requests[-1].headers["Authorization"] == f"Bearer {FAKE_KEY}"
    assert_no_key(produced)
    assert REPLACEMENT in produced, produced[:2000]  # the echo arrived, redacted


# A key cut across chunks is whole only once the chunks are joined: the result is
# redacted, the events as they stream are not (README).
EVENTS_MAY_SHOW = {"answer, split across chunks"}


@pytest.mark.parametrize("echo", [e for e in ECHOES if e not in EVENTS_MAY_SHOW])
def test_streamed_events_carry_no_echoed_key(server, echo):
    server.default_reply = ECHOES[echo]
    events: list = []
    with contextlib.suppress(QwenError):
        for event in qwen_nb.stream("hello", max_attempts=1):
            events.append(event)
    assert_no_key(repr(events))
    assert server.requests


def test_the_debug_log_of_httpcore_would_show_the_header_without_the_filter(server, logs):
    server.default_reply = ECHOES["other header"]
    qwen_nb.ask("hello")
    lines = [r.getMessage() for r in logs.records if r.name.startswith("httpcore")]
    headers = [line for line in lines if "X-Echo-Authorization" in line]
    assert headers, "httpcore logged the response headers at DEBUG"
    assert all(f"Bearer {REPLACEMENT}" in line for line in headers)


def test_keys_from_every_source_are_redacted(server, logs, monkeypatch):
    """The key in use, a set_api_key() key and the provider variables' keys."""
    others = {"DASHSCOPE_API_KEY": "sk-dashscope-OTHER-0123456789",
              "OPENROUTER_API_KEY": "sk-or-v1-OTHER+key/with=signs",
              "AIML_API_KEY": "aiml-OTHER-key-abcdef012345"}
    for name, value in others.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr("qwen_nb._config._session_keys", {})
    qwen_nb.set_api_key("sess-OTHER-key-999999", provider="dashscope")
    leaked = " ".join([*others.values(), quote(others["OPENROUTER_API_KEY"], safe=""),
                       json.dumps(others["OPENROUTER_API_KEY"]), "sess-OTHER-key-999999"])
    explicit = "explicit-key-" + "for-this-call-1"  # not in this source line: tracebacks
    server.default_reply = Reply(status=401, error_body={"error": {"message": leaked}})
    with pytest.raises(QwenError) as caught:
        qwen_nb.ask("hello", max_attempts=1, api_key=explicit)
    server.default_reply = Reply(status=401, error_body={
        "error": {"message": "{authorization} " + explicit}})
    with pytest.raises(QwenError) as second:
        qwen_nb.ask("hello", max_attempts=1, api_key=explicit)
    produced = everything_about(caught.value) + everything_about(second.value)
    for secret in [*others.values(), "sess-OTHER-key-999999", explicit,
                   "OTHER%2Bkey", "OTHER+key"]:
        assert secret not in produced
    assert produced.count(REPLACEMENT) >= 7


def test_short_placeholder_keys_are_not_redacted_from_ordinary_text(server, monkeypatch):
    """vLLM's "EMPTY" is a placeholder, not a secret: text saying EMPTY stays intact."""
    server.default_reply = Reply(answer="The box is EMPTY.")
    assert qwen_nb.ask("hello", api_key="EMPTY").answer == "The box is EMPTY."


def test_magic_results_tracebacks_and_tb_show_no_echoed_key(ip, server):
    produced: list[str] = []
    for echo in ("error body 401", "request id in the body", "error event", "model name",
                 "chunk id", "finish reason", "answer", "malformed chunk"):
        server.queue(ECHOES[echo])
        with capture_output() as captured:
            result = run_cell(ip, "%%qwen --max-attempts 1\nhello")
        with capture_output() as traceback_shown:
            run_cell(ip, "%tb")
        produced += [captured.stdout, captured.stderr, traceback_shown.stdout,
                     traceback_shown.stderr]
        produced += [json.dumps([o.data, o.metadata], default=repr) for o in captured.outputs]
        if result.error_in_exec is not None:
            produced.append(everything_about(result.error_in_exec))
            produced.append(everything_about(sys.last_value))
        produced.append(everything_about(ip.user_ns["_qwen"]))
    text = "\n".join(produced)
    assert_no_key(text)
    assert text.count(REPLACEMENT) >= 8


def test_the_panel_notice_shows_no_echoed_key(server):
    from test_secrets import everything_a_panel_shows

    text = everything_a_panel_shows(server, ECHOES["error body 401"], ECHOES["model name"])
    assert_no_key(text)
    assert REPLACEMENT in text


def test_the_cache_folder_holds_no_echoed_key(server, tmp_path):
    for echo in ("model name", "chunk id", "answer", "request id header, stream"):
        server.default_reply = ECHOES[echo]
        qwen_nb.ask(f"hello {echo}", cache="record", cache_dir=tmp_path)
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(files) == 4
    for path in files:
        assert_no_key(path.read_text(encoding="utf-8"))
    assert any(REPLACEMENT in p.read_text(encoding="utf-8") for p in files)


@pytest.mark.kernel
def test_a_saved_notebook_and_its_html_and_markdown_hold_no_echoed_key(server, tmp_path):
    """A real kernel runs the magic against the echoing server; the saved .ipynb, its
    nbconvert HTML and Markdown, and the cache folder are searched."""
    import nbformat
    from nbconvert import HTMLExporter, MarkdownExporter

    echoes = ["error body 401", "request id in the body", "error event", "malformed chunk",
              "model name", "chunk id", "finish reason", "answer", "request id header, stream"]
    server.queue(*(ECHOES[echo] for echo in echoes))
    cells = ["%load_ext qwen_nb",
             "import logging; logging.basicConfig(level=logging.DEBUG)",
             "%xmode Verbose"]
    for echo in echoes:
        cells += [f"%%qwen --max-attempts 1 --cache record\n{echo}", "%tb",
                  "import sys; print(repr(getattr(sys, 'last_value', None)))", "_qwen"]
    nb = run_notebook_with_key(cells, tmp_path, server.base_url)
    assert len(server.requests) == len(echoes)
    assert all(r.headers["Authorization"] == f"Bearer {FAKE_KEY}" for r in server.requests)
    path = tmp_path / "executed.ipynb"
    nbformat.write(nb, path)
    saved = path.read_text(encoding="utf-8")
    exported = [HTMLExporter().from_notebook_node(nb)[0],
                MarkdownExporter().from_notebook_node(nb)[0]]
    assert saved.count(REPLACEMENT) + saved.count(json.dumps(REPLACEMENT)[1:-1]) >= len(echoes)
    assert "Unauthorized" in saved and "HTTP Request" in saved  # the paths and the log ran
    cached = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len([p for p in cached if p.suffix == ".json"]) >= 4  # the complete replies
    for text in [saved, *exported, *(p.read_text("utf-8", "replace") for p in cached)]:
        assert_no_key(text)


def test_a_prompt_holding_the_key_is_refused_before_sending(ip, server, monkeypatch):
    """Typed, interpolated, in the system prompt or the history: refused, nothing sent."""
    monkeypatch.setenv("DASHSCOPE_API_KEY", "sk-dash-OTHER-key-0123456789")
    ip.user_ns["settings_dump"] = {"key": FAKE_KEY[:10] + FAKE_KEY[10:]}
    ip.user_ns["env"] = __import__("os").environ
    cells = {
        "%%qwen\nMy key is " + FAKE_KEY[:10] + FAKE_KEY[10:]: "the prompt",
        "%%qwen\nDebug this: {settings_dump}": "the prompt",
        "%%qwen\nWhat is in {env}?": "the prompt",
        "%%qwen\nurl-encoded: " + quote("sk-dash-OTHER-key-0123456789"): "the prompt",
        "%%qwen -s 'Use sk-dash-OTHER-key-0123456789'\nhello": "the system prompt",
    }
    for cell, where in cells.items():
        with capture_output() as captured:
            result = run_cell(ip, cell)
        error = result.error_in_exec
        assert isinstance(error, qwen_nb.InputError), (cell, error)
        assert error.message.startswith(f"The prompt contains your API key (in {where})")
        # (The cell's own source is in the notebook already; the message does not repeat it.)
        assert_no_key(captured.stdout + captured.stderr + str(error) + repr(error.args) +
                      "".join(error._render_traceback_()))
    assert server.requests == []
    with pytest.raises(qwen_nb.InputError, match="your API key"):
        qwen_nb.ask("look: " + FAKE_KEY[:10] + FAKE_KEY[10:])
    with pytest.raises(qwen_nb.InputError, match="an earlier turn"):
        from qwen_nb._types import Message

        qwen_nb.ask("hello", history=[Message("user", ("key " + FAKE_KEY[:4] + FAKE_KEY[4:],)),
                                      Message("assistant", ("ok",))])
    with pytest.raises(qwen_nb.InputError, match=r"in an image URL of the prompt") as caught:
        qwen_nb.ask("what is this?", "https://example.com/a.png?key=" + FAKE_KEY[:4] + FAKE_KEY[4:])
    assert_no_key(str(caught.value))
    assert server.requests == []
    results = qwen_nb.batch(["fine", "key " + FAKE_KEY[:4] + FAKE_KEY[4:]], progress=False)
    assert results.items[0].ok
    assert isinstance(results.items[1].error, qwen_nb.InputError)
    assert "your API key" in results.items[1].error.message
    assert len(server.requests) == 1


def test_the_panel_refuses_a_prompt_holding_the_key(server):
    from qwen_nb.panel import Panel

    panel = Panel()
    try:
        assert panel.send("is this right: " + FAKE_KEY[:6] + FAKE_KEY[6:]) is False
        assert "The prompt contains your API key" in panel.widget.notice
        assert_no_key(panel.widget.notice)
        assert_no_key(json.dumps(panel.widget.get_state(), default=repr))  # not put back
        assert server.requests == []
    finally:
        panel.close()
