"""qwen_nb's own small exception hierarchy.

Every error a user can cause or meet is one of these. IPython shows
`_render_traceback_()` instead of a 40-line httpx traceback, and the cell still fails,
so "Run All" stops where the problem is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._redact import redact, redact_optional
from ._terminal import inert

if TYPE_CHECKING:
    from ._types import QwenResponse


class QwenError(Exception):
    """Base class for everything qwen_nb raises on purpose."""

    #: What arrived before the failure, if anything did (partial thinking and answer).
    response: QwenResponse | None = None

    def __init__(self, message: str, *, response: QwenResponse | None = None) -> None:
        # Messages quote servers; a key one of them repeated stops here at the latest.
        message = redact(message)
        super().__init__(message)
        self.message = message
        self.response = response

    def _render_traceback_(self) -> list[str]:
        # The name is ours (coloured); the message may quote a server, so it is inert.
        return [f"\x1b[31m{type(self).__name__}\x1b[0m: {inert(self.message)}"]


class ConfigError(QwenError):
    """Settings are missing or invalid (no key, unknown provider, bad base URL)."""


class InputError(QwenError):
    """The prompt, an option or an image is unusable; nothing was sent."""


class ImageError(InputError):
    """An image could not be read or prepared; nothing was sent."""


class VideoError(InputError):
    """A video could not be read, sampled or sent within its caps; nothing was sent."""


class APIError(QwenError):
    """The provider answered with an error."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        request_id: str | None = None,
        response: QwenResponse | None = None,
    ) -> None:
        super().__init__(message, response=response)
        self.status_code = status_code
        self.request_id = redact_optional(request_id)


class AuthenticationError(APIError):
    """401 / 403: the key is missing, wrong or not allowed to use this model."""


class BadRequestError(APIError):
    """400 / 422: the provider refused the request as sent."""


class ModelNotFoundError(APIError):
    """404: the model name (or the base URL) is wrong for this provider."""


class RateLimitError(APIError):
    """429 after every retry."""


class ServerError(APIError):
    """5xx after every retry."""


class APIConnectionError(QwenError):
    """The server could not be reached (refused, reset, DNS)."""


class APITimeoutError(QwenError):
    """A timeout fired; `kind` says which: "connect" or "read" (silence between chunks)."""

    def __init__(self, message: str, *, kind: str, response: QwenResponse | None = None) -> None:
        super().__init__(message, response=response)
        self.kind = kind


class StreamError(QwenError):
    """The stream broke after it started: cut short, malformed, or an error event."""


class Interrupted(QwenError):
    """The user stopped the reply (kernel interrupt or the panel's Stop button)."""


class CacheMissError(QwenError):
    """Replay mode found no recording for this request."""


class SchemaError(QwenError):
    """With --strict: the answer's JSON does not match the schema (the reply is kept)."""
