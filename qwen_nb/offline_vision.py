"""The offline simulator's answers to grounding, document and JSON requests.

Deterministic and plausible, so demos and tests run without a model: boxes go round the
largest areas that differ from an image's background (in Qwen3-VL's 0-1000 coordinates),
documents are QwenVL HTML / Markdown with regions, JSON follows the schema sent.
Recognised from the prompt text and `response_format`, as a model would see them.
"""

from __future__ import annotations

import base64
import io
import json
import random
import re
from collections import deque
from collections.abc import Callable
from typing import Any

from ._types import ChatRequest, PreparedImage

_GROUND = re.compile(
    r'categories:\s*"([^"]*)"\.\s*(Report bbox coordinates|Output the point coordinates)',
)
_DOC = re.compile(r"\bqwenvl (html|markdown)\b", re.IGNORECASE)
_GRID = 48  # images are examined on a grid this many cells wide
_MAX_REGIONS = 6


ColourName = Callable[[tuple[int, int, int]], str]


def vision_answer(request: ChatRequest, rng: random.Random, colour_name: ColourName
                  ) -> tuple[str, str] | None:
    """(thinking, answer) when the request asks for boxes, points, a document or JSON;
    `colour_name` (the simulator's) names the areas found."""
    text = next(m for m in reversed(request.messages) if m.role == "user").text
    images = request.images
    ground = _GROUND.search(text)
    if ground is not None:
        targets = [t.strip() for t in ground.group(1).split(",") if t.strip()] or ["object"]
        points = ground.group(2).startswith("Output the point")
        return _grounding(targets, images, points, rng, colour_name)
    doc = _DOC.search(text)
    if doc is not None:
        return _document(doc.group(1).lower(), images, rng, colour_name)
    response_format = request.options.response_format
    if response_format is not None or "Answer with JSON only" in text:
        return _json(response_format, text, images, rng)
    return None


# --- grounding ---------------------------------------------------------------------------


