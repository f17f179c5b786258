"""One renderer for every view (the magic, ask(), the panel, batch, the live front end).

Public functions, stable for the views that call them:

- `markdown_html(text)`: Markdown -> safe HTML (math as MathML, code highlighted, remote
  images as links; parsed once per text, cached).
- `math_html(tex, display=)`: one formula as sanitised MathML (TeX kept as annotation).
- `code_html(code, language)`: one code block, `<div class="qwen-nb-code" data-lang=..>`.
- `thinking_html(text)`: the thinking trace as escaped text (`pre.qwen-nb-trace`).
- `thinking_label(response)`: "Thinking · 12 s · 1,234 tokens".
- `tabs_html(response)`, `static_bundle(response)`: the saved output.
- `thumbnails_html(images)`, `details_table(response)`, `details_rows(response)`,
  `status_message(response)`, `markdown_text(response)`, `plain_text(response)`,
  `inert_markdown(text)`, `output_metadata(response)`, `format_seconds(value)`,
  `vision_answer_html(response)` (boxes, points, JSON, documents; None for plain text).
- `STYLE`: the one <style> element the static output carries; `CSS_CLASS` its prefix.
"""

from __future__ import annotations

from .bundle import (
    details_rows,
    details_table,
    format_seconds,
    markdown_text,
    output_metadata,
    plain_text,
    static_bundle,
    status_message,
    tabs_html,
    thinking_html,
    thinking_label,
    thumbnails_html,
    vision_answer_html,
)
from .code import code_html
from .inert import inert_markdown
from .markdown import markdown_html
from .math import math_html
from .styles import CSS_CLASS, STYLE

__all__ = [
    "CSS_CLASS",
    "STYLE",
    "code_html",
    "details_rows",
    "details_table",
    "format_seconds",
    "inert_markdown",
    "markdown_html",
    "markdown_text",
    "math_html",
    "output_metadata",
    "plain_text",
    "static_bundle",
    "status_message",
    "tabs_html",
    "thinking_html",
    "thinking_label",
    "thumbnails_html",
    "vision_answer_html",
]
