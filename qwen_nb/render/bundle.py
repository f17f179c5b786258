"""The static output bundle a saved notebook keeps: CSS-only tabs in `text/html`,
readable Markdown in `text/markdown`, a short summary in `text/plain`.

Where styles are stripped (GitHub, nbviewer, sanitizers) the tabs read top to bottom:
the answer, then the thinking and the details folded in <details> blocks. Each full
text is stored twice at most (HTML and Markdown): text/plain holds a summary.
"""

from __future__ import annotations

import hashlib
import html
import itertools
import re
from typing import TYPE_CHECKING, Any

from .inert import inert_markdown
from .markdown import markdown_html, remote_image_link
from .styles import CSS_CLASS, STYLE

if TYPE_CHECKING:
    from .._types import PreparedImage, QwenResponse

PLAIN_TEXT_LIMIT = 2_000  # characters of the answer and of the thinking in text/plain


def thinking_html(text: str) -> str:
    """The thinking trace as escaped text (never Markdown: it is the model's scratchpad);
    quotes stay as they are: they mean nothing in element text, and `&#x27;` took six
    bytes for every apostrophe."""
    return f'<pre class="{CSS_CLASS}-trace">{html.escape(text, quote=False)}</pre>'


def format_seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def thinking_label(response: QwenResponse) -> str:
    """"Thinking · 12 s · 1,234 tokens": how long and how much, as far as known."""
    parts = ["Thinking"]
    seconds = response.thinking_seconds
    if seconds is not None and response.thinking:
        parts.append(f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s")
    tokens = response.usage.reasoning_tokens
    if tokens is not None:
        parts.append(f"{tokens:,} token" + ("" if tokens == 1 else "s"))
    return " · ".join(parts)


def details_rows(response: QwenResponse) -> list[tuple[str, str]]:
    """The Details tab as (label, value) rows: model, tokens, timing, images, notes."""
    usage = response.usage
    tokens = (
        f"prompt {_n(usage.prompt_tokens)} / completion {_n(usage.completion_tokens)}"
        f" / reasoning {_n(usage.reasoning_tokens)} / total {_n(usage.total_tokens)}"
    )
    rows = [
        ("Model", response.model or "-"),
        ("Provider", response.provider or "-"),
        ("Tokens", tokens),
        ("Finish reason", response.finish_reason or "-"),
        ("Elapsed", format_seconds(response.elapsed)),
        ("Time to first token", format_seconds(response.time_to_first_token)),
    ]
    if response.thinking_seconds is not None and response.thinking:
        rows.append(("Thinking time", format_seconds(response.thinking_seconds)))
    if usage.cost_usd is not None:
        rows.append(("Cost", f"${usage.cost_usd:.6f}"))
    if usage.credits_used is not None or usage.tokens_used is not None:
        # AIML API's own accounting, as its meta.usage reports it.
        credits = "-" if usage.credits_used is None else f"{usage.credits_used:g}"
        rows.append(("Provider usage", f"credits {credits} / tokens {_n(usage.tokens_used)}"))
    if response.attempts > 1:
        rows.append(("Attempts", str(response.attempts)))
    if response.request_id:
        rows.append(("Request id", response.request_id))
    if response.replayed_from:
        rows.append(("Source", f"replayed from cache, recorded on {response.replayed_from}"))
    if not response.complete:
        rows.append(("Status", "incomplete (the notice above says why)"))
    for index, image in enumerate(response.images, 1):
        original = "x".join(map(str, image.original_size)) if image.original_size else "?"
        sent = "x".join(map(str, image.sent_size)) if image.sent_size else "as URL"
        tokens_est = image.visual_tokens
        value = (
            f"{image.source}: {original} -> {sent}, {image.format or '?'}, "
            f"{image.nbytes / 1024:.0f} KiB"
            + (f", ~{tokens_est} visual tokens" if tokens_est else "")
        )
        if image.notes:
            value += " (" + "; ".join(image.notes) + ")"
        rows.append((f"Image {index}", value))
    if response.videos:
        from .video import video_rows

        rows.extend(video_rows(response))
    for note in response.notes:
        rows.append(("Note", note))
    from .vision import notes as vision_notes  # what reading boxes/data/documents found

    rows.extend(("Note", note) for note in vision_notes(response))
    return rows


def _n(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def status_message(response: QwenResponse) -> str | None:
    """A one-line warning when the reply is not a plain, finished answer."""
    if not response.complete:
        return f"Incomplete reply: {response.error or 'stopped'}"
    if response.refusal:
        return f"The model refused to answer: {response.refusal}"
    if response.finish_reason == "length":
        thinking = response.usage.reasoning_tokens
        used = (
            f"; the thinking used {thinking:,} of them"
            if thinking is not None
            else "; the provider did not say how many the thinking used"
        )
        return (
            "The reply was cut at the token limit" + used + ". Raise the limit with "
            "--max-tokens (max_tokens= in ask()), or lower --thinking-budget."
        )
    if response.finish_reason == "content_filter":
        return "The provider's content filter stopped this reply (finish reason content_filter)."
    if response.finish_reason == "refusal":
        return "The model refused to answer (finish reason refusal)."
    if response.complete and not response.answer.strip():
        return "The model gave no answer text" + (" (only thinking)." if response.thinking else ".")
    return None


_shown = itertools.count(1)


def _tab_group_id(response: QwenResponse) -> str:
    """An id for one output's radio group: stable when a notebook is re-run top to bottom
    (so saved notebooks diff cleanly), unique among the outputs of one kernel session."""
    seed = f"{next(_shown)}|{response.request_id}|{len(response.answer)}|{response.answer[:200]}"
    return hashlib.sha256(seed.encode()).hexdigest()[:10]


def tabs_html(response: QwenResponse, *, style: bool = True) -> str:
    """The static tabbed view: CSS-only tabs; without CSS, the answer then folded blocks.
    `style=False`: without the <style> element (a page of many views carries it once).

    Structure (stable for the live front end): thumbnails, notice, three radio inputs
    with labels, then `.qwen-nb-answer` (a div) and `.qwen-nb-thinking` /
    `.qwen-nb-details` (<details> whose summary repeats the tab's label)."""
    uid = _tab_group_id(response)
    label = thinking_label(response)
    tabs = (("answer", "Answer"), ("thinking", label), ("details", "Details"))
    # tex2jax_ignore / mathjax_ignore: the notebook's MathJax leaves our MathML (and a
    # dollar sign in prose) alone.
    pieces = [STYLE if style else "",
              f'<div class="{CSS_CLASS} tex2jax_ignore mathjax_ignore" data-qwen-nb="static">']
    thumbs = thumbnails_html(response.images)
    if thumbs:
        pieces.append(thumbs)
    warning = status_message(response)
    if warning:
        pieces.append(f'<div class="{CSS_CLASS}-notice" role="status">⚠ '
                      f"{html.escape(warning)}</div>")
    for index, (key, title) in enumerate(tabs):
        checked = " checked" if index == 0 else ""
        pieces.append(
            f'<input type="radio" class="{CSS_CLASS}-tab" name="{CSS_CLASS}-{uid}" '
            f'id="{CSS_CLASS}-{uid}-{key}"{checked}>'
            f'<label for="{CSS_CLASS}-{uid}-{key}">{html.escape(title)}</label>'
        )
    answer = _answer_body(response)
    if response.videos:
        from .video import timeline_html

        answer += timeline_html(response)
    thinking = (thinking_html(response.thinking) if response.thinking
                else "<p><em>(no thinking trace)</em></p>")
    pieces.append(f'<div class="{CSS_CLASS}-panel {CSS_CLASS}-answer">{answer}</div>')
    pieces.append(_fold("thinking", label, thinking))
    pieces.append(_fold("details", "Details", details_table(response)))
    pieces.append("</div>")
    return "".join(pieces)


def _fold(key: str, title: str, body: str) -> str:
    return (f'<details class="{CSS_CLASS}-panel {CSS_CLASS}-{key}">'
            f"<summary>{html.escape(title)}</summary>{body}</details>")


def thumbnails_html(images: tuple[PreparedImage, ...]) -> str:
    """Small data: thumbnails of the images sent (a remote URL is named, never loaded)."""
    from ..media.thumbnail import thumbnail_url

    items = []
    for index, image in enumerate(images, 1):
        title = html.escape(f"image {index}: {image.source}")
        url = thumbnail_url(image)
        if url is None and image.url.lower().startswith(("http:", "https:")):
            items.append(remote_image_link(image.url, title))
        elif url is None:
            items.append(f'<span class="{CSS_CLASS}-thumb-missing">[{title}]</span>')
        else:
            items.append(f'<img src="{url}" alt="{title}" title="{title}">')
    return f'<div class="{CSS_CLASS}-thumbs">{"".join(items)}</div>' if items else ""


def vision_answer_html(response: QwenResponse) -> str | None:
    """The Answer body for boxes, points, JSON data or a document (None: plain text)."""
    from .vision import answer_html  # drawn overlays, parsed pages, JSON folded below

    return answer_html(response, markdown_html)


def _answer_body(response: QwenResponse) -> str:
    special = vision_answer_html(response)
    if special is not None:
        return special
    return markdown_html(response.answer) or _no_answer_html(response)


def _no_answer_html(response: QwenResponse) -> str:
    if response.refusal:
        return f"<p><em>Refused:</em> {html.escape(response.refusal)}</p>"
    return "<p><em>(no answer)</em></p>"


def details_table(response: QwenResponse) -> str:
    rows = "".join(
        f"<tr><th style='text-align:left'>{html.escape(label)}</th>"
        f"<td style='text-align:left'>{html.escape(value)}</td></tr>"
        for label, value in details_rows(response)
    )
    table = f'<table class="{CSS_CLASS}-details">{rows}</table>'
    if response.videos:
        from .video import frame_strips_html

        table += frame_strips_html(response)
    return table


def markdown_text(response: QwenResponse) -> str:
    """The `text/markdown` fallback: answer, then the thinking in a collapsed block."""
    parts = []
    warning = status_message(response)
    if warning:
        parts.append(f"> ⚠ {markdown_literal(warning)}")
    parts.append(inert_markdown(response.answer) or "*(no answer)*")
    if response.thinking:
        parts.append(
            f"<details><summary>{html.escape(thinking_label(response))}</summary>\n\n<pre>"
            f"{html.escape(response.thinking, quote=False)}</pre>\n\n</details>"
        )
    return "\n\n".join(parts)


def markdown_literal(text: str) -> str:
    """`text` as one line of Markdown that shows exactly as written: every character
    Markdown could read as syntax (links, images, code, HTML) is escaped."""
    one_line = " ".join(text.split())
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|~>])", r"\\\1",
                  html.escape(one_line, quote=False))


