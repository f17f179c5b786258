"""One renderer for every view: safe Markdown, the thinking trace and the static bundle.

Views import from here; `bundle` holds the implementation until it grows into
Markdown, math, code and overlay modules of its own.
"""

from __future__ import annotations

from .bundle import (
    CSS_CLASS,
    details_rows,
    details_table,
    format_seconds,
    inert_markdown,
    markdown_html,
    markdown_text,
    output_metadata,
    plain_text,
    static_bundle,
    status_message,
    tabs_html,
    thinking_html,
    vision_answer_html,
)

__all__ = [
    "CSS_CLASS",
    "details_rows",
    "details_table",
    "format_seconds",
    "inert_markdown",
    "markdown_html",
    "markdown_text",
    "output_metadata",
    "plain_text",
    "static_bundle",
    "status_message",
    "tabs_html",
    "thinking_html",
    "vision_answer_html",
]
