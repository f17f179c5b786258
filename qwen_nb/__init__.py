"""qwen_nb: talk to Qwen3-VL-32B-Thinking from Jupyter.

`%load_ext qwen_nb` registers `%%qwen`; `qwen_nb.ask()`, `qwen_nb.stream()` and
`qwen_nb.Panel()` are the Python API. Heavy modules (httpx, PIL, ipywidgets, markdown-it)
are imported on first use, so loading the extension is fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._config import set_api_key
from ._errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    CacheMissError,
    ConfigError,
    ImageError,
    InputError,
    Interrupted,
    QwenError,
    StreamError,
    VideoError,
)
from ._types import (
    AnswerDelta,
    Finished,
    QwenResponse,
    ThinkingDelta,
    Usage,
    UsageUpdate,
    set_answer_reader,
    set_bundle_renderer,
)

if TYPE_CHECKING:
    from ._batch import BatchItem, BatchResult, batch
    from .api import ask, stream
    from .media.pdf import pdf_pages
    from .media.video import Video
    from .panel import Panel

__version__ = "0.1.0"

__all__ = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AnswerDelta",
    "AuthenticationError",
    "BatchItem",
    "BatchResult",
    "CacheMissError",
    "ConfigError",
    "Finished",
    "ImageError",
    "InputError",
    "Interrupted",
    "Panel",
    "QwenError",
    "QwenResponse",
    "StreamError",
    "ThinkingDelta",
    "Usage",
    "UsageUpdate",
    "Video",
    "VideoError",
    "ask",
    "batch",
    "load_ipython_extension",
    "pdf_pages",
    "set_api_key",
    "stream",
    "unload_ipython_extension",
]

_LAZY = {"ask": "api", "stream": "api", "batch": "_batch", "BatchItem": "_batch",
         "BatchResult": "_batch", "Panel": "panel", "Video": "media.video",
         "pdf_pages": "media.pdf"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'qwen_nb' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f"qwen_nb.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The public API (lazy names included) plus what is loaded, so completion finds both."""
    return sorted(set(__all__) | set(globals()))


def _static_bundle(response: QwenResponse) -> tuple[dict, dict]:
    """A response's notebook display: render/ loads when the first one is shown."""
    from .render import static_bundle

    return static_bundle(response)


def _interpret(response: QwenResponse) -> Any:
    """Boxes, points, JSON data and documents in an answer: vision/ loads on first use."""
    from .vision.reading import interpret

    return interpret(response)


def _draw_overlay(response: QwenResponse, i: int, full: bool) -> Any:
    from .render.overlay import draw_overlay

    return draw_overlay(response, i, full=full)


set_bundle_renderer(_static_bundle)
set_answer_reader(_interpret, _draw_overlay)


def load_ipython_extension(ipython: Any) -> None:
    """`%load_ext qwen_nb`: register the magics (imports stay light), and let a one-line
    `%qwen ...?` keep its question mark."""
    from ._question_mark import register
    from .magics import QwenMagics

    ipython.register_magics(QwenMagics(ipython))
    register(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """`%unload_ext qwen_nb`: IPython reads `?` as help again."""
    from ._question_mark import unregister

    unregister(ipython)