def plain_text(response: QwenResponse) -> str:
    """A summary for consoles and tools: the start of the thinking and of the answer,
    the status and the counts (the HTML and Markdown hold the full texts)."""
    parts = []
    if response.thinking:
        parts.append("--- Thinking ---\n" + _clip(response.thinking))
    parts.append("--- Answer ---\n" + (_clip(response.answer) or "(no answer)"))
    warning = status_message(response)
    if warning:
        parts.append("! " + warning)
    usage = response.usage
    parts.append(
        f"[{response.model or '?'} | tokens: prompt {_n(usage.prompt_tokens)}, "
        f"completion {_n(usage.completion_tokens)}, reasoning "
        f"{_n(usage.reasoning_tokens)} | {format_seconds(response.elapsed)}]"
    )
    return "\n".join(parts)


def _clip(text: str) -> str:
    if len(text) <= PLAIN_TEXT_LIMIT:
        return text
    more = len(text) - PLAIN_TEXT_LIMIT
    return f"{text[:PLAIN_TEXT_LIMIT]}… ({more:,} more characters in the rich output)"


def output_metadata(response: QwenResponse) -> dict[str, Any]:
    """What a saved notebook keeps about the call (never a key or a header)."""
    return {
        "qwen_nb": {
            "model": response.model,
            "provider": response.provider,
            "usage": {k: v for k, v in response.usage.__dict__.items() if v is not None},
            "finish_reason": response.finish_reason,
            "request_id": response.request_id,
            "complete": response.complete,
        }
    }


def static_bundle(response: QwenResponse) -> tuple[dict[str, str], dict[str, Any]]:
    """(data, metadata) for display(raw=True) and `_repr_mimebundle_`."""
    data = {
        "text/html": tabs_html(response),
        "text/markdown": markdown_text(response),
        "text/plain": plain_text(response),
    }
    return data, output_metadata(response)
