"""Boxes and points drawn on the request's images, as PIL images and as static <img> HTML.

Drawn from the answer and the images as sent (never from cached pixels), so a replayed
answer draws the same overlay. The HTML embeds the picture as a data: URL, so it survives
saving, nbconvert and GitHub.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from .._errors import InputError

if TYPE_CHECKING:
    from PIL import Image

    from .._types import PreparedImage, QwenResponse

# The picture in the output fits this many pixels on its long side (a notebook column)...
DISPLAY_LONG_SIDE = 960
# ...and tiny images are enlarged to this, so labels stay readable.
DISPLAY_MIN_SIDE = 320
# Distinct, colour-blind-friendly hues (Tableau 10, then a few more), given to labels in
# the order they first appear.
PALETTE = (
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
    (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
    (0, 0, 128), (128, 0, 0), (0, 128, 128), (255, 215, 0),
)
_JPEG_QUALITY = 85
_HALO = (255, 255, 255)


def label_colours(labels: Sequence[str]) -> dict[str, tuple[int, int, int]]:
    """A colour per distinct label, in order of first appearance."""
    colours: dict[str, tuple[int, int, int]] = {}
    for label in labels:
        if label not in colours:
            colours[label] = PALETTE[len(colours) % len(PALETTE)]
    return colours


def draw_overlay(response: QwenResponse, i: int = 0, *, full: bool = False) -> Image.Image:
    """Image `i` of `response`'s request with its boxes and points drawn.

    `full=False` draws on the image as the model saw it; `full=True` on the original."""
    images = response.images
    if not 0 <= i < len(images):
        raise InputError(
            f"overlay(i={i}): the request had {len(images)} image"
            f"{'s' if len(images) != 1 else ''}; use i from 0 to {max(0, len(images) - 1)}."
        )
    from ..media.origin import original_image, sent_image

    picture = original_image(images[i]) if full else sent_image(images[i])
    return draw_items(picture, images[i], response, i)


def draw_items(
    picture: Image.Image,
    image: PreparedImage,
    response: QwenResponse,
    index: int,
    *,
    size: tuple[int, int] | None = None,
) -> Image.Image:
    """Draw the boxes/points of image `index` (pixels of the original) on `picture`,
    resized to `size` first when given."""
    from PIL import Image

    if size is not None and picture.size != size:
        canvas = picture.convert("RGB").resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
    else:
        canvas = picture.convert("RGB") if picture.mode != "RGB" else picture.copy()
    draw_marks(canvas, image, response, index)
    return canvas


def draw_marks(canvas: Image.Image, image: PreparedImage, response: QwenResponse,
               index: int) -> None:
    """Draw the boxes/points of image `index` onto `canvas` (the image at any size, or a
    transparent layer of that size), in place."""
    from PIL import ImageDraw

    reading = response.interpretation
    boxes = [box for box in reading.boxes if box.image == index]
    points = [point for point in reading.points if point.image == index]
    regions = _document_regions(response, index)
    original = image.original_size or image.sent_size or canvas.size
    scale_x, scale_y = canvas.width / original[0], canvas.height / original[1]
    colours = label_colours([item.label for item in [*regions, *boxes, *points]])
    line = max(2, round(min(canvas.size) / 250))
    font_size = max(11, round(max(canvas.size) / 64))
    draw = ImageDraw.Draw(canvas)
    for box in [*regions, *boxes]:
        colour = colours[box.label]
        x1, y1, x2, y2 = (box.x1 * scale_x, box.y1 * scale_y, box.x2 * scale_x, box.y2 * scale_y)
        corners = (x1, y1, max(x1, x2), max(y1, y2))
        draw.rectangle(corners, outline=colour, width=line)
        # Thin white edges keep the line visible on a background of its own colour.
        draw.rectangle(_grow(corners, 1), outline=_HALO, width=1)
        if corners[2] - corners[0] > 2 * line and corners[3] - corners[1] > 2 * line:
            draw.rectangle(_grow(corners, -line), outline=_HALO, width=1)
        if box.label:
            _tag(canvas, font_size, (x1, y1), box.label, colour, above=True)
    radius = max(4, round(line * 2.5))
    for point in points:
        colour = colours[point.label]
        x, y = point.x * scale_x, point.y * scale_y
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=colour,
                     outline=(255, 255, 255), width=max(1, line // 2))
        if point.label:
            _tag(canvas, font_size, (x + radius + 2, y - radius), point.label, colour)


def display_size(size: tuple[int, int]) -> tuple[int, int]:
    """A sensible size to show an image of `size` at in a notebook column."""
    width, height = size
    long_side = max(width, height)
    scale = 1.0
    if long_side > DISPLAY_LONG_SIDE:
        scale = DISPLAY_LONG_SIDE / long_side
    elif long_side < DISPLAY_MIN_SIDE:
        scale = DISPLAY_MIN_SIDE / long_side
    return max(1, round(width * scale)), max(1, round(height * scale))


def overlay_figures_html(response: QwenResponse) -> str:
    """One static <img> per image that has boxes or points (or document regions)."""
    figures = []
    for index in _marked_images(response):
        image = response.images[index]
        try:
            picture = _display_picture(image)
        except InputError as error:
            figures.append(f"<p><em>{html.escape(str(error))}</em></p>")
            continue
        drawn = draw_items(picture, image, response, index)
        alt, caption = _figure_text(response, index)
        figures.append(
            f'<figure class="qwen-nb-overlay" style="margin:4px 0">'
            f'<img src="{to_data_url(drawn, image.format)}" width="{drawn.width}" '
            f'height="{drawn.height}" alt="{html.escape(alt)}" style="max-width:100%;height:auto">'
            f"<figcaption style=\"font-size:0.85em\">{html.escape(caption)}</figcaption></figure>"
        )
    return "".join(figures)


def overlay_layers(response: QwenResponse,
                   shown: dict[int, tuple[int, int]]) -> list[dict[str, Any]]:
    """The live view's overlay, one part per image with marks: the marks drawn on a
    transparent layer (a small PNG) that the page lays over the picture, which travels
    only the first time (`shown`: the images sent so far and their sizes; updated)."""
    from PIL import Image

    parts: list[dict[str, Any]] = []
    for index in _marked_images(response):
        image = response.images[index]
        alt, caption = _figure_text(response, index)
        part: dict[str, Any] = {"image": index, "alt": alt, "caption": caption}
        size = shown.get(index)
        if size is None:
            try:
                picture = _display_picture(image)
            except InputError as error:
                parts.append({"image": index, "note": str(error)})
                continue
            size = shown[index] = picture.size
            part["base"] = to_data_url(picture, image.format)
        layer = Image.new("RGBA", size, (0, 0, 0, 0))
        draw_marks(layer, image, response, index)
        part.update(layer=to_data_url(layer, "PNG"), width=size[0], height=size[1])
        parts.append(part)
    return parts


def _marked_images(response: QwenResponse) -> list[int]:
    reading = response.interpretation
    return sorted({item.image for item in [*reading.boxes, *reading.points]
                   if item.image is not None} | set(_document_images(response)))


def _figure_text(response: QwenResponse, index: int) -> tuple[str, str]:
    """The picture's alt text and caption (plain text: escape for HTML)."""
    reading = response.interpretation
    source = response.images[index].source
    count = sum(1 for item in [*reading.boxes, *reading.points] if item.image == index)
    count += len(_document_regions(response, index))
    return (f"image {index + 1} ({source}) with {count} marks drawn",
            f"Image {index + 1}: {source}")


