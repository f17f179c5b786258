"""Where a sent image came from, so a box can be cropped from the full-resolution original.

In memory only, never saved: a weak reference to a PIL image or array, a file path to
read again, or (bounded) the bytes themselves. When the original is gone, the image as
sent (decoded from its data URL) stands in.
"""

from __future__ import annotations

import base64
import os
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._errors import ImageError
from .._types import PreparedImage

if TYPE_CHECKING:
    from PIL import Image

# Loaders by image digest; bytes are held strongly, so keep only the most recent ones.
_MAX_ORIGINS = 64
_origins: OrderedDict[str, Callable[[], Any]] = OrderedDict()
_lock = threading.Lock()


def remember(image: PreparedImage, value: Any) -> None:
    """Note how to get `image`'s original back from the value the user passed."""
    loader = _loader_for(value)
    if loader is not None:
        remember_loader(image, loader)


def remember_loader(image: PreparedImage, loader: Callable[[], Any]) -> None:
    """Note a function that returns `image`'s original (or None when it is gone)."""
    if not image.digest:
        return
    with _lock:
        _origins[image.digest] = loader
        _origins.move_to_end(image.digest)
        while len(_origins) > _MAX_ORIGINS:
            _origins.popitem(last=False)


def original_image(image: PreparedImage) -> Image.Image:
    """The full-resolution original (EXIF orientation applied) or, failing that, the image
    as sent. Raises ImageError for an image sent as a URL whose original is unknown."""
    with _lock:
        loader = _origins.get(image.digest)
    original = loader() if loader is not None else None
    if original is not None:
        return original
    return sent_image(image)


def sent_image(image: PreparedImage) -> Image.Image:
    """The image exactly as it was sent, decoded from its data URL."""
    import io

    from PIL import Image

    if not image.has_payload:
        raise ImageError(
            f"{image.source}: batch results keep no image payloads (only digests and sizes), "
            "and its original is no longer known; pass the image itself to crop or draw on it."
        )
    if not image.url.startswith("data:"):
        raise ImageError(
            f"{image.source} was sent as a URL, so qwen_nb has no pixels of it; pass the "
            "image itself (or use --inline-urls) to crop or draw on it."
        )
    data = base64.b64decode(image.url.partition(",")[2])
    decoded = Image.open(io.BytesIO(data))
    decoded.load()
    return decoded


def _loader_for(value: Any) -> Callable[[], Any] | None:
    import sys

    pil = sys.modules.get("PIL.Image")
    if pil is not None and isinstance(value, pil.Image):
        reference = weakref.ref(value)
        return lambda: _upright(reference())
    numpy = sys.modules.get("numpy")
    if numpy is not None and isinstance(value, numpy.ndarray):
        array_reference = weakref.ref(value)
        return lambda: _from_array(array_reference())
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        return lambda: _decode(data)
    if isinstance(value, (str, os.PathLike)):
        path = os.fspath(value)
        if isinstance(path, str) and not path.startswith(("http:", "https:", "data:")):
            return lambda: _read(path)
    return None


def _upright(image: Any) -> Any:
    """The image as shown (EXIF orientation applied); the object itself when upright (the
    caller copies before drawing, and a 12 MP copy costs tens of milliseconds)."""
    if image is None:
        return None
    from PIL import ImageOps

    from .codec import exif_orientation

    return image if exif_orientation(image) == 1 else ImageOps.exif_transpose(image)


def _from_array(array: Any) -> Any:
    if array is None:
        return None
    from .sources import array_to_image

    return array_to_image(array, "array")[0]


def _decode(data: bytes) -> Any:
    import io

    from PIL import Image

    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except Exception:
        return None
    return _upright(image)


def _read(path: str) -> Any:
    try:
        with open(os.path.expanduser(path), "rb") as handle:
            return _decode(handle.read())
    except OSError:
        return None
