"""Moments and spans an answer locates in a video, parsed from JSON or from prose.

Qwen3-VL answers temporal grounding questions with JSON such as
`[{"start": "00:12", "end": "00:18", "event": "..."}]`, with `{"time": 3.5, "bbox_2d":
[...]}` when it also points at a region, or in prose ("from 12.5 s to 18 s", "at 00:15").
Pure and standard library only: a table of answers tests it. Times stay as the model
wrote them; `TimelineEvent.mapped` converts them to the source's seconds.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

_START_KEYS = ("start", "start_time", "begin", "from", "start_timestamp")
_END_KEYS = ("end", "end_time", "to", "end_timestamp")
_POINT_KEYS = ("time", "timestamp", "t", "at", "moment", "second", "seconds")
_SPAN_KEYS = ("timestamps", "span", "segment", "time_range", "interval")
_LABEL_KEYS = ("event", "label", "description", "caption", "action", "text", "name", "object")
_BOX_KEYS = ("bbox_2d", "bbox", "box")
_LABEL_LIMIT = 120

_CLOCK = r"\d{1,2}:\d{2}(?::\d{2})?(?:[.,]\d+)?"
_SECONDS = r"\d+(?:\.\d+)?"
_UNIT = r"\s*(?:s|sec|secs|second|seconds)\b"
_TIME = rf"(?:{_CLOCK}|{_SECONDS}(?:{_UNIT})?)"
_RANGE = re.compile(
    rf"(?:\bfrom\s+|\bbetween\s+)?<?(?P<a>{_TIME})>?\s*(?:to|and|until|till|-|–|—)\s*"
    rf"<?(?P<b>{_TIME})>?",
    re.IGNORECASE,
)
_POINT = re.compile(
    rf"(?:\b(?:at|around|about)\s+(?P<a>{_CLOCK}|{_SECONDS}{_UNIT}))|<(?P<c>{_SECONDS})\s*"
    r"seconds?>",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class TimelineEvent:
    """A span (start..end) or a moment (end None), a label, and an optional box."""

    start: float
    end: float | None
    label: str
    bbox: tuple[float, float, float, float] | None = None

    def mapped(self, convert: Callable[[float], float]) -> TimelineEvent:
        """The same event with its times passed through `convert` (model -> source)."""
        return dataclasses.replace(
            self,
            start=round(convert(self.start), 3),
            end=None if self.end is None else round(convert(self.end), 3),
        )

    @property
    def middle(self) -> float:
        return self.start if self.end is None else (self.start + self.end) / 2


def parse_time(value: Any) -> float | None:
    """Seconds from 12, 12.5, "12.5", "12.5 s", "00:12", "1:02:03.5" or "<3.0 seconds>"."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) if value >= 0 and value == value and value != float("inf") else None
    if not isinstance(value, str):
        return None
    text = value.strip().strip("<>").strip().lower()
    clock = re.fullmatch(r"(?:(\d+):)?(\d{1,2}):(\d{2}(?:[.,]\d+)?)", text)
    if clock:
        hours, minutes, seconds = clock.groups()
        second = float(seconds.replace(",", "."))
        if second >= 60 or (hours is not None and int(minutes) >= 60):
            return None  # 12:75 is not a time
        return int(hours or 0) * 3600 + int(minutes) * 60 + second
    plain = re.fullmatch(rf"({_SECONDS})(?:{_UNIT})?", text)
    return float(plain.group(1)) if plain else None


def parse_events(answer: str) -> list[TimelineEvent]:
    """Every event the answer locates in time, sorted by start; JSON first, then prose
    outside the JSON."""
    events: list[TimelineEvent] = []
    prose: list[str] = []
    last = 0
    for start, end, value in _json_values(answer):
        prose.append(answer[last:start])
        last = end
        events.extend(_from_json(value, 0))
    prose.append(answer[last:])
    for piece in prose:
        for line in piece.splitlines():
            events.extend(_from_prose(line))
    unique: dict[tuple, TimelineEvent] = {}
    for event in events:
        unique.setdefault((event.start, event.end, event.label, event.bbox), event)
    return sorted(unique.values(), key=lambda e: (e.start, e.end if e.end is not None else -1))


