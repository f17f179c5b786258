"""The API key never appears in anything qwen_nb produces.

A distinctive fake key is used on every path (success, each error, non-stream, the magic,
the panel, the cache, a notebook run by a real kernel and saved), and every byte produced
(outputs and their metadata, reprs, messages, tracebacks, log records, files) is searched.
"""

from __future__ import annotations

import json
import pickle
import socket
import traceback

import pytest
from fake_server import Reply
from IPython.utils.capture import capture_output
from support import FAKE_KEY, run_cell, run_notebook_with_key

import qwen_nb
from qwen_nb import QwenError
from qwen_nb._config import Secret, resolve_settings, set_api_key
from qwen_nb.render import static_bundle

FAULTS = {
    "401 openai": Reply(status=401, error_body={"error": {"message": "Incorrect API key"}}),
    "401 aiml": Reply(status=401, error_body={"message": "Unauthorized", "statusCode": 401,
                                              "requestId": "aiml-1"}),
    "400": Reply(status=400, error_body={"error": {"message": "bad request"}}),
    "404": Reply(status=404),
    "429": Reply(status=429, headers={"Retry-After": "0"}),
    "500": Reply(status=500),
    "cut": Reply(cut_after=5),
    "malformed": Reply(malformed_at=5),
    "error event": Reply(error_event_at=5),
    "stall": Reply(stall_after=5, stall_seconds=2),
    "reset": Reply(reset_before_response=True),
    "length": Reply(finish_reason="length"),
}


def everything_about(obj) -> str:
    """Every text form of `obj` we can think of."""
    pieces = [str(obj), repr(obj)]
    if isinstance(obj, BaseException):
        pieces += ["".join(traceback.format_exception(obj)), repr(obj.args)]
        pieces += list(getattr(obj, "_render_traceback_", list)())
        pieces.append(repr(vars(obj)))
        response = getattr(obj, "response", None)
        if response is not None:
            pieces.append(everything_about(response))
    if hasattr(obj, "_repr_mimebundle_"):
        data, metadata = static_bundle(obj) if isinstance(obj, qwen_nb.QwenResponse) else (
            obj._repr_mimebundle_(), {})
        pieces.append(json.dumps([data, metadata], default=repr))
    return "\n".join(pieces)


def log_text(caplog) -> str:
    return caplog.text + "\n".join(f"{r.getMessage()} {r.args!r} {vars(r)!r}"
                                   for r in caplog.records)


def assert_no_key(text: str) -> None:
    assert FAKE_KEY not in text
    assert FAKE_KEY[6:] not in text  # not even without its prefix


def test_the_key_is_really_sent_so_the_searches_mean_something(server):
    qwen_nb.ask("hello")
    assert server.requests[-1].headers["Authorization"] == f"Bearer {FAKE_KEY}"


@pytest.mark.parametrize("stream", [True, False])
def test_success_paths_leak_nothing(server, logs, stream):
    response = qwen_nb.ask("hello", stream=stream)
    events = list(qwen_nb.stream("hello"))
    produced = [everything_about(response), repr(events), log_text(logs)]
    assert "HTTP Request" in logs.text  # httpx's own log line was captured
    assert_no_key("\n".join(produced))


@pytest.mark.parametrize("fault", list(FAULTS))
def test_error_paths_leak_nothing(server, logs, fault):
    server.default_reply = FAULTS[fault]
    try:
        response = qwen_nb.ask("hello", timeout=0.5, max_attempts=2)
        produced = everything_about(response)
    except QwenError as error:
        produced = everything_about(error)
        if error.__context__ is not None:  # suppressed, but still attached
            produced += everything_about(error.__context__)
    assert_no_key(produced + log_text(logs))


def test_connection_refused_and_connect_timeout_leak_nothing(server, logs, monkeypatch):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("QWEN_NB_BASE_URL", f"http://127.0.0.1:{port}/v1")
    with pytest.raises(QwenError) as caught:
        qwen_nb.ask("hello", max_attempts=2)
    assert_no_key(everything_about(caught.value) + log_text(logs))


def test_settings_secret_and_session_keys_never_show_the_key(server, monkeypatch):
    settings = resolve_settings()
    assert settings.api_key.reveal() == FAKE_KEY
    assert_no_key(repr(settings) + str(settings) + repr(settings.api_key) +
                  f"{settings.api_key}" + f"{settings!r}")
    with pytest.raises(TypeError) as caught:
        pickle.dumps(settings)
    assert_no_key(str(caught.value))
    monkeypatch.setattr("qwen_nb._config._session_keys", {})
    set_api_key(FAKE_KEY)
    monkeypatch.delenv("QWEN_NB_API_KEY")
    assert resolve_settings().api_key == Secret(FAKE_KEY)
    assert_no_key(repr(resolve_settings()))


