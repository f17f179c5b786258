"""Server text made inert for a terminal: control characters and ANSI escapes shown, not run.

A model or a hostile server can send `ESC[2J`, `ESC]52;...` (write the clipboard) or a bare
carriage return that overwrites the line before it. Terminal IPython prints such text, so
each control character is shown as its escape (`\\x1b`, `\\r`), the way `repr` writes it.
Line breaks and tabs stay: they are how text is laid out.
"""

from __future__ import annotations

import re

# C0 controls but tab and line feed, DEL, C1 controls (CSI is \x9b), and the Unicode
# bidirectional overrides that make text read differently from what it is.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def inert(text: str) -> str:
    """`text` safe to print to a terminal: every control character written as its escape."""
    if not text:
        return text
    text = text.replace("\r\n", "\n")
    return _CONTROL.sub(lambda match: repr(match.group(0))[1:-1], text)
