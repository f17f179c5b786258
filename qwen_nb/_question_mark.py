"""`%qwen What is in this street scene?` reaches the magic with its question mark.

IPython reads a line ending in `?` as a help request (`scene?` -> "Object `scene` not
found.") before it looks at magics. This cleanup transform, which IPython runs before its
help handling, turns such a `%qwen PROMPT?` line into the magic call itself. `%qwen?` and
`%qwen??` (no prompt) and every `%%qwen` cell are left to IPython: `%%qwen?` shows help,
and a `%%qwen` cell's text already reaches the magic as written.
"""

from __future__ import annotations

import re

# Indentation, `%qwen`, at least one space, then a prompt that is more than question marks.
_QWEN_LINE = re.compile(r"^([ \t]*)%qwen[ \t]+(.*[^?\s].*\?)[ \t]*(\r?\n?)$")


def keep_question_marks(lines: list[str]) -> list[str]:
    """IPython cleanup transform: `%qwen ...?` lines become run_line_magic calls."""
    if not lines or lines[0].lstrip().startswith("%%"):
        return lines  # a cell magic: IPython passes its text through untouched
    changed = list(lines)
    for index, line in enumerate(lines):
        match = _QWEN_LINE.match(line)
        if match is None:
            continue
        indent, prompt, end = match.groups()
        changed[index] = f"{indent}get_ipython().run_line_magic('qwen', {prompt!r}){end}"
    return changed


def register(shell: object) -> None:
    """Add the transform to a shell once (%load_ext twice must not add it twice)."""
    transforms = getattr(shell, "input_transformers_cleanup", None)
    if transforms is not None and keep_question_marks not in transforms:
        transforms.append(keep_question_marks)


def unregister(shell: object) -> None:
    transforms = getattr(shell, "input_transformers_cleanup", None)
    while transforms is not None and keep_question_marks in transforms:
        transforms.remove(keep_question_marks)
