"""What an answer means beyond text: grounding boxes and points, documents, JSON data.

Pure Python over the answer and the request's images: no HTTP, no widgets. PIL (for
crops) and pandas (for tables) load on first use.
"""

from __future__ import annotations

from .grounding import Box, Boxes, Grounding, Point, Points, coords_for_model, parse_grounding
from .jsontext import find_json, repair_truncated

__all__ = [
    "Box",
    "Boxes",
    "Grounding",
    "Point",
    "Points",
    "coords_for_model",
    "find_json",
    "parse_grounding",
    "repair_truncated",
]
