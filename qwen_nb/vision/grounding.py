"""Grounding answers (`bbox_2d`, `point_2d`) -> boxes and points in pixels of your images.

Qwen3-VL and Qwen2-VL answer in relative coordinates (0-1000 of each side); Qwen2.5-VL
answers in absolute pixels of the image *as sent* (after qwen_nb's resize). Either way the
result is mapped back to the original image the user passed (EXIF orientation applied).
Pure Python: PIL is imported only by `Box.crop()`, pandas only by `to_pandas()`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .._errors import InputError
from .._types import PreparedImage
from .jsontext import find_all_json

COORD_MODES = ("auto", "relative", "absolute")
RELATIVE_SCALE = 1000
# Keys a model may use to say which image (or page) an item belongs to.
IMAGE_KEYS = ("image", "image_index", "image_id", "img", "img_id", "img_idx", "picture", "page")
LABEL_KEYS = ("label", "name", "category", "text_content", "text")
_QWEN25 = re.compile(r"qwen[-_ ]?2[._]?5")
_DIGITS = re.compile(r"\d+")


def check_coords(mode: str) -> str:
    """The coordinate mode, refusing an unknown one before anything is sent."""
    if mode not in COORD_MODES:
        raise InputError(
            f"--coords {mode!r} is not known: use relative (0-1000, Qwen3-VL and Qwen2-VL), "
            "absolute (pixels of the image as sent, Qwen2.5-VL) or auto (by model name)."
        )
    return mode


def coords_for_model(model: str | None) -> str:
    """auto -> relative for Qwen3-VL / Qwen2-VL (and unknown models), absolute for Qwen2.5-VL."""
    return "absolute" if model and _QWEN25.search(model.lower()) else "relative"


@dataclass(frozen=True)
class Box:
    """One `bbox_2d`: corners in pixels of the original image, plus what the model said."""

    label: str
    x1: float
    y1: float
    x2: float
    y2: float
    raw: tuple[float, ...]
    image: int | None = None  # index into the request's images (0-based)
    page: int | None = None  # 1-based PDF page, when the image is one
    attributes: dict[str, Any] = field(default_factory=dict, compare=False)
    source: PreparedImage | None = field(default=None, repr=False, compare=False)

    @property
    def xyxy(self) -> tuple[float, float, float, float]:
        return (self.x1, self.y1, self.x2, self.y2)

    @property
    def width(self) -> float:
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        return self.y2 - self.y1

    @property
    def center(self) -> tuple[float, float]:
        return ((self.x1 + self.x2) / 2, (self.y1 + self.y2) / 2)

    def crop(self, margin: float = 0.0) -> Any:
        """This region of the original image as a PIL image (`margin`: a fraction of the
        box added on each side), ready for `%%qwen -i {_qwen.boxes[0].crop()}`."""
        return crop_region(self.source, self.xyxy, margin)

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label, "x1": self.x1, "y1": self.y1, "x2": self.x2, "y2": self.y2,
            "image": self.image, "page": self.page, "raw": list(self.raw), **self.attributes,
        }


@dataclass(frozen=True)
class Point:
    """One `point_2d`: a position in pixels of the original image."""

    label: str
    x: float
    y: float
    raw: tuple[float, ...]
    image: int | None = None
    page: int | None = None
    attributes: dict[str, Any] = field(default_factory=dict, compare=False)
    source: PreparedImage | None = field(default=None, repr=False, compare=False)

    @property
    def xy(self) -> tuple[float, float]:
        return (self.x, self.y)

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label, "x": self.x, "y": self.y, "image": self.image,
            "page": self.page, "raw": list(self.raw), **self.attributes,
        }


class Found(tuple):
    """A tuple of boxes or points with `to_pandas()` (pandas is optional)."""

    def to_list(self) -> list[dict[str, Any]]:
        return [item.to_dict() for item in self]

    def to_pandas(self) -> Any:
        try:
            import pandas
        except ImportError:
            raise ImportError(
                "to_pandas() needs pandas: pip install pandas (or use .to_list())."
            ) from None
        return pandas.DataFrame(self.to_list())

    def labels(self) -> list[str]:
        return [item.label for item in self]

    def __repr__(self) -> str:
        kind = type(self).__name__
        shown = ", ".join(repr(item) for item in self[:3])
        more = f", ... {len(self) - 3} more" if len(self) > 3 else ""
        return f"{kind}([{shown}{more}])"


class Boxes(Found):
    pass


class Points(Found):
    pass


@dataclass(frozen=True)
class Grounding:
    """What an answer's grounding JSON came to: boxes, points and notes for Details."""

    boxes: Boxes = field(default_factory=Boxes)
    points: Points = field(default_factory=Points)
    notes: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.boxes or self.points)


