"""Bad input is refused before any request, with a message that says what to fix."""

from __future__ import annotations

import pytest
from IPython.core.error import UsageError
from support import FAKE_KEY, run_cell

import qwen_nb
from qwen_nb import ConfigError, ImageError, InputError, QwenError
from qwen_nb._config import redact_url, resolve_settings, validate_base_url


def refused(ip, server, cell: str) -> BaseException:
    result = run_cell(ip, cell)
    error = result.error_in_exec
    assert error is not None, cell
    assert server.requests == [], "nothing may be sent"
    return error


@pytest.mark.parametrize("cell, kind, words", [
    ("%%qwen\n", UsageError, "empty"),  # IPython's own check
    ("%%qwen\n   \n\t\n", InputError, "empty"),
    ("%qwen", InputError, "empty"),
    ("%%qwen -i no_such_image\nWhat is this?", ImageError, "no_such_image"),
    ("%%qwen -i 1/0\nWhat is this?", ImageError, "ZeroDivisionError"),
    ("%%qwen --max-tokens -5\nhi", InputError, "max_tokens"),
    ("%%qwen --max-tokens 0\nhi", InputError, "whole number above 0"),
    ("%%qwen -t 3\nhi", InputError, "from 0 to 2"),
    ("%%qwen -t -0.1\nhi", InputError, "temperature"),
    ("%%qwen --top-p 0\nhi", InputError, "top_p"),
    ("%%qwen --thinking-budget -1\nhi", InputError, "thinking_budget"),
    ("%%qwen --provider nosuch\nhi", ConfigError, "Choose one of"),
    ("%%qwen --base-url not-a-url\nhi", ConfigError, "https://host/v1"),
    ("%%qwen --base-url http://\nhi", ConfigError, "https://host/v1"),
    ("%%qwen --base-url ftp://example.org/v1\nhi", ConfigError, "http(s)"),
    ("%%qwen --base-url http://example.org:99999/v1\nhi", ConfigError, "port"),
    ("%%qwen --base-url https://example.org/v1/chat/completions\nhi", ConfigError,
     "leave that part off"),
    ("%%qwen --timeout -1\nhi", ConfigError, "positive number of seconds"),
    ("%%qwen --connect-timeout 0\nhi", ConfigError, "positive number of seconds"),
    ("%%qwen --max-attempts 0\nhi", ConfigError, "at least 1"),
    ("%%qwen --max-pixels -1\nhi", InputError, "max-pixels"),
    ("%%qwen -o 'not a name'\nhi", InputError, "variable name"),
])
def test_bad_magic_input_is_refused_before_sending(ip, server, capsys, cell, kind, words):
    error = refused(ip, server, cell)
    assert isinstance(error, kind), error
    assert words in str(error)
    shown = capsys.readouterr()
    assert "Traceback" not in shown.out + shown.err


def test_unknown_image_name_says_name_error_and_names_it(ip, server):
    error = refused(ip, server, "%%qwen -i photoo\nhi")
    assert "photoo" in str(error) and "is not defined" in str(error)
    assert "cell above" in str(error) or "spelling" in str(error)


def test_option_that_is_not_a_number_is_a_usage_error(ip, server):
    error = refused(ip, server, "%%qwen -t warm\nhi")
    assert isinstance(error, UsageError)


@pytest.mark.parametrize("kwargs, words", [
    (dict(temperature="hot"), "temperature"),
    (dict(temperature=float("nan")), "temperature"),
    (dict(max_tokens=-5), "max_tokens"),
    (dict(max_tokens=2.5), "whole number"),
    (dict(max_tokens=True), "whole number"),
    (dict(seed="7"), "seed"),
    (dict(top_p=1.5), "top_p"),
    (dict(tempreature=0.2), "Unknown option tempreature"),
    (dict(provider="nope"), "Unknown provider"),
    (dict(base_url="localhost:8000/v1"), "http(s)"),
    (dict(timeout="soon"), "seconds"),
    (dict(max_retry_time=-1), "max_retry_time"),
])
def test_bad_ask_arguments_are_refused_before_sending(server, kwargs, words):
    with pytest.raises(QwenError) as caught:
        qwen_nb.ask("hello", **kwargs)
    assert words in caught.value.message
    assert server.requests == []


@pytest.mark.parametrize("prompt", ["", "   ", "\n\t"])
def test_empty_prompt_to_ask_is_refused(server, prompt):
    with pytest.raises(InputError, match="empty"):
        qwen_nb.ask(prompt)
    assert server.requests == []


@pytest.mark.parametrize("url", [
    f"https://user:{FAKE_KEY}@api.example.org/v1",
    f"https://{FAKE_KEY}@api.example.org/v1",
    f"https://api.example.org/v1?key={FAKE_KEY}",
    f"https://api.example.org/v1#{FAKE_KEY}",
    f"user:{FAKE_KEY}@api.example.org/v1",
    f"ftp://x:{FAKE_KEY}@api.example.org/v1",
])
def test_a_key_in_the_base_url_is_refused_without_echoing_it(ip, server, capsys, url):
    with pytest.raises(ConfigError) as caught:
        validate_base_url(url)
    assert FAKE_KEY not in str(caught.value)
    assert "QWEN_NB_API_KEY" in str(caught.value) or "http(s)" in str(caught.value)
    assert FAKE_KEY not in redact_url(url)
    error = refused(ip, server, f"%%qwen --base-url '{url}'\nhi")
    shown = capsys.readouterr()
    assert FAKE_KEY not in str(error) + repr(error) + shown.out + shown.err


def test_a_key_with_a_line_break_is_refused_without_showing_it(monkeypatch, server):
    monkeypatch.setenv("QWEN_NB_API_KEY", FAKE_KEY + "\nX-Evil: 1")
    with pytest.raises(ConfigError) as caught:
        resolve_settings()
    assert FAKE_KEY not in str(caught.value) and "set_api_key" in str(caught.value)
    monkeypatch.setenv("QWEN_NB_API_KEY", f"  {FAKE_KEY}\n")  # pasted with spaces: fine
    assert resolve_settings().api_key.reveal() == FAKE_KEY