def _display_picture(image: PreparedImage) -> Image.Image:
    """The image as sent, in RGB at the size the output shows it."""
    from PIL import Image

    from ..media.origin import sent_image

    picture = sent_image(image)
    size = display_size(picture.size)
    if size == picture.size:
        return picture.convert("RGB")
    return picture.convert("RGB").resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)


def to_data_url(picture: Image.Image, source_format: str) -> str:
    """PNG for plots and line art (as the image was sent), JPEG for photos."""
    buffer = io.BytesIO()
    if source_format == "PNG":
        picture.save(buffer, "PNG", compress_level=6)
        mime = "image/png"
    else:
        picture.save(buffer, "JPEG", quality=_JPEG_QUALITY)
        mime = "image/jpeg"
    return f"data:{mime};base64,{base64.b64encode(buffer.getvalue()).decode('ascii')}"


def _tag(
    canvas: Image.Image,
    font_size: int,
    at: tuple[float, float],
    text: str,
    colour: tuple[int, int, int],
    *,
    above: bool = False,
) -> None:
    """A label on a filled patch of its colour, in black or white, whichever reads better."""
    patch = _label_patch(text if len(text) <= 40 else text[:39] + "…", font_size, colour)
    x, y = at
    if above:
        y = y - patch.height if y - patch.height >= 0 else y
    x = min(max(0, x), max(0, canvas.width - patch.width))
    y = min(max(0, y), max(0, canvas.height - patch.height))
    canvas.paste(patch, (round(x), round(y)))


@lru_cache(maxsize=256)
def _label_patch(text: str, font_size: int, colour: tuple[int, int, int]) -> Image.Image:
    """A label drawn once and pasted wherever it appears (labels repeat across boxes)."""
    from PIL import Image, ImageDraw

    font = _font(font_size)
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    left, top, right, bottom = measure.textbbox((0, 0), text, font=font)
    patch = Image.new("RGB", (right - left + 7, bottom - top + 5), colour)
    draw = ImageDraw.Draw(patch)
    draw.rectangle((0, 0, patch.width - 1, patch.height - 1), outline=_HALO)
    luminance = 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2]
    ink = (0, 0, 0) if luminance > 150 else (255, 255, 255)
    draw.text((3 - left, 2 - top), text, fill=ink, font=font)
    return patch


def _grow(corners: tuple[float, ...], by: float) -> tuple[float, ...]:
    x1, y1, x2, y2 = corners
    return (x1 - by, y1 - by, x2 + by, y2 + by)


@lru_cache(maxsize=16)
def _font(size: int) -> Any:
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: the small bitmap font
        return ImageFont.load_default()


def _document_regions(response: QwenResponse, index: int) -> list[Any]:
    document = response.interpretation.document
    if document is None:
        return []
    return [region for region in getattr(document, "regions", ()) if region.image == index]


def _document_images(response: QwenResponse) -> list[int]:
    document = response.interpretation.document
    if document is None:
        return []
    return [r.image for r in getattr(document, "regions", ()) if r.image is not None]
