"""JSON answers: the schema sent (`response_format`), the prompt fallback, and validation.

A schema is a pydantic model class (validated with pydantic) or a JSON-schema dict
(validated with `jsonschema`); both are optional extras (`pip install qwen-nb[schema]`),
imported only when a schema is used.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from .._errors import InputError
from .jsontext import find_json

_NAME = re.compile(r"[^A-Za-z0-9_-]+")


def is_pydantic_model(schema: Any) -> bool:
    return isinstance(schema, type) and hasattr(schema, "model_json_schema") and hasattr(
        schema, "model_validate"
    )


def json_schema_of(schema: Any, label: str = "schema") -> dict[str, Any]:
    """The JSON schema (a dict) of a pydantic model class or of a schema dict."""
    if is_pydantic_model(schema):
        return schema.model_json_schema()
    if isinstance(schema, dict):
        if not any(key in schema for key in ("type", "properties", "$ref", "anyOf", "oneOf",
                                               "allOf", "enum", "items", "$defs")):
            raise InputError(
                f"{label} is a dict but not a JSON schema (no type, properties, items, $ref, "
                'anyOf...). Pass a schema such as {"type": "object", "properties": {...}} '
                "or a pydantic model class."
            )
        try:
            json.dumps(schema)
        except (TypeError, ValueError) as exc:
            raise InputError(f"{label} is not JSON-serialisable: {exc}.") from None
        return schema
    raise InputError(
        f"{label} is a {type(schema).__name__}; --schema takes a pydantic model class "
        "(class Answer(BaseModel): ...) or a JSON-schema dict from the namespace."
    )


def schema_name(schema: Any) -> str:
    """A name for `response_format.json_schema.name` (letters, digits, _ and -, <= 64)."""
    raw = schema.__name__ if isinstance(schema, type) else str(schema.get("title") or "answer")
    return (_NAME.sub("_", raw).strip("_") or "answer")[:64]


def response_format(schema: Any | None) -> dict[str, Any]:
    """OpenAI-style `response_format`: json_schema for a schema, json_object for --json."""
    if schema is None:
        return {"type": "json_object"}
    return {
        "type": "json_schema",
        "json_schema": {"name": schema_name(schema), "schema": json_schema_of(schema)},
    }


def json_instruction(schema: Any | None) -> str:
    """What the prompt says, so a provider without `response_format` still gets JSON."""
    if schema is None:
        return "Answer with JSON only: one JSON object, no text before or after it."
    text = json.dumps(json_schema_of(schema), ensure_ascii=False, separators=(",", ":"))
    return (
        "Answer with JSON only: one JSON value that matches this JSON schema, no text "
        f"before or after it.\nJSON schema: {text}"
    )


@dataclass(frozen=True)
class StructuredAnswer:
    """The answer's JSON: `data` (a model instance or plain JSON), validation errors, notes."""

    data: Any = None
    raw: Any = None  # the JSON value as parsed, before validation
    errors: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def valid(self) -> bool:
        return self.raw is not None and not self.errors


def read_structured(answer: str, schema: Any | None) -> StructuredAnswer:
    """Parse (fenced or bare; a cut-off tail repaired) and validate against `schema`."""
    found = find_json(answer)
    if found is None:
        return StructuredAnswer(errors=("the answer holds no JSON object or array",))
    notes = found.notes
    if schema is None:
        return StructuredAnswer(found.value, found.value, notes=notes)
    if is_pydantic_model(schema):
        return _validate_pydantic(found.value, schema, notes)
    return _validate_jsonschema(found.value, schema, notes)


def _validate_pydantic(value: Any, model: Any, notes: tuple[str, ...]) -> StructuredAnswer:
    from pydantic import ValidationError

    try:
        return StructuredAnswer(model.model_validate(value), value, notes=notes)
    except ValidationError as error:
        problems = tuple(
            f"{'.'.join(str(p) for p in problem['loc']) or '(root)'}: {problem['msg']}"
            for problem in error.errors()
        )
        return StructuredAnswer(None, value, problems, notes)


def _validate_jsonschema(
    value: Any, schema: dict[str, Any], notes: tuple[str, ...]
) -> StructuredAnswer:
    try:
        import jsonschema
    except ImportError:
        return StructuredAnswer(
            value, value, notes=(*notes, "not validated: a schema dict needs jsonschema "
                                 "(pip install qwen-nb[schema])")
        )
    validator_class = jsonschema.validators.validator_for(schema)
    validator = validator_class(schema)
    problems = tuple(
        f"{'.'.join(str(p) for p in problem.absolute_path) or '(root)'}: {problem.message}"
        for problem in sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))
    )
    return StructuredAnswer(None if problems else value, value, problems, notes)