def parse_grounding(
    answer: str,
    images: Sequence[PreparedImage] = (),
    *,
    coords: str = "auto",
    model: str | None = None,
) -> Grounding:
    """Every `bbox_2d` / `point_2d` item in `answer`, mapped onto `images`. Never raises on
    what the model wrote: unusable items are skipped and counted in the notes."""
    if "bbox_2d" not in answer and "point_2d" not in answer:
        return Grounding()
    notes: list[str] = []
    items: list[dict[str, Any]] = []
    for found in find_all_json(answer):
        items.extend(_grounding_items(found.value))
        notes.extend(found.notes)
    if not items:
        return Grounding(notes=("the answer mentions bbox_2d/point_2d but holds no usable "
                                "grounding JSON",))
    found = ground_items(items, images, coords=coords, model=model)
    return Grounding(found.boxes, found.points, (*notes, *found.notes))


def ground_items(
    items: Sequence[dict[str, Any]],
    images: Sequence[PreparedImage],
    *,
    coords: str = "auto",
    model: str | None = None,
    what: str = "grounding",
) -> Grounding:
    """Items with `bbox_2d` / `point_2d` (as a model wrote them) -> boxes and points on
    `images`; documents use it for their regions."""
    mode = coords_for_model(model) if coords == "auto" else check_coords(coords)
    notes: list[str] = []
    placer = _Placer(items, images)
    mapper = _Mapper(mode)
    boxes: list[Box] = []
    points: list[Point] = []
    skipped = 0
    for item in items:
        index = placer.place(item)
        image = images[index] if index is not None else None
        label = _label(item)
        attributes = {
            k: v for k, v in item.items()
            if k not in ("bbox_2d", "point_2d") and k != placer.key
            and not (k in LABEL_KEYS and str(v) == label)
        }
        page = image.page if image is not None else None
        if "bbox_2d" in item:
            raw = _numbers(item["bbox_2d"], 4)
            if raw is None:
                skipped += 1
            else:
                x1, y1, x2, y2 = mapper.box(raw, image)
                boxes.append(Box(label, x1, y1, x2, y2, raw, index, page, attributes, image))
        if "point_2d" in item:
            raw = _numbers(item["point_2d"], 2)
            if raw is None:
                skipped += 1
            else:
                x, y = mapper.point(raw, image)
                points.append(Point(label, x, y, raw, index, page, attributes, image))
    notes.append(f"{what}: {_count(len(boxes), 'box', 'boxes')}, "
                 f"{_count(len(points), 'point', 'points')}; coordinates read as {mode} "
                 + ("(0-1000)" if mode == "relative" else "(pixels of the image as sent)")
                 + (" by model name" if coords == "auto" else ""))
    notes.extend(placer.notes())
    notes.extend(mapper.notes())
    if skipped:
        notes.append(f"{_count(skipped, 'grounding item', 'grounding items')} skipped: "
                     "coordinates were not 4 (bbox_2d) or 2 (point_2d) numbers")
    return Grounding(Boxes(boxes), Points(points), tuple(notes))


def crop_region(image: PreparedImage | None, xyxy: Sequence[float], margin: float = 0.0) -> Any:
    """A region (pixels of the original) of a request's image, as a PIL image."""
    from ..media.origin import original_image

    if image is None:
        raise InputError("This box belongs to no image of the request: nothing to crop.")
    picture = original_image(image)
    scale_x, scale_y = _scale_to(picture.size, image)
    x1, y1, x2, y2 = xyxy
    pad_x, pad_y = (x2 - x1) * margin, (y2 - y1) * margin
    left = max(0, math.floor((x1 - pad_x) * scale_x))
    top = max(0, math.floor((y1 - pad_y) * scale_y))
    right = min(picture.width, max(left + 1, math.ceil((x2 + pad_x) * scale_x)))
    bottom = min(picture.height, max(top + 1, math.ceil((y2 + pad_y) * scale_y)))
    return picture.crop((left, top, right, bottom))


def _scale_to(size: tuple[int, int], image: PreparedImage) -> tuple[float, float]:
    """From original-image pixels to pixels of a picture of `size` (the original or as sent)."""
    original = image.original_size or size
    return size[0] / original[0], size[1] / original[1]


# --- the pieces ----------------------------------------------------------------------------


def _grounding_items(value: Any) -> Iterable[dict[str, Any]]:
    """Grounding items in a JSON value: a list of them, one, or a dict holding a list."""
    if isinstance(value, dict):
        if "bbox_2d" in value or "point_2d" in value:
            return [value]
        nested = [v for v in value.values() if isinstance(v, (list, dict))]
        return [item for v in nested for item in _grounding_items(v)]
    if isinstance(value, list):
        return [item for v in value for item in _grounding_items(v)]
    return []


def _label(item: dict[str, Any]) -> str:
    for key in LABEL_KEYS:
        value = item.get(key)
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
    return ""


