"""One renderer for every view: Markdown to safe HTML, and the static output bundle.

Model output is untrusted: Markdown is rendered with raw HTML off (tags show as text),
links are limited to safe schemes, and the thinking trace is escaped text. The static
bundle is what a saved notebook keeps: tabs made of HTML and CSS alone that fall back to
stacked sections where styles or inputs are stripped (GitHub, sanitizers), plus
`text/markdown` and `text/plain`.
"""

from __future__ import annotations

import hashlib
import html
import itertools
import re
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from markdown_it import MarkdownIt

    from .._types import QwenResponse

CSS_CLASS = "qwen-nb"


@lru_cache(maxsize=1)
def _markdown() -> MarkdownIt:
    from markdown_it import MarkdownIt
    from mdit_py_plugins.dollarmath import dollarmath_plugin

    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable(["table", "strikethrough"])
    # Math is kept as TeX between \( \) / \[ \] so the notebook's MathJax typesets it, and
    # Markdown never turns the underscores of x_1 into emphasis.
    md.use(
        dollarmath_plugin,
        allow_space=True,
        double_inline=True,
        renderer=lambda content, opts: html.escape(content),
    )
    for rule, template in _MATH_TEMPLATES.items():
        md.add_render_rule(rule, _math_rule(template))
    md.validateLink = _safe_link
    return md


# TeX stays between \\( \\) / \\[ \\] (escaped) for the notebook's MathJax to typeset.
_MATH_TEMPLATES = {
    "math_inline": '<span class="math">\\({}\\)</span>',
    "math_inline_double": '<div class="math">\\[{}\\]</div>',
    "math_block": '<div class="math">\\[{}\\]</div>\n',
    "math_block_label": '<div class="math">\\[{}\\]</div>\n',
}


def _math_rule(template: str) -> Any:
    return lambda self, tokens, idx, options, env: template.format(
        html.escape(tokens[idx].content))


_SAFE_SCHEMES = ("http:", "https:", "mailto:")


def _safe_link(url: str) -> bool:
    scheme = re.match(r"^\s*([a-zA-Z][a-zA-Z0-9+.-]*:)", url)
    if scheme is None:
        return True  # relative links and anchors
    return scheme.group(1).lower() in _SAFE_SCHEMES


def markdown_html(text: str) -> str:
    """Markdown (with math and code) as HTML in which no tag of the input survives."""
    return _markdown().render(text)


def thinking_html(text: str) -> str:
    return f'<pre class="{CSS_CLASS}-trace">{html.escape(text)}</pre>'


def format_seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


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
        rows.append(("Status", f"incomplete: {response.error or 'stopped'}"))
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


# Colours come from JupyterLab's theme variables (so dark themes stay readable), with
# light fallbacks for nbconvert, nbviewer and other hosts.
_BORDER = "var(--jp-border-color1,#d0d7de)"
_MUTED = "var(--jp-content-font-color2,#57606a)"
_STYLE = f"""<style>
.{CSS_CLASS}{{display:flex;flex-wrap:wrap;border:1px solid {_BORDER};border-radius:6px;
font-family:inherit;margin:2px 0}}
.{CSS_CLASS}>input.{CSS_CLASS}-tab{{position:absolute;opacity:0;width:1px;height:1px}}
.{CSS_CLASS}>label{{order:0;padding:4px 14px;cursor:pointer;border-bottom:2px solid transparent;
color:{_MUTED};font-weight:600}}
.{CSS_CLASS}>input.{CSS_CLASS}-tab:checked+label{{border-bottom-color:var(--jp-brand-color1,#fd8c73);
color:var(--jp-content-font-color1,#1f2328)}}
.{CSS_CLASS}>input.{CSS_CLASS}-tab:focus-visible+label{{
outline:2px solid var(--jp-brand-color1,#0969da)}}
.{CSS_CLASS}>.{CSS_CLASS}-panel{{order:1;width:100%;padding:6px 12px;
border-top:1px solid {_BORDER};box-sizing:border-box;overflow-x:auto}}
.{CSS_CLASS}>input.{CSS_CLASS}-tab:not(:checked)+label+.{CSS_CLASS}-panel{{display:none}}
.{CSS_CLASS}>.{CSS_CLASS}-warning{{order:2;width:100%;padding:4px 12px;
background:var(--jp-warn-color3,#fff8c5)}}
.{CSS_CLASS}-trace{{white-space:pre-wrap;font-size:0.9em;color:{_MUTED};margin:0}}
.{CSS_CLASS}-answer pre{{background:var(--jp-layout-color2,#f6f8fa);padding:8px 10px;
border-radius:4px;overflow-x:auto}}
.{CSS_CLASS} .{CSS_CLASS}-heading{{display:none}}
</style>"""


_shown = itertools.count(1)


def _tab_group_id(response: QwenResponse) -> str:
    """An id for one output's radio group: stable when a notebook is re-run top to bottom
    (so saved notebooks diff cleanly), unique among the outputs of one kernel session."""
    seed = f"{next(_shown)}|{response.request_id}|{response.answer}|{response.thinking}"
    return hashlib.sha256(seed.encode()).hexdigest()[:10]


