"""The redaction step on its own: every form a key takes in text, and the log filter."""

from __future__ import annotations

import json
import logging
from urllib.parse import quote, quote_plus

import pytest

from qwen_nb._redact import REPLACEMENT, contains_key, redact, redact_log_record, remember

ODD_KEY = "sk-or/v1+odd=key&<x>'\"\\end"  # every character an encoder escapes


@pytest.fixture(autouse=True)
def odd_key():
    remember(ODD_KEY)


@pytest.mark.parametrize("form", [
    ODD_KEY,
    "Bearer " + ODD_KEY,
    quote(ODD_KEY, safe=""),
    quote(ODD_KEY, safe="").lower(),
    quote_plus(ODD_KEY, safe=""),
    json.dumps(ODD_KEY)[1:-1],
    json.dumps(ODD_KEY)[1:-1].replace("/", "\\/"),
    json.dumps(ODD_KEY)[1:-1].replace("<", "\\u003c").replace(">", "\\u003e")
    .replace("&", "\\u0026"),
    "".join(c if c.isalnum() else f"\\u{ord(c):04x}" for c in ODD_KEY),
    repr(ODD_KEY)[1:-1],
    repr(ODD_KEY.encode())[2:-1],
    ODD_KEY.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    .replace('"', "&quot;").replace("'", "&#x27;"),
])
def test_every_form_of_a_key_is_redacted(form):
    text = f"before {form} after"
    assert contains_key(text)
    assert redact(text).startswith("before ") and redact(text).endswith(" after")
    assert REPLACEMENT in redact(text)
    assert "odd=key" not in redact(text) and "odd%3Dkey" not in redact(text).lower()


def test_text_without_a_key_is_returned_unchanged():
    text = "nothing secret here: sk-or, v1, odd"
    assert redact(text) is text
    assert not contains_key(text)


def test_the_log_filter_rewrites_records_with_arguments():
    record = logging.LogRecord("httpcore.http11", logging.DEBUG, __file__, 1,
                               "headers=%r", ([(b"X-Echo", ODD_KEY.encode())],), None)
    assert redact_log_record(record) is True  # the record is kept, rewritten
    assert ODD_KEY not in record.getMessage()
    assert REPLACEMENT in record.getMessage()
    clean = logging.LogRecord("httpx", logging.INFO, __file__, 1, "HTTP %s", ("200",), None)
    assert redact_log_record(clean) is True and clean.args == ("200",)
