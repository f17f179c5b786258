"""Find the JSON in a model's answer: fenced or bare, whole or cut at the token limit.

Pure standard library. Nothing here raises on bad input: a caller gets the value found
(or None) and notes that say what was recovered or why nothing was.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

_FENCE_OPEN = re.compile(r"```[ \t]*(?:json[c5]?|JSON)?[ \t]*\n", re.IGNORECASE)
_FENCE_CLOSE = re.compile(r"\n?[ \t]*```")
_DECODER = json.JSONDecoder()
# Truncation repair tries this many cut points, the latest first...
_MAX_REPAIR_TRIES = 64
# ...from at most this many starting brackets (prose full of brackets stays linear).
_MAX_REPAIRS = 3


@dataclass(frozen=True)
class Found:
    """A JSON value found in text; `truncated` when it was repaired from a cut-off tail."""

    value: Any
    start: int
    end: int
    truncated: bool = False
    notes: tuple[str, ...] = ()


def find_json(text: str) -> Found | None:
    """The first JSON object or array in `text` (a fenced block first), or None.

    A value cut off at the end of the text (the token limit) is repaired by keeping what
    is complete: whole list items, whole key/value pairs.
    """
    for start, stop in _fenced_blocks(text):
        found = _first_value(text, start, stop)
        if found is not None:
            return found
    return _first_value(text, 0, len(text))


def find_all_json(text: str) -> list[Found]:
    """Every top-level JSON object or array in `text`, in order (fences and bare)."""
    found: list[Found] = []
    position = 0
    while position < len(text):
        value = _first_value(text, position, len(text))
        if value is None:
            break
        found.append(value)
        position = max(value.end, position + 1)
    return found


def _fenced_blocks(text: str) -> list[tuple[int, int]]:
    blocks = []
    for opening in _FENCE_OPEN.finditer(text):
        start = opening.end()
        closing = _FENCE_CLOSE.search(text, start)
        blocks.append((start, closing.start() if closing else len(text)))
    return blocks


def _first_value(text: str, start: int, stop: int) -> Found | None:
    position = start
    repairs_left = _MAX_REPAIRS
    while True:
        position = _next_opening(text, position, stop)
        if position < 0:
            return None
        try:
            value, end = _DECODER.raw_decode(text, position)
        except RecursionError:
            return None  # nested thousands deep: not an answer anyone can use
        except json.JSONDecodeError:
            if repairs_left:
                repairs_left -= 1
                repaired = repair_truncated(text[position:stop])
                if repaired is not None:
                    return Found(
                        repaired[0], position, stop, truncated=True, notes=(repaired[1],)
                    )
            position += 1
            continue
        if end <= stop and isinstance(value, (dict, list)):
            return Found(value, position, end)
        position += 1


def _next_opening(text: str, position: int, stop: int) -> int:
    brace = text.find("{", position, stop)
    bracket = text.find("[", position, stop)
    candidates = [p for p in (brace, bracket) if p >= 0]
    return min(candidates) if candidates else -1


def repair_truncated(text: str) -> tuple[Any, str] | None:
    """A JSON array/object cut off mid-way -> (the complete part, a note), or None.

    Cuts back to the last point where an item of the outer array/object had just ended
    (before a comma) and closes the bracket; failing that, the last such point at any depth.
    """
    cuts: list[tuple[int, str]] = []  # (cut position, closers needed)
    stack: list[str] = []
    in_string = escaped = False
    for index, char in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
            continue
        if char == '"':
            in_string = True
        elif char in "[{":
            stack.append("]" if char == "[" else "}")
            cuts.append((index + 1, "".join(reversed(stack))))
        elif char in "]}":
            if not stack:
                return None
            stack.pop()
            if not stack:
                return None  # complete: not a truncation
            cuts.append((index + 1, "".join(reversed(stack))))
        elif char == ",":
            cuts.append((index, "".join(reversed(stack))))
    if not stack:
        return None
    # Whole items of the outer container first (a half-written box is no box), then the
    # latest cut at any depth.
    recent = cuts[-_MAX_REPAIR_TRIES:]
    ordered = [cut for cut in reversed(recent) if len(cut[1]) == 1]
    ordered += [cut for cut in reversed(recent) if len(cut[1]) > 1]
    for position, closers in ordered:
        candidate = text[:position].rstrip().rstrip(",") + closers
        try:
            value = json.loads(candidate)
        except (json.JSONDecodeError, RecursionError):
            continue
        if not value:
            continue  # "[" or "{" followed by nothing usable (maybe prose, not JSON)
        dropped = len(text) - position
        return value, f"the JSON was cut off; kept what was complete ({dropped} characters dropped)"
    return None
