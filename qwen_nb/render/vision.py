"""The Answer section for answers that mean more than text: overlays, data, documents.

`answer_html` returns None for an ordinary answer, so the bundle renders it as Markdown;
otherwise the figures come first and the answer's JSON stays available, folded, below.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .._types import QwenResponse

# The bundle imports this module, so its Markdown renderer comes in as an argument.
Markdown = Callable[[str], str]

# A fenced block holding grounding JSON (to the end of the text when cut off).
_GROUNDING_FENCE = re.compile(
    r"```[^\n`]*\n(?:(?!```).)*?(?:bbox_2d|point_2d)(?:(?!```).)*?(?:```|\Z)", re.DOTALL
)


def answer_html(response: QwenResponse, markdown_html: Markdown) -> str | None:
    """The Answer tab's body when the answer holds boxes, points, data or a document."""
    reading = response.interpretation
    if response.reading.json:
        return _data_html(response, markdown_html)
    if reading.document is not None:
        return _document_html(response, markdown_html)
    if not reading.has_overlay:
        return None
    from .overlay import overlay_figures_html

    pieces = [overlay_figures_html(response)]
    prose = _GROUNDING_FENCE.sub("", response.answer).strip()
    if prose and prose != response.answer.strip():
        pieces.append(markdown_html(prose))
    pieces.append(_folded("Answer text (JSON)", markdown_html(response.answer)))
    return "".join(pieces)


def _data_html(response: QwenResponse, markdown_html: Markdown) -> str | None:
    """A JSON answer: pretty-printed when it parsed; the schema's complaints above it."""
    import json

    reading = response.interpretation
    pieces = []
    if reading.errors:
        items = "".join(f"<li>{html.escape(error)}</li>" for error in reading.errors[:20])
        more = len(reading.errors) - 20
        pieces.append(
            '<div class="qwen-nb-invalid" role="alert"><strong>The answer does not match the '
            f"schema:</strong><ul>{items}</ul>"
            + (f"<p>... and {more} more</p>" if more > 0 else "") + "</div>"
        )
    if reading.raw_data is None:
        pieces.append(markdown_html(response.answer) if response.answer else "")
        return "".join(pieces) or None
    pretty = json.dumps(reading.raw_data, indent=2, ensure_ascii=False)
    pieces.append(f'<pre><code class="language-json">{html.escape(pretty)}</code></pre>')
    if reading.errors or response.answer.strip() != pretty:
        pieces.append(_folded("Answer text", markdown_html(response.answer)))
    return "".join(pieces)


def _document_html(response: QwenResponse, markdown_html: Markdown) -> str:
    """The parsed page beside the page image with its regions drawn and labelled."""
    from .overlay import overlay_figures_html

    document = response.interpretation.document
    shown = document.text if document.format == "html" else markdown_html(document.text)
    return (
        '<div class="qwen-nb-doc" style="display:flex;flex-wrap:wrap;gap:12px;'
        'align-items:flex-start">'
        f'<div style="flex:1 1 320px;min-width:0">{overlay_figures_html(response)}</div>'
        f'<div class="qwen-nb-document" style="flex:1 1 320px;min-width:0">{shown}</div>'
        "</div>" + _folded("Answer text", markdown_html(response.answer))
    )


def complete_grounding(response: QwenResponse) -> QwenResponse | None:
    """The reply so far cut after its last closing brace, when that holds boxes or points.

    A grounding item is an object, so its `}` completes it; repairing the cut text keeps
    the whole items and drops the one still arriving (a box is never shown half-written)."""
    end = response.answer.rfind("}") + 1
    if not end:
        return None
    cut = response.replace(answer=response.answer[:end])
    reading = cut.interpretation
    return cut if (reading.boxes or reading.points) else None


def live_overlay_html(response: QwenResponse) -> str | None:
    """For a live view, on the reply so far: the drawn images of the grounding items that
    are complete (None while there are none)."""
    cut = complete_grounding(response)
    if cut is None:
        return None
    from .overlay import overlay_figures_html

    return overlay_figures_html(cut)


def notes(response: QwenResponse) -> tuple[str, ...]:
    """What reading the answer found and did, for the Details tab."""
    return response.interpretation.notes


def _folded(title: str, body: str) -> str:
    return (f'<details class="qwen-nb-folded"><summary>{html.escape(title)}</summary>'
            f"{body}</details>")
