"""Every API key qwen_nb knows, taken out of whatever a server sends back.

A gateway, proxy or debug error page may repeat the `Authorization` header in an error
body, an error event, a chunk, a request id or a response header. Each server-supplied
string passes through `redact` before qwen_nb stores or shows it, and the httpx and
httpcore loggers get a filter that does the same, so the key shows in no message, result,
file or log record.

Standard library only: `_errors` and `_protocol` use it too. `json` and `logging` are
imported on first use, to keep `%load_ext qwen_nb` fast.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus

REPLACEMENT = "[redacted key]"
# Shorter "keys" are placeholders (vLLM's "EMPTY"), not secrets; redacting them would
# garble ordinary text.
MIN_KEY_LENGTH = 8
# The loggers httpx and httpcore write to (httpcore's DEBUG lines hold every response
# header). A filter on a logger does not see its children's records, so each is named.
HTTP_LOGGERS = ("httpx", "httpcore", "httpcore.connection", "httpcore.http11",
                "httpcore.http2", "httpcore.proxy", "httpcore.socks")

_remembered: set[str] = set()  # every key qwen_nb was given in this process
_variables: set[str] = {"QWEN_NB_API_KEY"}  # and the environment variables that hold keys
_lock = threading.Lock()
_cached: tuple[frozenset[str], tuple[str, ...], re.Pattern[str] | None] = (
    frozenset(), (), None)


def remember(key: str) -> None:
    """Note a key qwen_nb was given (resolved settings, set_api_key(), a panel's field),
    so its echo is redacted wherever it comes from."""
    key = key.strip()
    if len(key) >= MIN_KEY_LENGTH:
        with _lock:
            _remembered.add(key)


def watch_variables(names: Iterable[str]) -> None:
    """Environment variables whose values are keys (the providers' own, from _config)."""
    with _lock:
        _variables.update(names)


def known_keys() -> frozenset[str]:
    """Keys in use or at hand: every one qwen_nb was given, and the variables' values
    as they are now."""
    keys = set(_remembered)
    for name in tuple(_variables):
        value = os.environ.get(name)
        if value:
            keys.add(value.strip())
    return frozenset(k for k in keys if len(k) >= MIN_KEY_LENGTH)


def json_forms(key: str) -> set[str]:
    """The key as JSON encoders write it inside a string: minimal escapes, `\\/` (PHP),
    `<>&` as `\\u003c` (Go). For the usual keys (letters, digits, `-_.`) only the key."""
    import json

    escaped = json.dumps(key)[1:-1]
    go = escaped.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return {escaped, escaped.replace("/", "\\/"), go}


def key_forms(key: str) -> set[str]:
    """The ways a key shows up in text: as is (also after `Bearer `), URL-encoded,
    JSON-escaped (also with every non-alphanumeric as `\\u00XX`), Python-repr'd
    (httpcore logs headers as bytes reprs) and HTML-escaped."""
    url = quote(key, safe="")
    forms = {
        key,
        *json_forms(key),
        url,
        re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), url),
        quote_plus(key, safe=""),
        "".join(ch if ch.isalnum() else f"\\u{ord(ch):04x}" for ch in key),
        "".join(ch if ch.isalnum() else f"\\u{ord(ch):04X}" for ch in key),
        repr(key)[1:-1],
        repr(key.encode())[2:-1],
        key.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        .replace('"', "&quot;").replace("'", "&#x27;"),
    }
    return {form for form in forms if form}


def secret_forms() -> tuple[str, ...]:
    """Every form of every known key, longest first: what a short text is tested for
    with `in` before `redact` is called (usually a few strings per key)."""
    return _current()[1]


def _current() -> tuple[frozenset[str], tuple[str, ...], re.Pattern[str] | None]:
    global _cached
    keys = known_keys()
    cached = _cached
    if cached[0] != keys:
        every = sorted({form for key in keys for form in key_forms(key)}, key=len, reverse=True)
        pattern = re.compile("|".join(map(re.escape, every))) if every else None
        cached = _cached = (keys, tuple(every), pattern)
    return cached


def redact(text: str) -> str:
    """`text` with every known key (in any of its forms) replaced by `[redacted key]`."""
    if not text:
        return text
    pattern = _current()[2]
    return text if pattern is None else pattern.sub(REPLACEMENT, text)


def redact_optional(text: str | None) -> str | None:
    return None if text is None else redact(text)


def contains_key(text: str) -> bool:
    """True when `text` holds a known key in any of its forms."""
    pattern = _current()[2]
    return bool(text) and pattern is not None and pattern.search(text) is not None


def redact_log_record(record: Any) -> bool:
    """A logging filter: rewrites a record whose text holds a key; lets every record
    through (a filter may be any callable since Python 3.2)."""
    try:
        message = record.getMessage()
    except Exception:  # a record whose arguments do not fit its format: leave it
        return True
    if contains_key(message):
        record.msg = redact(message)
        record.args = None
    return True


def guard_http_logs() -> None:
    """Put the redacting filter on the httpx/httpcore loggers (idempotent)."""
    import logging

    for name in HTTP_LOGGERS:
        logger = logging.getLogger(name)
        if redact_log_record not in logger.filters:
            logger.addFilter(redact_log_record)
