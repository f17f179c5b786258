"""Fenced code blocks: Pygments tokens as short CSS classes (Pygments' own names), coloured
by the stylesheet from JupyterLab's editor variables, so light and dark themes both read.

The markup is stable for the live front end to add a Copy button to:
`<div class="qwen-nb-code" data-lang="python"><div class="qwen-nb-code-label">python</div>
<pre><code>...</code></pre></div>`.
"""

from __future__ import annotations

import html
import re
from functools import lru_cache
from typing import Any

from .styles import CODE_CLASSES, CSS_CLASS

# Lexing is the slow part of rendering (Pygments' Python lexer reads about 0.3 MB/s, a
# third of markdown-it's pace); past this much code in one answer (some 800 lines),
# further blocks are shown plain, so a huge answer still finishes quickly.
HIGHLIGHT_BUDGET = 32 * 1024
_LANGUAGE = re.compile(r"[A-Za-z0-9_+#.-]{1,32}")


def language_of(info: str) -> str:
    """The language named by a fence's info string ("python", "c++"), or ""."""
    first = info.strip().split(maxsplit=1)[0] if info.strip() else ""
    first = first.removeprefix("{").removesuffix("}")
    return first.lower() if _LANGUAGE.fullmatch(first) else ""


def code_html(code: str, language: str = "", *, highlight: bool = True) -> str:
    """One code block: its language label and the code, highlighted when Pygments knows
    the language (never guessed: a guess is slow and often wrong)."""
    body = _highlighted(code, language) if highlight and language else None
    if body is None:
        body = html.escape(code, quote=False)
    label = html.escape(language or "text")
    return (
        f'<div class="{CSS_CLASS}-code" data-lang="{label}">'
        f'<div class="{CSS_CLASS}-code-label">{label}</div>'
        f"<pre><code>{body}</code></pre></div>\n"
    )


def _highlighted(code: str, language: str) -> str | None:
    lexer = _lexer(language)
    if lexer is None:
        return None
    pieces: list[str] = []
    current, run = "", []
    for token_type, value in lexer.get_tokens(code):
        css = _css_class(token_type)
        if css != current and run:
            pieces.append(_span(current, "".join(run)))
            run = []
        current = css
        run.append(value)
    if run:
        pieces.append(_span(current, "".join(run)))
    text = "".join(pieces)
    # Pygments ends its output with a newline the block did not have.
    return text[:-1] if text.endswith("\n") and not code.endswith("\n") else text


def _span(css: str, text: str) -> str:
    escaped = html.escape(text, quote=False)
    return f'<span class="{css}">{escaped}</span>' if css else escaped


@lru_cache(maxsize=64)
def _lexer(language: str) -> Any:
    from pygments.lexers import get_lexer_by_name
    from pygments.util import ClassNotFound

    try:
        return get_lexer_by_name(language, stripnl=False, ensurenl=False)
    except ClassNotFound:
        return None


@lru_cache(maxsize=512)
def _css_class(token_type: Any) -> str:
    """Pygments' short class for the nearest coloured ancestor type; "" for plain text
    (names, spaces, punctuation get no span, which halves the markup)."""
    from pygments.token import STANDARD_TYPES

    while token_type is not None:
        css = STANDARD_TYPES.get(token_type)
        if css in CODE_CLASSES:
            return css
        token_type = token_type.parent
    return ""