def test_a_key_that_cannot_be_a_header_is_not_quoted_back(server):
    # Refused up front, unshown...
    with pytest.raises(QwenError) as caught:
        qwen_nb.ask("hello", api_key=FAKE_KEY + "\x00")
    assert_no_key(everything_about(caught.value))
    # ...and were one to slip through, h11 quotes an illegal header value in its error:
    # qwen_nb must not pass that on.
    import dataclasses

    from qwen_nb import api
    from qwen_nb.client import ResponseStream

    settings = dataclasses.replace(resolve_settings(), api_key=Secret(FAKE_KEY + "\n"),
                                   max_attempts=1)
    request = api.build_request(["hello"], model="m")
    with pytest.raises(QwenError) as caught:
        list(ResponseStream(request, settings))
    assert "LocalProtocolError" in caught.value.message
    assert_no_key(everything_about(caught.value))
    assert server.requests == []


def test_magic_outputs_tracebacks_and_results_leak_nothing(ip, server, capsys):
    produced: list[str] = []
    cells = ["%%qwen\nhello", "%%qwen --no-stream\nhello", "%%qwen -o answer\nhello"]
    for fault in ("401 aiml", "cut", "error event", "stall", "length"):
        server.queue(FAULTS[fault])
        cells.append("%%qwen --timeout 0.5 --max-attempts 1\nhello")
    for cell in cells:
        with capture_output() as captured:
            result = run_cell(ip, cell)
        produced += [captured.stdout, captured.stderr]
        produced += [json.dumps([o.data, o.metadata], default=repr) for o in captured.outputs]
        if result.error_in_exec is not None:
            produced.append(everything_about(result.error_in_exec))
        produced.append(everything_about(ip.user_ns["_qwen"]))
    shown = capsys.readouterr()
    produced += [shown.out, shown.err]
    assert_no_key("\n".join(produced))


def test_panel_leaks_nothing(server):
    assert_no_key(everything_a_panel_shows(server, Reply(), FAULTS["401 aiml"]))


def everything_a_panel_shows(server, *replies: Reply) -> str:
    """A panel sends one prompt per reply; its widget's state, every message it sent to the
    page, repr, bundle, Markdown and turns, as text."""
    import comm
    from support import FrontEndMessages

    from qwen_nb.panel import Panel

    server.queue(*replies)
    sent = FrontEndMessages()
    original = comm.create_comm
    comm.create_comm = sent.comm_class()
    panel = Panel()
    try:
        values = []
        for number in range(len(replies)):
            panel.send(f"prompt {number}")
            assert panel.wait(60)
            values.append(json.dumps(panel.widget.get_state(), default=repr))
        assert sent.custom, "the panel sent nothing to the page"
        values += [json.dumps(sent.custom, default=repr), repr(panel),
                   json.dumps(panel._repr_mimebundle_(), default=repr),
                   panel.to_markdown(thinking=True)]
        values += [everything_about(turn.response) for turn in panel.history]
        return "\n".join(values)
    finally:
        panel.close()
        comm.create_comm = original


def test_cache_files_leak_nothing(server, tmp_path):
    qwen_nb.ask("hello", cache="record", cache_dir=tmp_path)
    replayed = qwen_nb.ask("hello", cache="replay", cache_dir=tmp_path)
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert files, "the cache recorded something"
    for path in files:
        assert FAKE_KEY.encode() not in path.read_bytes(), path
    assert_no_key(everything_about(replayed))


@pytest.mark.kernel
def test_a_notebook_run_by_a_real_kernel_and_saved_leaks_nothing(server, tmp_path):
    import nbformat

    server.queue(Reply(), FAULTS["cut"], FAULTS["401 aiml"], Reply(error_event_at=4))
    cells = [
        "%load_ext qwen_nb",
        "%%qwen\nhello",
        "%%qwen\ncut short",
        "%%qwen --max-attempts 1\nunauthorized",
        "%xmode Verbose",
        "%%qwen\nerror event",
        "_qwen",
        "import qwen_nb._config as c; c.resolve_settings()",
        "import logging; logging.basicConfig(level=logging.DEBUG); qwen_nb_ok = True",
        "%%qwen\nwith debug logging on",
    ]
    nb = run_notebook_with_key(cells, tmp_path, server.base_url)
    path = tmp_path / "executed.ipynb"
    nbformat.write(nb, path)
    saved = path.read_bytes()
    assert b"Incomplete reply" in saved and b"Unauthorized" in saved  # the paths ran
    assert server.requests[-1].headers["Authorization"] == f"Bearer {FAKE_KEY}"
    assert FAKE_KEY.encode() not in saved
    for produced in tmp_path.rglob("*"):
        if produced.is_file():
            assert FAKE_KEY.encode() not in produced.read_bytes(), produced


def test_a_key_set_for_no_provider_is_not_sent_to_keyless_local_servers(monkeypatch):
    from qwen_nb._config import resolve_settings, set_api_key

    monkeypatch.setattr("qwen_nb._config._session_keys", {})
    set_api_key(FAKE_KEY)
    env = {"QWEN_NB_BASE_URL": "http://127.0.0.1:9/v1"}
    assert resolve_settings(provider="dashscope", env=env).api_key.reveal() == FAKE_KEY
    assert resolve_settings(provider="vllm", env=env).api_key is None
    set_api_key(FAKE_KEY, provider="vllm")  # named explicitly: used
    assert resolve_settings(provider="vllm", env=env).api_key.reveal() == FAKE_KEY
