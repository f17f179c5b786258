"""Markdown that stays inert where a renderer allows raw HTML (the `text/markdown`
fallback: GitHub, nbviewer, Markdown exports): `<` outside code escaped, links to unsafe
schemes broken, remote images turned into links, so nothing runs and nothing is fetched.
"""

from __future__ import annotations

import re

from .markdown import image_link_text, parses_inert, safe_destination

_FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
_INLINE_CODE = re.compile(r"(`+)(.+?)\1")
_LINK_OPEN = re.compile(r"\]\(")
_DEFINITION = re.compile(r"^(\s{0,3})\[([^\]]*)\]:(.*)$")
# ![alt](https://host/path ...): rewritten to a link reading "image: host/path".
_REMOTE_IMAGE = re.compile(r"!\[([^\[\]\n]*)\]\(\s*<?(https?://[^\s<>()]+)>?")
_IMAGE_START = re.compile(r"!\[")


def inert_markdown(text: str) -> str:
    """Markdown with `<` outside code escaped, links to unsafe schemes (javascript:,
    data:, ...) broken and images made into links, so a renderer that allows HTML shows
    them as text and fetches nothing. Text that is inert already is returned as is."""
    if parses_inert(text):
        return text  # the parse markdown_html made (and cached) says so
    candidate = _escape_outside_code(text)
    # The line-by-line guess at what is code can disagree with a real CommonMark parser
    # (unmatched backtick runs, a backtick in a fence's info string, a fence in a list
    # item that ends at the next unindented line, tabs...), and where it does, raw HTML
    # would be live. So check with a real parser, and send the text verbatim in a code
    # block when the guess was wrong.
    return candidate if parses_inert(candidate) else _literal_block(text)


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


def _inert_text(segment: str, following: str) -> str:
    """Escape `<`, turn images into links, and break `](dest` where dest is unsafe."""
    segment = segment.replace("<", "&lt;")
    segment = _REMOTE_IMAGE.sub(
        lambda m: f"[{_label(image_link_text(m.group(2)))}]({m.group(2)}", segment)

    # Any other image (data:, reference-style, odd syntax) loses its "!": a link or text.
    segment = _IMAGE_START.sub("\\\\![", segment)

    def defuse(match: re.Match[str]) -> str:
        destination = (segment[match.end() :] + "\n" + following)[:200]
        return match.group(0) if safe_destination(destination) else "]\\("

    return _LINK_OPEN.sub(defuse, segment)


def _label(text: str) -> str:
    return re.sub(r"([\\\[\]*_`])", r"\\\1", text)


def _defuse_definition(line: str) -> str:
    """`[label]: javascript:...` (a reference definition) loses its meaning."""
    match = _DEFINITION.match(line)
    if match and not safe_destination(match.group(3)):
        return f"{match.group(1)}\\[{match.group(2)}]:{match.group(3)}"
    return line