def tabs_html(response: QwenResponse) -> str:
    """The static tabbed view: CSS-only tabs, stacked sections where CSS is stripped."""
    uid = _tab_group_id(response)
    answer_html = _answer_body(response)
    if response.videos:
        from .video import timeline_html

        answer_html += timeline_html(response)
    panels = [
        ("answer", "Answer", answer_html),
        (
            "thinking",
            "Thinking",
            thinking_html(response.thinking)
            if response.thinking
            else "<p><em>(no thinking trace)</em></p>",
        ),
        ("details", "Details", details_table(response)),
    ]
    pieces = [_STYLE, f'<div class="{CSS_CLASS}" data-qwen-nb="static">']
    for index, (key, title, body) in enumerate(panels):
        checked = " checked" if index == 0 else ""
        pieces.append(
            f'<input type="radio" class="{CSS_CLASS}-tab" name="{CSS_CLASS}-{uid}" '
            f'id="{CSS_CLASS}-{uid}-{key}"{checked}>'
            f'<label for="{CSS_CLASS}-{uid}-{key}">{title}</label>'
            f'<div class="{CSS_CLASS}-panel {CSS_CLASS}-{key}">'
            f'<h4 class="{CSS_CLASS}-heading">{title}</h4>{body}</div>'
        )
    warning = status_message(response)
    if warning:
        pieces.append(f'<div class="{CSS_CLASS}-warning">⚠ {html.escape(warning)}</div>')
    pieces.append("</div>")
    return "".join(pieces)


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


_FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
_INLINE_CODE = re.compile(r"(`+)(.+?)\1")


def inert_markdown(text: str) -> str:
    """Markdown with `<` outside code escaped and links to unsafe schemes (javascript:,
    data:, ...) broken, so a renderer that allows HTML shows them as text."""
    candidate = _escape_outside_code(text)
    # The line-by-line guess at what is code can disagree with a real CommonMark parser
    # (unmatched backtick runs, a backtick in a fence's info string, a fence in a list
    # item that ends at the next unindented line, tabs...), and where it does, raw HTML
    # would be live. So check with a real parser, and send the text verbatim in a code
    # block when the guess was wrong.
    return candidate if _parses_inert(candidate) else _literal_block(text)


def _parses_inert(markdown: str) -> bool:
    """No raw HTML and no link to an unsafe scheme when a permissive CommonMark renderer
    (raw HTML on, no link validation) parses `markdown`."""
    from urllib.parse import unquote

    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
    md.validateLink = lambda url: True  # judge every link below, as a lax renderer would
    stack = md.parse(markdown)
    while stack:
        token = stack.pop()
        if token.type in ("html_block", "html_inline"):
            return False
        for name in ("href", "src"):
            url = token.attrGet(name)
            if url is not None and not _safe_destination(unquote(str(url))):
                return False
        stack.extend(token.children or ())
    return True


def _literal_block(text: str) -> str:
    """`text` as a fenced code block that no line of it can close: shown as written."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}\n{text}\n{fence}"


def _escape_outside_code(text: str) -> str:
    out: list[str] = []
    fence: str | None = None
    lines = text.split("\n")
    for number, line in enumerate(lines):
        match = _FENCE.match(line)
        if fence is not None:
            if match and match.group(1)[0] == fence[0] and len(match.group(1)) >= len(fence):
                fence = None
            out.append(line)
            continue
        if match:
            fence = match.group(1)
            out.append(line)
            continue
        after = "\n".join(lines[number + 1 : number + 3])  # a destination may wrap
        pieces, last = [], 0
        for code in _INLINE_CODE.finditer(line):
            pieces.append(_inert_text(line[last : code.start()], line[code.start() :] + after))
            pieces.append(code.group(0))
            last = code.end()
        pieces.append(_inert_text(line[last:], after))
        out.append(_defuse_definition("".join(pieces)))
    return "\n".join(out)


_LINK_OPEN = re.compile(r"\]\(")
_DEFINITION = re.compile(r"^(\s{0,3})\[([^\]]*)\]:(.*)$")


def _inert_text(segment: str, following: str) -> str:
    """Escape `<` and break `](dest` where dest is not a safe link."""
    segment = segment.replace("<", "&lt;")

    def defuse(match: re.Match[str]) -> str:
        destination = (segment[match.end() :] + "\n" + following)[:200]
        return match.group(0) if _safe_destination(destination) else "]\\("

    return _LINK_OPEN.sub(defuse, segment)


def _defuse_definition(line: str) -> str:
    """`[label]: javascript:...` (a reference definition) loses its meaning."""
    match = _DEFINITION.match(line)
    if match and not _safe_destination(match.group(3)):
        return f"{match.group(1)}\\[{match.group(2)}]:{match.group(3)}"
    return line


def _safe_destination(text: str) -> bool:
    """Would a Markdown renderer (after entity decoding, with browsers ignoring control
    characters and whitespace) see a link to a safe scheme or a relative one?"""
    text = html.unescape(text.replace("&lt;", "<"))
    text = re.sub(r"[\x00-\x20\x7f<]+", "", text)
    text = text.replace("\\", "")
    return _safe_link(text)


def markdown_text(response: QwenResponse) -> str:
    """The `text/markdown` fallback: answer, then the thinking in a collapsed block."""
    parts = [inert_markdown(response.answer) or "*(no answer)*"]
    if response.thinking:
        parts.append(
            f"<details><summary>Thinking</summary>\n\n<pre>"
            f"{html.escape(response.thinking)}</pre>\n\n</details>"
        )
    warning = status_message(response)
    if warning:
        parts.append(f"> ⚠ {inert_markdown(html.escape(warning, quote=False))}")
    return "\n\n".join(parts)


def plain_text(response: QwenResponse) -> str:
    parts = []
    if response.thinking:
        parts.append("--- Thinking ---\n" + response.thinking)
    parts.append("--- Answer ---\n" + (response.answer or "(no answer)"))
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
