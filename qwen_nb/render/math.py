"""TeX -> MathML in Python, so math shows wherever HTML does (saved outputs, nbconvert
HTML opened offline) without MathJax or a CDN; browsers render MathML natively.

latex2mathml builds an ElementTree; it is re-serialised here through an allowlist of
MathML element and attribute names, so model-written TeX (`\\href`, `\\style`, text
holding `<script>`) cannot add links, handlers, styles or HTML to the page.
"""

from __future__ import annotations

import html
from functools import lru_cache
from typing import Any

from .styles import CSS_CLASS

# MathML Core plus the presentation elements latex2mathml emits.
MATHML_ELEMENTS = frozenset({
    "math", "annotation", "semantics", "maction", "menclose", "merror", "mfenced", "mfrac",
    "mi", "mmultiscripts", "mn", "mo", "mover", "mpadded", "mphantom", "mprescripts", "mroot",
    "mrow", "ms", "mspace", "msqrt", "mstyle", "msub", "msubsup", "msup", "mtable", "mtd",
    "mtext", "mtr", "munder", "munderover", "none",
})
# Layout attributes only: nothing that links (href), runs (on*), styles (style, class)
# or loads (src).
MATHML_ATTRIBUTES = frozenset({
    "accent", "accentunder", "align", "close", "columnalign", "columnlines", "columnspacing",
    "columnspan", "depth", "display", "displaystyle", "fence", "form", "frame", "height",
    "largeop", "linethickness", "lspace", "mathcolor", "mathsize", "mathvariant", "maxsize",
    "minsize", "movablelimits", "notation", "open", "rowalign", "rowlines", "rowspacing",
    "rowspan", "rspace", "scriptlevel", "separator", "separators", "stretchy", "symmetric",
    "voffset", "width",
})
_MAX_TEX = 20_000  # characters: longer "formulas" are shown as TeX source


def math_html(tex: str, *, display: bool) -> str:
    """MathML for `tex`, or the escaped TeX in a `qwen-nb-tex` element when it cannot be
    converted."""
    return _math_html(tex, display)


@lru_cache(maxsize=4096)
def _math_html(tex: str, display: bool) -> str:
    try:
        mathml = _to_mathml(tex, display)
    except Exception:  # latex2mathml raises many kinds on malformed TeX
        mathml = None
    if mathml is None:
        tag = "div" if display else "span"
        delimiters = ("\\[", "\\]") if display else ("\\(", "\\)")
        return (f'<{tag} class="{CSS_CLASS}-tex">{delimiters[0]}{html.escape(tex)}'
                f"{delimiters[1]}</{tag}>")
    return mathml


def _to_mathml(tex: str, display: bool) -> str | None:
    if not tex.strip() or len(tex) > _MAX_TEX:
        return None
    from latex2mathml.converter import convert_to_element

    root = convert_to_element(tex.strip(), display="block" if display else "inline")
    children = list(root)
    if len(children) == 1 and _name(children[0]) == "mrow":  # latex2mathml's outer group
        children = list(children[0])
    # <math> lays its children out as a row itself, so the outer group needs no <mrow>.
    # No <semantics>/<annotation> with the TeX: browsers copy the drawn glyphs, never the
    # annotation, so it bought nothing a person sees while doubling small formulas; the
    # TeX stays verbatim in the same output's text/markdown. No xmlns: the HTML parser
    # puts <math> in the MathML namespace by itself; inline is the default display.
    body = "".join(_serialise(child) for child in children)
    mode = ' display="block"' if display else ""
    return f"<math{mode}>{body}</math>"


def _serialise(element: Any) -> str:
    """One element and its subtree, keeping only allowlisted names; text is escaped."""
    tag = _name(element)
    if tag == "mrow" and len(element) == 1 and not (element.text or "").strip():
        # A group of one is that one (latex2mathml wraps every argument): half the markup.
        return _serialise(element[0]) + _text(element.tail)
    text = _text(element.text)
    inner = text + "".join(_serialise(child) for child in element)
    tail = _text(element.tail)
    if tag not in MATHML_ELEMENTS or tag in ("math", "annotation", "semantics"):
        return inner + tail  # an unknown element's content stays, as text inside MathML
    attributes = "".join(
        f' {name}="{html.escape(str(value))}"'
        for name, value in element.attrib.items()
        if name in MATHML_ATTRIBUTES
    )
    return f"<{tag}{attributes}>{inner}</{tag}>{tail}"


def _name(element: Any) -> str:
    return str(element.tag).rsplit("}", 1)[-1]


def _text(value: str | None) -> str:
    # latex2mathml stores characters as "&#x...;" strings: decode, then escape for real.
    return html.escape(html.unescape(value), quote=False) if value else ""
