"""What identifies a request: the canonical JSON of the parts that decide the reply.

The cache keys recordings by it and the offline simulator seeds its reply with it, so it
sits below both (standard library only).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ._types import ChatRequest, PreparedImage, PreparedVideo

_OPTIONS_IN_KEY = (
    "temperature", "top_p", "max_tokens", "seed", "thinking_budget", "response_format"
)


def canonical_request(request: ChatRequest) -> dict[str, Any]:
    """The parts of a request that decide the reply, as plain JSON values."""
    messages = []
    for message in request.messages:
        parts: list[Any] = []
        for part in message.parts:
            if isinstance(part, PreparedImage):
                parts.append({"image": part.digest or _sha256(part.url)})
            elif isinstance(part, PreparedVideo):
                # The frames actually sent (and how), not the file they came from.
                parts.append({"video": part.digest})
            elif part:
                parts.append(part)
        messages.append({"role": message.role, "parts": parts})
    options = {
        name: getattr(request.options, name)
        for name in _OPTIONS_IN_KEY
        if getattr(request.options, name) is not None
    }
    return {"model": request.model, "messages": messages, "options": options}


def request_fingerprint(request: ChatRequest) -> str:
    """sha256 of the canonical request alone (the offline simulator's seed)."""
    return _sha256(_canonical_json(canonical_request(request)))


def cache_key(request: ChatRequest, base_url: str) -> str:
    """sha256 of the canonical request and where it goes. Never the key or a header."""
    return _sha256(
        _canonical_json({"base_url": base_url.rstrip("/"), **canonical_request(request)})
    )


def _canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
