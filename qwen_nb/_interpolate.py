"""`{name}` references in a cell: images become image parts where written, values text.

Pure: the namespace and the image test are passed in. Only a reference whose root name
exists is replaced; every other brace (JSON, dicts, code, `{undefined}`, `{{undefined}}`)
stays exactly as written. `{{name}}` is the escape for a literal `{name}` where `name` exists.
Code is literal: inside inline code spans and fenced code blocks (CommonMark's rules for
where they start and end) nothing is replaced, so pasted code such as
`print(f"{os.environ}")` is sent as written, never with the environment filled in.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from ._errors import InputError

_REF = r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*|\[-?\d+\])*"
_TOKEN = re.compile(r"\{\{(" + _REF + r")\}\}|\{(" + _REF + r")\}")
_STEP = re.compile(r"\.([A-Za-z_]\w*)|\[(-?\d+)\]")
_FENCE_OPEN = re.compile(r" {0,3}(`{3,}|~{3,})(.*)")
_FENCE_CLOSE = re.compile(r" {0,3}(`{3,}|~{3,})[ \t]*\r?\n?$")
_BACKTICKS = re.compile(r"`+")


def code_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each fenced code block and inline code span in `text`, in order.

    A fence is three or more backticks or tildes, indented at most three spaces; it ends at
    a line of the same character, at least as long, or at the end of the text. An inline
    span opens with a run of backticks and ends at the next run of the same length; a run
    with no match is literal text."""
    spans: list[tuple[int, int]] = []
    prose_start = 0
    offset = 0
    fence = ""
    fence_start = 0
    for line in text.splitlines(keepends=True):
        if not fence:
            opened = _FENCE_OPEN.match(line)
            # A backtick fence's info string may not hold backticks (CommonMark).
            if opened and not (opened.group(1)[0] == "`" and "`" in opened.group(2)):
                spans += _inline_spans(text, prose_start, offset)
                fence, fence_start = opened.group(1), offset
        else:
            closed = _FENCE_CLOSE.match(line)
            if closed and closed.group(1)[0] == fence[0] and len(closed.group(1)) >= len(fence):
                spans.append((fence_start, offset + len(line)))
                fence, prose_start = "", offset + len(line)
        offset += len(line)
    if fence:
        spans.append((fence_start, len(text)))
    else:
        spans += _inline_spans(text, prose_start, len(text))
    return spans


def _inline_spans(text: str, start: int, end: int) -> list[tuple[int, int]]:
    runs = list(_BACKTICKS.finditer(text, start, end))
    spans: list[tuple[int, int]] = []
    index = 0
    while index < len(runs):
        opening = runs[index]
        run_start = opening.start()
        if run_start > 0 and text[run_start - 1] == "\\":  # an escaped backtick
            run_start += 1
        width = opening.end() - run_start
        closing = next((j for j in range(index + 1, len(runs))
                        if runs[j].end() - runs[j].start() == width), None)
        if width and closing is not None:
            spans.append((run_start, runs[closing].end()))
            index = closing + 1
        else:
            index += 1
    return spans


def resolve(ref: str, namespace: Mapping[str, Any]) -> Any:
    """Evaluate `name.attr[0]` against the namespace; raises InputError on a bad step."""
    root = re.match(r"[A-Za-z_]\w*", ref)
    assert root is not None
    value = namespace[root.group(0)]
    for step in _STEP.finditer(ref, root.end()):
        attr, index = step.groups()
        try:
            value = getattr(value, attr) if attr else value[int(index)]
        except Exception as exc:
            raise InputError(
                f"{{{ref}}} in the cell could not be evaluated: {type(exc).__name__}: {exc}. "
                "Fix the reference, or write {{" + ref + "}} for literal braces."
            ) from None
    return value


def split_references(
    text: str, namespace: Mapping[str, Any], is_image: Callable[[Any], bool]
) -> list[str | tuple[str, Any]]:
    """Cell text -> text pieces and (expression, image value) pairs, in written order."""
    parts: list[str | tuple[str, Any]] = []
    buffer: list[str] = []
    last = 0
    code = code_spans(text) if "`" in text or "~~~" in text else []
    for match in _TOKEN.finditer(text):
        while code and code[0][1] <= match.start():
            code.pop(0)
        if code and code[0][0] <= match.start():
            continue  # inside code: sent as written (it stays in the text between matches)
        escaped, ref = match.groups()
        buffer.append(text[last : match.start()])
        last = match.end()
        if escaped is not None:
            # `{{name}}` is the escape only where `{name}` would be a reference; a template
            # such as `{{title}}` with no `title` defined is sent exactly as written.
            name = re.match(r"[A-Za-z_]\w*", escaped)
            defined = name is not None and name.group(0) in namespace
            buffer.append("{" + escaped + "}" if defined else match.group(0))
            continue
        root = re.match(r"[A-Za-z_]\w*", ref)
        if root is None or root.group(0) not in namespace:
            buffer.append(match.group(0))  # not a reference: leave as written
            continue
        value = resolve(ref, namespace)
        if is_image(value):
            parts.append("".join(buffer))
            buffer = []
            parts.append((ref, value))
        else:
            buffer.append(str(value))
    buffer.append(text[last:])
    parts.append("".join(buffer))
    return [p for p in parts if p != ""]