def _numbers(value: Any, count: int) -> tuple[float, ...] | None:
    if not isinstance(value, (list, tuple)) or len(value) != count:
        return None
    numbers: list[float] = []
    for entry in value:
        if isinstance(entry, str):
            try:
                entry = float(entry)
            except ValueError:
                return None
        if isinstance(entry, bool) or not isinstance(entry, (int, float)):
            return None
        if not math.isfinite(entry):
            return None
        numbers.append(float(entry))
    return tuple(numbers)


def _count(number: int, one: str, many: str) -> str:
    return f"{number} {one if number == 1 else many}"


class _Placer:
    """Which image an item belongs to: the index its JSON names, else the only image."""

    def __init__(self, items: list[dict[str, Any]], images: Sequence[PreparedImage]) -> None:
        self.images = images
        self.key = next((k for k in IMAGE_KEYS if any(k in item for item in items)), None)
        values = [item.get(self.key) for item in items] if self.key else []
        numbers = [n for n in (_index_number(v) for v in values) if n is not None]
        pages = [image.page for image in images]
        self.by_page = self.key == "page" and any(p is not None for p in pages)
        self.base = 0 if 0 in numbers else 1
        self.named = self.unplaced = self.out_of_range = 0

    def place(self, item: dict[str, Any]) -> int | None:
        if not self.images:
            self.unplaced += 1
            return None
        if self.key is not None and self.key in item:
            index = self._named(item[self.key])
            if index is not None:
                self.named += 1
                return index
            self.out_of_range += 1
        self.unplaced += 1
        return 0

    def _named(self, value: Any) -> int | None:
        if self.by_page:
            number = _index_number(value)
            return next((i for i, image in enumerate(self.images) if image.page == number), None)
        if isinstance(value, str):
            for index, image in enumerate(self.images):
                if value and image.source.split(" ", 1)[0] == value:
                    return index
        number = _index_number(value)
        if number is None:
            return None
        index = number - self.base
        return index if 0 <= index < len(self.images) else None

    def notes(self) -> list[str]:
        count = len(self.images)
        notes: list[str] = []
        if self.named:
            notes.append(
                f"{_count(self.named, 'item', 'items')} placed by the {self.key!r} field of the "
                "JSON" + ("" if self.by_page else f" ({self.base}-based)")
            )
        if self.out_of_range:
            notes.append(f"{_count(self.out_of_range, 'item', 'items')} named an image that is "
                         f"not in the request ({count} sent)")
        if not count and self.unplaced:
            notes.append("no image was sent: coordinates kept as the model gave them")
        elif count > 1 and self.unplaced:
            notes.append(
                f"{_count(self.unplaced, 'item', 'items')} named no image of the {count} sent: "
                "placed on image 1 (ask for an \"image\" field per item to place them)"
            )
        return notes


def _index_number(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        match = _DIGITS.search(value)
        return int(match.group()) if match else None
    return None


class _Mapper:
    """Model coordinates -> pixels of the original image, clamped, corners in order."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.clamped = self.swapped = self.unsized = 0

    def box(self, raw: tuple[float, ...], image: PreparedImage | None) -> tuple[float, ...]:
        x1, y1, x2, y2 = raw
        if x2 < x1 or y2 < y1:
            self.swapped += 1
            x1, x2 = min(x1, x2), max(x1, x2)
            y1, y2 = min(y1, y2), max(y1, y2)
        return self._map((x1, y1, x2, y2), image)

    def point(self, raw: tuple[float, ...], image: PreparedImage | None) -> tuple[float, ...]:
        return self._map(raw, image)

    def _map(self, values: tuple[float, ...], image: PreparedImage | None) -> tuple[float, ...]:
        sizes = _sizes(image)
        if sizes is None:
            if image is not None:
                self.unsized += 1
            return values
        (width, height), (sent_width, sent_height) = sizes
        if self.mode == "relative":
            limits = (RELATIVE_SCALE, RELATIVE_SCALE)
        else:
            limits = (sent_width, sent_height)
        clamped = tuple(
            min(max(v, 0.0), float(limits[i % 2])) for i, v in enumerate(values)
        )
        if clamped != values:
            self.clamped += 1
        scale = (width / limits[0], height / limits[1])
        return tuple(round(v * scale[i % 2], 2) for i, v in enumerate(clamped))

    def notes(self) -> list[str]:
        notes = []
        if self.clamped:
            limit = "0-1000" if self.mode == "relative" else "the image"
            notes.append(f"{_count(self.clamped, 'item', 'items')} had coordinates outside "
                         f"{limit}: clamped")
        if self.swapped:
            notes.append(f"{_count(self.swapped, 'box', 'boxes')} had x2 < x1 or y2 < y1: "
                         "corners put in order")
        if self.unsized:
            notes.append(f"{_count(self.unsized, 'item', 'items')} on an image sent as a URL "
                         "(size unknown): coordinates kept as the model gave them")
        return notes


def _sizes(image: PreparedImage | None) -> tuple[tuple[int, int], tuple[int, int]] | None:
    if image is None or image.sent_size is None:
        return None
    return (image.original_size or image.sent_size), image.sent_size
