"""Markdown -> safe HTML, parsed once per text: math as MathML, code highlighted, and
nothing in it that makes the browser fetch or run anything.

Raw HTML is off (tags show as text); links are limited to http(s), mailto and relative
ones and open in a new tab without a referrer; images from anywhere but a small
`data:image/...` URL become a visible link ("image: host/path") instead of an <img>, so a
prompt-injected model cannot exfiltrate data through an image URL.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .code import HIGHLIGHT_BUDGET, code_html, language_of
from .math import math_html
from .styles import CSS_CLASS

if TYPE_CHECKING:
    from markdown_it import MarkdownIt
    from markdown_it.rules_block import StateBlock
    from markdown_it.rules_inline import StateInline
    from markdown_it.token import Token

SAFE_SCHEMES = ("http:", "https:", "mailto:")
INLINE_IMAGE_TYPES = ("data:image/png;", "data:image/jpeg;", "data:image/gif;",
                      "data:image/webp;")
MAX_INLINE_IMAGE = 256 * 1024  # characters of a data: URL shown inline
_MAX_MATH = 20_000  # a \( or \[ with no closing delimiter this close is plain text
_MATH_UNSAFE = re.compile(r"[<\[\]`~]")
_SCHEME = re.compile(r"^\s*([a-zA-Z][a-zA-Z0-9+.-]*:)")


def safe_link(url: str) -> bool:
    """True for http(s), mailto and relative links (anchors, paths)."""
    scheme = _SCHEME.match(url)
    return scheme is None or scheme.group(1).lower() in SAFE_SCHEMES


def inline_image(url: str) -> bool:
    """A data: image small enough to show inline (it fetches nothing)."""
    return url.lower().startswith(INLINE_IMAGE_TYPES) and len(url) <= MAX_INLINE_IMAGE


def image_link_text(url: str) -> str:
    """What a remote image shows instead of itself: "image: host/path"."""
    parts = urlsplit(url.strip())
    where = (parts.netloc + parts.path) if parts.netloc else url.strip()
    return "image: " + (where[:80] + "…" if len(where) > 80 else where)


def markdown_html(text: str) -> str:
    """Markdown (with math and code) as HTML in which no tag of the input survives."""
    return _parsed(text)[0]


def parses_inert(text: str) -> bool:
    """True when `text` has no raw HTML, no link to an unsafe scheme and no image, read
    by a permissive CommonMark parser (raw HTML on, math read as plain text would be):
    then it is safe as Markdown as it stands."""
    return _parsed(text)[1]


@lru_cache(maxsize=8)
def _parsed(text: str) -> tuple[str, bool]:
    """One parse serves both the HTML and the verdict on the Markdown (cached: the live
    view's final frame and the static bundle render the same answer)."""
    md = _markdown()
    env = {"highlight_budget": HIGHLIGHT_BUDGET}
    tokens = md.parse(text, env)
    inert = tokens_inert(tokens)
    return md.renderer.render(tokens, md.options, env), inert


def tokens_inert(tokens: Sequence[Token]) -> bool:
    """No raw HTML, unsafe link or image among `tokens` (children included)."""
    from urllib.parse import unquote

    stack = list(tokens)
    while stack:
        token = stack.pop()
        if token.type in ("html_block", "html_inline", "image"):
            return False
        # A renderer without math reads inside the formula: it must hold nothing that
        # could open HTML, a link, a definition or a code fence there.
        if token.type.startswith("math") and _MATH_UNSAFE.search(token.content):
            return False
        href = token.attrGet("href")
        if href is not None and not safe_destination(unquote(str(href))):
            return False
        if token.children:
            stack.extend(token.children)
    return True


def safe_destination(text: str) -> bool:
    """Would a Markdown renderer (after entity decoding, with browsers ignoring control
    characters and whitespace) see a link to a safe scheme or a relative one?"""
    text = html.unescape(text.replace("&lt;", "<"))
    text = re.sub(r"[\x00-\x20\x7f<]+", "", text)
    text = text.replace("\\", "")
    return safe_link(text)


@lru_cache(maxsize=1)
def _markdown() -> MarkdownIt:
    from markdown_it import MarkdownIt
    from mdit_py_plugins.dollarmath import dollarmath_plugin

    # Raw HTML is tokenised (so the same parse can judge the Markdown fallback) but
    # rendered as text, and every link is judged when rendered: nothing of it is live.
    md = MarkdownIt("commonmark", {"html": True, "linkify": False, "typographer": False})
    md.enable(["table", "strikethrough"])
    md.use(dollarmath_plugin, allow_space=False, allow_digits=False, double_inline=True,
           allow_labels=False)
    md.inline.ruler.before("escape", "math_brackets", _bracket_math_inline)
    md.block.ruler.before("fence", "math_block_brackets", _bracket_math_block,
                          {"alt": ["paragraph", "reference", "blockquote", "list"]})
    md.core.ruler.push("qwen_nb_links", _neutralise_links)
    md.core.ruler.push("qwen_nb_joined", _join_container_parts)
    md.validateLink = lambda url: True  # judged per use: _neutralise_links, _image
    for name, display in (("math_inline", False), ("math_inline_double", True),
                          ("math_block", True), ("math_inline_bracket", False),
                          ("math_display_bracket", True), ("math_block_bracket", True)):
        md.add_render_rule(name, _math_rule(display))
    md.add_render_rule("fence", _fence)
    md.add_render_rule("code_block", _code_block)
    md.add_render_rule("image", _image)
    md.add_render_rule("link_open", _link_open)
    md.add_render_rule("html_block", _html_block)
    md.add_render_rule("html_inline", _html_inline)
    for name in _OMITTED_END_TAGS:
        md.add_render_rule(name, _omitted_end_tag)
    return md


def _math_rule(display: bool) -> Any:
    def render(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
        return math_html(tokens[idx].content, display=display) + ("\n" if tokens[idx].block
                                                                  else "")
    return render


def _bracket_math_inline(state: StateInline, silent: bool) -> bool:
    r"""`\(...\)` inline and `\[...\]` (display) inside a paragraph."""
    src, pos = state.src, state.pos
    if src[pos] != "\\" or pos + 1 >= state.posMax or src[pos + 1] not in "([":
        return False
    close = "\\)" if src[pos + 1] == "(" else "\\]"
    end = src.find(close, pos + 2, min(state.posMax, pos + 2 + _MAX_MATH))
    if end < 0 or not src[pos + 2 : end].strip():
        return False
    if not silent:
        name = "math_inline_bracket" if close == "\\)" else "math_display_bracket"
        token = state.push(name, "math", 0)
        token.content = src[pos + 2 : end]
        token.markup = src[pos : pos + 2]
    state.pos = end + 2
    return True


def _bracket_math_block(state: StateBlock, start: int, end: int, silent: bool) -> bool:
    r"""`\[` at the start of a line up to a line ending in `\]`: display math."""
    begin = state.bMarks[start] + state.tShift[start]
    if state.sCount[start] - state.blkIndent >= 4 or not state.src.startswith("\\[", begin):
        return False
    close = state.src.find("\\]", begin + 2, begin + 2 + _MAX_MATH)
    if close < 0:
        return False
    line = start
    while line < end and close > state.eMarks[line]:
        line += 1
    if line >= end or state.src[close + 2 : state.eMarks[line]].strip():
        return False  # \] is not the end of its line: leave it to the inline rule
    if not silent:
        token = state.push("math_block_bracket", "math", 0)
        token.block = True
        token.content = state.src[begin + 2 : close]
        token.markup = "\\["
        token.map = [start, line + 1]
    state.line = line + 1
    return True


def _neutralise_links(state: Any) -> None:
    """A link whose destination is data: (allowed through for images) becomes a span."""
    open_dead = False
    for block in state.tokens:
        for token in block.children or ():
            if token.type in ("link_open", "link_close"):
                if token.type == "link_open":
                    dead = not safe_destination(str(token.attrGet("href") or ""))
                    if dead:
                        token.attrs = {}
                        token.tag = "span"
                    open_dead = dead
                elif open_dead:
                    token.tag = "span"


# Parts of tables and lists: a line break between them shows nothing (whitespace between
# rows, cells or items is not drawn), so they are written on one line; the container's
# close keeps its line break, so each top-level block still starts a line of its own.
_JOINED_PARTS = frozenset({
    "table_open", "thead_open", "thead_close", "tbody_open", "tbody_close", "tr_open",
    "tr_close", "th_open", "th_close", "td_open", "td_close", "bullet_list_open",
    "ordered_list_open", "list_item_open", "list_item_close",
})


def _join_container_parts(state: Any) -> None:
    """No line break after the parts of a table or list: some 20 bytes a table."""
    for token in state.tokens:
        if token.type in _JOINED_PARTS:
            token.block = False


# End tags HTML lets a page leave out where they stand in a Markdown table or list (a
# cell ends at the next cell or at its row's end, a row at the next row or the section's
# end, the head at the body, the body at the table's end, an item at the next item or the
# list's end): every parser (browsers, Lab's sanitizer) builds the same tree; some 75
# bytes less a table.
_OMITTED_END_TAGS = ("th_close", "td_close", "tr_close", "thead_close", "tbody_close",
                     "list_item_close")


def _omitted_end_tag(self: Any, tokens: Sequence[Token], idx: int, options: Any,
                     env: Any) -> str:
    if tokens[idx].type == "thead_close" and (
            idx + 1 >= len(tokens) or tokens[idx + 1].type != "tbody_open"):
        return "</thead>"  # a head with no body after it keeps its end tag
    return ""


def _link_open(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    token = tokens[idx]
    if token.tag == "a" and _SCHEME.match(str(token.attrGet("href") or "")):
        token.attrSet("rel", "noreferrer")  # implies noopener (HTML standard)
        token.attrSet("referrerpolicy", "no-referrer")  # kept where a host rewrites rel
        token.attrSet("target", "_blank")
    return self.renderToken(tokens, idx, options, env)


def _html_block(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    return f"<p>{html.escape(tokens[idx].content.rstrip())}</p>\n"


def _html_inline(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    return html.escape(tokens[idx].content)


def _image(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    token = tokens[idx]
    src = str(token.attrGet("src") or "")
    alt = self.renderInlineAsText(token.children or [], options, env)
    if inline_image(src):
        return f'<img src="{html.escape(src)}" alt="{html.escape(alt)}">'
    if not src.lower().startswith(("http:", "https:")):
        return html.escape(alt or src)
    return remote_image_link(src, html.escape(alt))


def remote_image_link(url: str, title: str = "") -> str:
    """A remote image as a visible link that loads nothing until clicked (then in a new
    tab, without a referrer); `title` is already escaped."""
    title = f' title="{title}"' if title else ""
    return (f'<a class="{CSS_CLASS}-image-link" href="{html.escape(url)}" '
            f'rel="noreferrer" referrerpolicy="no-referrer" target="_blank"{title}>'
            f"{html.escape(image_link_text(url))}</a>")


def _fence(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    token = tokens[idx]
    return _budgeted_code(token.content, language_of(token.info), env)


def _code_block(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    return _budgeted_code(tokens[idx].content, "", env)


def _budgeted_code(code: str, language: str, env: dict) -> str:
    budget = env.get("highlight_budget", HIGHLIGHT_BUDGET)
    highlight = len(code) <= budget
    if highlight and language:
        env["highlight_budget"] = budget - len(code)
    return code_html(code.removesuffix("\n"), language, highlight=highlight)
