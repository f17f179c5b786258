"""Optional libvips fast path (`pip install qwen-nb[fast]`): shrink a big PNG while decoding.

Used automatically when pyvips imports *and* libvips loads; otherwise (or with
QWEN_NB_PYVIPS=0) everything goes through Pillow. Only the decode and the resize move
here: the result goes back to Pillow and is encoded exactly as the Pillow path encodes it.
"""

from __future__ import annotations

import functools
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from PIL import Image

_MODES = {1: "L", 3: "RGB"}


@functools.cache
def _load_pyvips() -> Any:
    try:
        import pyvips
    except (ImportError, OSError):  # pyvips raises OSError when libvips itself is missing
        return None
    return pyvips


def pyvips_module() -> Any:
    """pyvips when it and libvips are usable and not switched off, else None."""
    if os.environ.get("QWEN_NB_PYVIPS", "").strip().lower() in ("0", "off", "false", "no"):
        return None
    return _load_pyvips()


def shrink_encoded(data: bytes, size: tuple[int, int]) -> Image.Image | None:
    """Decode and shrink in one streaming pass to exactly `size`; None to use Pillow instead.

    None on any libvips failure, so Pillow reports truncation and corruption in its words.
    """
    pyvips = pyvips_module()
    if pyvips is None:
        return None
    from PIL import Image

    width, height = size
    try:
        # fail_on=warning: a truncated or corrupt file must fail, not come back half grey.
        thumb = pyvips.Image.thumbnail_buffer(
            data, width, height=height, size="force", option_string="fail_on=warning"
        )
        if thumb.format != "uchar" or thumb.bands not in _MODES or thumb.interpretation not in (
            "srgb", "b-w"
        ):
            return None
        if (thumb.width, thumb.height) != size:
            return None
        pixels = thumb.write_to_memory()
    except pyvips.Error:
        return None
    mode = _MODES[thumb.bands]
    return Image.frombuffer(mode, size, pixels, "raw", mode, 0, 1)