def _grounding(targets: list[str], images: tuple[PreparedImage, ...], points: bool,
               rng: random.Random, colour_name: ColourName) -> tuple[str, str]:
    items: list[dict[str, Any]] = []
    thinking = ["I am the offline simulator: I outline the areas that differ from each "
                "image's background and name them after the categories asked for."]
    for number, image in enumerate(images or (None,), 1):
        regions = (salient_regions(image, rng, colour_name) if image is not None
                   else [(_random_box(rng), "")])
        thinking.append(f"Image {number}: {len(regions)} distinct areas.")
        for index, (box, colour) in enumerate(regions):
            label = _pick_label(targets, colour, index)
            item: dict[str, Any] = (
                {"point_2d": [(box[0] + box[2]) // 2, (box[1] + box[3]) // 2]}
                if points else {"bbox_2d": list(box)}
            )
            item["label"] = label
            if colour:
                item["color"] = colour
            if len(images) > 1:
                item["image"] = number
            items.append(item)
    answer = "```json\n" + json.dumps(items, indent=2) + "\n```"
    return "\n".join(thinking), answer


def _pick_label(targets: list[str], colour: str, index: int) -> str:
    """The target whose words name this area's colour, else the targets in turn."""
    for target in targets:
        if colour and any(word in colour.split() for word in target.lower().split()):
            return target
    return targets[index % len(targets)]


def salient_regions(image: PreparedImage | None, rng: random.Random, colour_name: ColourName
                    ) -> list[tuple[tuple[int, int, int, int], str]]:
    """Up to six (box in 0-1000, colour name) for the largest areas unlike the background."""
    picture = _decode(image)
    if picture is None:
        return [(_random_box(rng), "")]
    width = _GRID
    height = max(1, round(_GRID * picture.height / picture.width))
    small = picture.convert("RGB").resize((width, height))
    pixels = list(small.getdata())
    background = max(set(pixels), key=pixels.count)
    differs = [_distance(p, background) > 60 for p in pixels]
    seen = [False] * len(pixels)
    found: list[tuple[int, tuple[int, int, int, int], tuple[int, int, int]]] = []
    for start in range(len(pixels)):
        if not differs[start] or seen[start]:
            continue
        cells = _flood(start, differs, seen, width, height)
        if len(cells) < 3:
            continue
        xs = [c % width for c in cells]
        ys = [c // width for c in cells]
        box = (min(xs) * 1000 // width, min(ys) * 1000 // height,
               (max(xs) + 1) * 1000 // width, (max(ys) + 1) * 1000 // height)
        mean = tuple(sum(pixels[c][k] for c in cells) // len(cells) for k in range(3))
        found.append((len(cells), box, mean))  # type: ignore[arg-type]
    found.sort(key=lambda entry: (-entry[0], entry[1]))
    regions = [(box, colour_name(mean)) for _, box, mean in found[:_MAX_REGIONS]]
    return regions or [(_random_box(rng), "")]


def _flood(start: int, differs: list[bool], seen: list[bool], width: int, height: int
           ) -> list[int]:
    cells, queue = [], deque([start])
    seen[start] = True
    while queue:
        cell = queue.popleft()
        cells.append(cell)
        x, y = cell % width, cell // width
        for nx, ny in ((x - 1, y), (x + 1, y), (x, y - 1), (x, y + 1)):
            if 0 <= nx < width and 0 <= ny < height:
                neighbour = ny * width + nx
                if differs[neighbour] and not seen[neighbour]:
                    seen[neighbour] = True
                    queue.append(neighbour)
    return cells


def _distance(a: tuple[int, ...], b: tuple[int, ...]) -> int:
    return sum(abs(x - y) for x, y in zip(a[:3], b[:3], strict=True))


def _random_box(rng: random.Random) -> tuple[int, int, int, int]:
    x1, y1 = rng.randint(50, 550), rng.randint(50, 550)
    return (x1, y1, x1 + rng.randint(100, 400), y1 + rng.randint(100, 400))


def _decode(image: PreparedImage | None) -> Any:
    if image is None or not image.url.startswith("data:"):
        return None
    from PIL import Image

    try:
        picture = Image.open(io.BytesIO(base64.b64decode(image.url.partition(",")[2])))
        picture.load()
    except Exception:  # the simulator describes; it does not judge
        return None
    return picture


# --- documents ---------------------------------------------------------------------------


def _document(mode: str, images: tuple[PreparedImage, ...], rng: random.Random,
              colour_name: ColourName) -> tuple[str, str]:
    regions = (salient_regions(images[0], rng, colour_name) if images
               else [(_random_box(rng), "")])
    thinking = ("I am the offline simulator: I lay out a page with a title, a paragraph and "
                f"a figure for each of the {len(regions)} distinct areas I found.")
    title, text = (40, 30, 960, 90), (40, 100, 960, 160)
    if mode == "html":
        blocks = [f'<h1 data-bbox="{_bbox(title)}">Offline simulator page</h1>',
                  f'<p data-bbox="{_bbox(text)}">Not a model\'s reading: the simulator marks '
                  "the areas that differ from the background.</p>"]
        blocks += [f'<div class="image" data-bbox="{_bbox(box)}"></div>'
                   for box, _ in regions[:-1]]
        table_box = regions[-1][0]
        blocks.append(f'<table data-bbox="{_bbox(table_box)}"><tr><th>area</th><th>colour'
                      "</th></tr>" + "".join(f"<tr><td>{i}</td><td>{colour or '-'}</td></tr>"
                                             for i, (_, colour) in enumerate(regions, 1))
                      + "</table>")
        return thinking, "```html\n<html><body>\n" + "\n".join(blocks) + "\n</body></html>\n```"
    lines = ["# Offline simulator page", "",
             "Not a model's reading: the simulator marks the areas that differ from the "
             "background.", ""]
    for box, _ in regions[:-1]:
        lines += [f"<!-- Image ({', '.join(map(str, box))}) -->", ""]
    lines += [f"<!-- Table ({', '.join(map(str, regions[-1][0]))}) -->", "| area | colour |",
              "|---|---|"]
    lines += [f"| {i} | {colour or '-'} |" for i, (_, colour) in enumerate(regions, 1)]
    return thinking, "\n".join(lines)


def _bbox(box: tuple[int, int, int, int]) -> str:
    return " ".join(map(str, box))


# --- JSON --------------------------------------------------------------------------------


def _json(response_format: dict[str, Any] | None, text: str,
          images: tuple[PreparedImage, ...], rng: random.Random) -> tuple[str, str]:
    schema = None
    if response_format and response_format.get("type") == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema")
    elif "JSON schema: " in text:
        try:
            schema = json.loads(text.split("JSON schema: ", 1)[1].splitlines()[0])
        except (ValueError, IndexError):
            schema = None
    if schema is None:
        value: Any = {"simulator": True, "images": len(images),
                      "prompt_words": len(text.split())}
    else:
        value = example_of(schema, schema, rng, 0)
    thinking = ("I am the offline simulator: I answer with JSON "
                + ("that follows the schema sent." if schema else "describing the request."))
    return thinking, "```json\n" + json.dumps(value, indent=2) + "\n```"


def example_of(schema: Any, root: Any, rng: random.Random, depth: int, name: str = "") -> Any:
    """A deterministic value that matches a JSON schema (the common keywords)."""
    if not isinstance(schema, dict) or depth > 6:
        return None
    if "$ref" in schema:
        target: Any = root
        for part in str(schema["$ref"]).lstrip("#/").split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        return example_of(target, root, rng, depth + 1, name)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if schema.get(key):
            options = [o for o in schema[key] if o.get("type") != "null"] or schema[key]
            return example_of(options[0], root, rng, depth + 1, name)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties") or {}
        return {key: example_of(sub, root, rng, depth + 1, key)
                for key, sub in properties.items()}
    if kind == "array":
        count = max(1, int(schema.get("minItems", 2)))
        return [example_of(schema.get("items", {}), root, rng, depth + 1, name)
                for _ in range(min(count, 3))]
    if kind == "integer":
        low = int(schema.get("minimum", 1))
        return rng.randint(low, max(low, int(schema.get("maximum", low + 9))))
    if kind == "number":
        low = float(schema.get("minimum", 0.0))
        return round(rng.uniform(low, float(schema.get("maximum", low + 10))), 2)
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return f"example {name}".strip() if name else "example"