# --- JSON ----------------------------------------------------------------------------


def _json_values(text: str) -> Iterator[tuple[int, int, Any]]:
    """(start, end, value) of each JSON object or array in the text (fenced or bare)."""
    decoder = json.JSONDecoder()
    index = 0
    while True:
        found = re.search(r"[\[{]", text[index:])
        if found is None:
            return
        start = index + found.start()
        try:
            value, end = decoder.raw_decode(text, start)
        except (ValueError, RecursionError):
            index = start + 1
            continue
        if isinstance(value, (dict, list)) and value:
            yield start, end, value
        index = end


def _from_json(value: Any, depth: int) -> list[TimelineEvent]:
    if depth > 6:
        return []
    if isinstance(value, list):
        return [event for item in value for event in _from_json(item, depth + 1)]
    if not isinstance(value, dict):
        return []
    event = _event_from_object(value)
    if event is not None:
        return [event]
    return [event for item in value.values() for event in _from_json(item, depth + 1)]


def _event_from_object(item: dict) -> TimelineEvent | None:
    lowered = {str(k).lower(): v for k, v in item.items()}
    start = _first_time(lowered, _START_KEYS)
    end = _first_time(lowered, _END_KEYS)
    if start is None:
        span = next((lowered[k] for k in _SPAN_KEYS + _POINT_KEYS if isinstance(
            lowered.get(k), list) and len(lowered[k]) == 2), None)
        if span is not None:
            start, end = parse_time(span[0]), parse_time(span[1])
        else:
            start, end = _first_time(lowered, _POINT_KEYS), None
    if start is None:
        return None
    if end is not None and end < start:
        start, end = end, start
    if end == start:
        end = None
    label = next((str(lowered[k]) for k in _LABEL_KEYS if isinstance(lowered.get(k), (
        str, int, float)) and not isinstance(lowered.get(k), bool)), "")
    return TimelineEvent(start, end, _clip(label), _box(lowered))


def _first_time(item: dict, keys: tuple[str, ...]) -> float | None:
    for key in keys:
        if key in item:
            moment = parse_time(item[key])
            if moment is not None:
                return moment
    return None


def _box(item: dict) -> tuple[float, float, float, float] | None:
    for key in _BOX_KEYS:
        box = item.get(key)
        if (isinstance(box, list) and len(box) == 4 and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in box)):
            x1, y1, x2, y2 = (float(v) for v in box)
            return (min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2))
    return None


# --- prose ---------------------------------------------------------------------------


def _from_prose(line: str) -> list[TimelineEvent]:
    events: list[TimelineEvent] = []
    taken: list[tuple[int, int]] = []
    for match in _RANGE.finditer(line):
        first, second = match.group("a"), match.group("b")
        # A bare "3 - 5" is arithmetic or a list, not time: a unit or a clock must say so.
        if not any(re.search(rf":|{_UNIT}", part, re.IGNORECASE) for part in (first, second)):
            continue
        start, end = parse_time(first), parse_time(second)
        if start is None or end is None:
            continue
        if end < start:
            continue
        taken.append(match.span())
        events.append(TimelineEvent(start, end, _label(line, match.span())))
    for match in _POINT.finditer(line):
        if any(a <= match.start() < b for a, b in taken):
            continue
        moment = parse_time(match.group("a") or match.group("c"))
        if moment is not None:
            events.append(TimelineEvent(moment, None, _label(line, match.span())))
    return events


def _label(line: str, span: tuple[int, int]) -> str:
    text = (line[: span[0]] + " " + line[span[1]:]).strip()
    text = re.sub(r"^\s*(?:[-*+]|\d+[.)])\s+", "", text)
    text = re.sub(r"[*_`]+", "", text)
    text = re.sub(r"\s+", " ", text)
    text = re.sub(r"\s+([.,;:!?])", r"\1", text)
    text = re.sub(r"([,;:])(?:\s*[,;:])+", r"\1", text).strip(" ,;:-–—")
    return _clip(text)


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _LABEL_LIMIT else text[: _LABEL_LIMIT - 1] + "…"
