"""Small thumbnails of the images sent, as data: URLs for the saved output.

Made from the image's own data URL when the output is rendered (never from a remote URL:
the saved notebook must fetch nothing), and cached by the image's digest, so the full
payload never reaches the notebook file.
"""

from __future__ import annotations

import base64
import io
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .._types import PreparedImage

THUMBNAIL_EDGE = 96  # px, the longer side
_MAX_SOURCE = 64 * 1024 * 1024  # characters of a data URL worth decoding for a thumbnail


def thumbnail_url(image: PreparedImage) -> str | None:
    """A JPEG (or PNG for images with few colours) data URL at most 96 px across, or
    None when the image was sent as a remote URL or cannot be read."""
    url = image.url
    if not url.startswith("data:image/") or len(url) > _MAX_SOURCE:
        return None
    return _thumbnail(image.digest or url[-64:], url)


@lru_cache(maxsize=256)
def _thumbnail(key: str, url: str) -> str | None:
    from PIL import Image, UnidentifiedImageError

    try:
        raw = base64.b64decode(url.split(",", 1)[1], validate=False)
        with Image.open(io.BytesIO(raw)) as source:
            source.draft("RGB", (THUMBNAIL_EDGE * 2, THUMBNAIL_EDGE * 2))
            picture = source.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError, IndexError,
            Image.DecompressionBombError):
        return None
    picture.thumbnail((THUMBNAIL_EDGE, THUMBNAIL_EDGE))
    out = io.BytesIO()
    picture.save(out, "JPEG", quality=70)
    return "data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode("ascii")
