"""One place that reads an answer beyond its text: grounding, JSON data, documents.

`interpret(response)` is computed once per response (`QwenResponse.interpretation`) and
feeds `_qwen.boxes`, `_qwen.data`, `_qwen.document`, the overlay and the Details notes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .._types import QwenResponse
from .document import parse_document
from .grounding import Boxes, Grounding, Points, parse_grounding
from .structured import read_structured


@dataclass(frozen=True)
class Interpretation:
    """What an answer means: boxes and points, JSON data, a parsed document, and notes."""

    boxes: Boxes = field(default_factory=Boxes)
    points: Points = field(default_factory=Points)
    data: Any = None  # the JSON (a model instance for a pydantic schema); None if invalid
    raw_data: Any = None  # the JSON as parsed, valid or not
    errors: tuple[str, ...] = ()  # why the JSON does not match the schema
    document: Any = None
    notes: tuple[str, ...] = ()

    @property
    def has_overlay(self) -> bool:
        return bool(self.boxes or self.points or (self.document and self.document.regions))


def interpret(response: QwenResponse) -> Interpretation:
    """Read `response.answer` as its Reading says (grounding is always looked for)."""
    reading = response.reading
    grounding = parse_grounding(
        response.answer, response.images, coords=reading.coords, model=response.model
    ) if response.answer else Grounding()
    notes = list(grounding.notes)
    data = raw_data = None
    errors: tuple[str, ...] = ()
    if reading.json:
        structured = read_structured(response.answer, reading.schema)
        data, raw_data, errors = structured.data, structured.raw, structured.errors
        notes.extend(structured.notes)
        if reading.schema is not None:
            notes.append("JSON answer " + ("validated against the schema" if structured.valid
                                           else f"does not match the schema ({len(errors)} "
                                           "problem" + ("s" if len(errors) != 1 else "") + ")"))
    document = None
    if reading.doc is not None and response.answer:
        document = parse_document(response.answer, reading.doc, response.images,
                                  coords=reading.coords, model=response.model)
        notes.extend(document.notes)
    return Interpretation(
        boxes=grounding.boxes, points=grounding.points, data=data, raw_data=raw_data,
        errors=errors, document=document, notes=tuple(notes),
    )
