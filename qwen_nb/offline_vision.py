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
    thinking = ["I am the offline simulator: I outline areas of one colour that differ from "
                "each image's background and name them after the categories asked for "
                "(by colour where a category names one)."]
    for number, image in enumerate(images or (None,), 1):
        regions = (salient_regions(image, rng, colour_name, by_colour=True)
                   if image is not None else [(_random_box(rng), "")])
        chosen = _match(targets, regions)
        thinking.append(f"Image {number}: {len(regions)} distinct areas, {len(chosen)} named.")
        for label, (box, colour) in chosen:
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


def _match(targets: list[str], regions: list[tuple[tuple[int, int, int, int], str]]
           ) -> list[tuple[str, tuple[tuple[int, int, int, int], str]]]:
    """Each target gets the largest area whose colour it names, else the largest left."""
    left = list(regions)
    chosen = []
    for target in targets:
        words = target.lower().split()
        exact = [r for r in left if r[1] and r[1] in words]  # "yellow", not "light yellow"
        loose = [r for r in left if r[1] and any(w in r[1].split() for w in words)]
        pick = next(iter(exact + loose + left), None)
        if pick is None:
            break
        left.remove(pick)
        chosen.append((target, pick))
    return chosen


def salient_regions(image: PreparedImage | None, rng: random.Random, colour_name: ColourName,
                    *, by_colour: bool = False) -> list[tuple[tuple[int, int, int, int], str]]:
    """Up to six (box in 0-1000, colour name) for the largest areas unlike the background;
    `by_colour`: areas of one colour each (objects), else any unlike area (page blocks)."""
    picture = _decode(image)
    if picture is None:
        return [(_random_box(rng), "")]
    width = _GRID
    height = max(1, round(_GRID * picture.height / picture.width))
    small = picture.convert("RGB").resize((width, height))
    raw = small.tobytes()
    pixels = [tuple(raw[i : i + 3]) for i in range(0, len(raw), 3)]
    background = max(set(pixels), key=pixels.count)
    differs = [_distance(p, background) > 60 for p in pixels]
    seen = [False] * len(pixels)
    found: list[tuple[int, tuple[int, int, int, int], tuple[int, int, int]]] = []
    for start in range(len(pixels)):
        if not differs[start] or seen[start]:
            continue
        cells = _flood(start, differs, seen, width, height,
                       pixels if by_colour else None)
        if len(cells) < 3:
            continue
        xs = [c % width for c in cells]
        ys = [c // width for c in cells]
        # Edge cells blend with the background and fall out: grow by half a cell.
        box = (max(0, (2 * min(xs) - 1) * 500 // width), max(0, (2 * min(ys) - 1) * 500 // height),
               min(1000, (2 * max(xs) + 3) * 500 // width),
               min(1000, (2 * max(ys) + 3) * 500 // height))
        mean = tuple(sum(pixels[c][k] for c in cells) // len(cells) for k in range(3))
        found.append((len(cells), box, mean))  # type: ignore[arg-type]
    found.sort(key=lambda entry: (-entry[0], entry[1]))
    regions = [(box, colour_name(mean)) for _, box, mean in found[:_MAX_REGIONS]]
    return regions or [(_random_box(rng), "")]


def _flood(start: int, differs: list[bool], seen: list[bool], width: int, height: int,
           pixels: list[tuple[int, ...]] | None = None) -> list[int]:
    """The connected cells from `start` (of about its colour, when `pixels` is given)."""
    cells, queue = [], deque([start])
    seen[start] = True
    while queue:
        cell = queue.popleft()
        cells.append(cell)
        x, y = cell % width, cell // width
        for nx, ny in ((x - 1, y), (x + 1, y), (x, y - 1), (x, y + 1)):
            if 0 <= nx < width and 0 <= ny < height:
                neighbour = ny * width + nx
                similar = pixels is None or _distance(pixels[neighbour], pixels[start]) <= 60
                if differs[neighbour] and not seen[neighbour] and similar:
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
    # Reading order: top to bottom, then left to right; the first block is the title, wide
    # flat ones are text, the last is a table (of what was found), the rest are figures.
    regions.sort(key=lambda region: (region[0][1] // 50, region[0][0]))
    kinds = [_block_kind(index, len(regions), box) for index, (box, _) in enumerate(regions)]
    thinking = ("I am the offline simulator: I lay out the page from the "
                f"{len(regions)} distinct areas I found ({', '.join(kinds)}), top to bottom.")
    rows = [(str(i), colour or "-") for i, (_, colour) in enumerate(regions, 1)]
    blocks: list[str] = []
    for kind, (box, _) in zip(kinds, regions, strict=True):
        blocks.append(_block(mode, kind, box, rows))
    if mode == "html":
        return thinking, ("```html\n<html><body>\n" + "\n".join(blocks)
                          + "\n</body></html>\n```")
    return thinking, "\n\n".join(blocks)


def _block_kind(index: int, count: int, box: tuple[int, int, int, int]) -> str:
    if index == 0:
        return "title"
    if index == count - 1 and count > 2:
        return "table"
    wide = (box[2] - box[0]) > 3 * (box[3] - box[1])
    return "paragraph" if wide else "image"


def _block(mode: str, kind: str, box: tuple[int, int, int, int],
           rows: list[tuple[str, str]]) -> str:
    """One QwenVL HTML element, or the Markdown for it."""
    text = "Not a model's reading: the simulator marks the areas that differ from the page."
    if mode == "html":
        where = f'data-bbox="{_bbox(box)}"'
        if kind == "title":
            return f"<h1 {where}>Offline simulator page</h1>"
        if kind == "paragraph":
            return f"<p {where}>{text}</p>"
        if kind == "image":
            return f'<div class="image" {where}></div>'
        cells = "".join(f"<tr><td>{area}</td><td>{colour}</td></tr>" for area, colour in rows)
        return f"<table {where}><tr><th>area</th><th>colour</th></tr>{cells}</table>"
    if kind == "title":
        return "# Offline simulator page"
    if kind == "paragraph":
        return text
    placeholder = f"<!-- {kind.title()} ({', '.join(map(str, box))}) -->"
    if kind == "image":
        return placeholder
    table = ["| area | colour |", "|---|---|"] + [f"| {a} | {c} |" for a, c in rows]
    return placeholder + "\n" + "\n".join(table)


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
