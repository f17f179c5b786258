"""What --ground, --doc, --json and --schema add to a request: prompt text, response_format,
and the Reading that tells the response how to read the answer.

The prompt forms are the Qwen3-VL cookbooks' own ("Locate every instance that belongs to
the following categories: ... Report bbox coordinates in JSON format.", "qwenvl html"),
so grounding and document parsing need no prompt engineering.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .._errors import InputError
from .._types import Reading
from .grounding import check_coords
from .structured import json_instruction, json_schema_of, response_format

DOC_MODES = ("html", "markdown")


@dataclass(frozen=True)
class VisionPlan:
    """The extra prompt text (after the user's own), response_format, and the Reading."""

    instruction: str = ""
    response_format: dict[str, Any] | None = None
    reading: Reading = Reading()


def ground_instruction(targets: str, *, points: bool = False, images: int = 1) -> str:
    """The cookbook grounding request for `targets` ("cat, red car")."""
    quoted = targets.strip().replace('"', "'")
    ask = (
        "Output the point coordinates in JSON format."
        if points
        else "Report bbox coordinates in JSON format."
    )
    text = f'Locate every instance that belongs to the following categories: "{quoted}". {ask}'
    if images > 1:
        text += (
            ' For each item add "image": the number of the image it is in (1 for the first).'
        )
    return text


def plan_vision(
    *,
    ground: str | None = None,
    points: bool = False,
    coords: str = "auto",
    json: bool = False,
    schema: Any = None,
    doc: str | None = None,
    strict: bool = False,
    images: int = 1,
    schema_label: str = "schema",
) -> VisionPlan:
    """Check the vision options (before anything is sent) and plan what they add."""
    check_coords(coords)
    if ground is not None and (not isinstance(ground, str) or not ground.strip()):
        raise InputError(
            '--ground needs what to locate, e.g. --ground "cat, red car" (ground="cat").'
        )
    if points and ground is None:
        raise InputError('--points goes with --ground: --ground "cat" --points.')
    if doc is not None and doc not in DOC_MODES:
        raise InputError(f"--doc {doc!r} is not known: use --doc html or --doc markdown.")
    chosen = [name for name, on in (("--ground", ground is not None), ("--doc", doc is not None),
                                    ("--json/--schema", json or schema is not None)) if on]
    if len(chosen) > 1:
        raise InputError(f"{' and '.join(chosen)} ask for different answers; use one of them.")
    if strict and not (json or schema is not None):
        raise InputError("--strict goes with --json or --schema (it fails the cell when the "
                         "answer does not validate).")
    if schema is not None:
        json_schema_of(schema, schema_label)  # a bad schema is refused here
    pieces: list[str] = []
    if ground is not None:
        pieces.append(ground_instruction(ground, points=points, images=images))
    if doc is not None:
        pieces.append(f"qwenvl {doc}")
    wants_json = json or schema is not None
    if wants_json:
        pieces.append(json_instruction(schema))
    reading = Reading(coords=coords, ground=ground, json=wants_json, schema=schema, doc=doc,
                      strict=strict)
    return VisionPlan(
        instruction="\n\n".join(pieces),
        response_format=response_format(schema) if wants_json else None,
        reading=reading,
    )
