"""Turning notebook values (arrays, figures, files, URLs) into PIL images or encoded bytes.

numpy, matplotlib, PIL and httpx are imported inside the functions that need them.
"""

from __future__ import annotations

import io
import math
import os
import time
from typing import TYPE_CHECKING, Any

from .._errors import ImageError
from .plan import Budget, plan_size

if TYPE_CHECKING:
    from PIL import Image

# Figures are drawn at this many dots per inch at most (crisp text)...
_FIGURE_MAX_DPI = 200.0
# ...and at least this many, so a huge figure is not drawn at a uselessly low resolution.
_FIGURE_MIN_DPI = 50.0


def array_to_image(array: Any, label: str) -> tuple[Image.Image, tuple[str, ...]]:
    """A numpy array (HxW, HxWx1, HxWx3, HxWx4) -> PIL image, rescaling values if needed."""
    import numpy as np
    from PIL import Image

    name = f"`{label}`"
    shape = array.shape
    if array.ndim == 3 and shape[2] == 1:
        array = array[:, :, 0]
    if not (array.ndim == 2 or (array.ndim == 3 and shape[2] in (3, 4))):
        hint = ""
        if array.ndim == 3 and shape[0] in (1, 3, 4) and shape[2] not in (1, 3, 4):
            hint = f" It looks channels-first; pass {label}.transpose(1, 2, 0)."
        elif array.ndim == 4 and shape[0] == 1:
            hint = f" It looks like a batch of one; pass {label}[0]."
        raise ImageError(
            f"{name} is a numpy array of shape {shape}, which is not an image. Expected "
            f"H x W (grey), H x W x 3 (RGB) or H x W x 4 (RGBA).{hint}"
        )
    if array.size == 0:
        raise ImageError(
            f"{name} is an empty numpy array (shape {shape}); there is nothing to send."
        )
    kind = array.dtype.kind
    notes: tuple[str, ...] = ()
    if kind == "b":
        pixels = array.astype(np.uint8)
        pixels *= 255
    elif array.dtype == np.uint8:
        pixels = array  # already 0..255: no range pass over the pixels
    elif kind in "ui":
        low, high = int(array.min()), int(array.max())
        if low >= 0 and high <= 255:
            pixels = array.astype(np.uint8, copy=False)
        else:
            pixels = _stretch(array, low, high)
            notes = (f"{array.dtype} array rescaled from [{low}, {high}] to [0, 255]",)
    elif kind == "f":
        pixels, notes = _float_to_uint8(array, name)
    else:
        raise ImageError(
            f"{name} is a numpy array of dtype {array.dtype}, which cannot be shown as an image. "
            "Use bool, integer or float values (uint8 0..255 or float 0..1)."
        )
    return Image.fromarray(np.ascontiguousarray(pixels)), notes


def figure_image(figure: Any, budget: Budget) -> tuple[Image.Image, float]:
    """Draw a matplotlib Figure once, at exactly its planned size on the grid; (image, dpi).

    The dpi fills (never exceeds) the pixel budget, and the size in inches is nudged for
    this one draw so that width and height land on the grid: nothing is resampled after.
    The figure's own size is restored afterwards.
    """
    from PIL import Image

    width_in, height_in = (float(v) for v in figure.get_size_inches())
    area_in = max(width_in * height_in, 1e-6)
    dpi = math.sqrt(budget.max_pixels / area_in)
    dpi = min(_FIGURE_MAX_DPI, max(_FIGURE_MIN_DPI, dpi))
    natural = (max(1, round(width_in * dpi)), max(1, round(height_in * dpi)))
    width, height = plan_size(*natural, budget)
    dpi = math.sqrt(width * height / area_in)
    buffer = io.BytesIO()
    original = figure.get_size_inches().copy()
    try:
        # Agg truncates size x dpi to whole pixels: aim half a pixel past the target.
        figure.set_size_inches((width + 0.5) / dpi, (height + 0.5) / dpi, forward=False)
        # Raw RGBA: one draw, no PNG round trip; transparency is flattened by the codec.
        figure.savefig(buffer, format="rgba", dpi=dpi)
    finally:
        figure.set_size_inches(original, forward=False)
    raw = buffer.getbuffer()
    if len(raw) != width * height * 4:  # a backend that sized it its own way
        raise ImageError(
            f"matplotlib drew the figure at an unexpected size ({len(raw) // 4} pixels, "
            f"expected {width}x{height}); pass fig.savefig(...) bytes instead."
        )
    return Image.frombuffer("RGBA", (width, height), raw, "raw", "RGBA", 0, 1), dpi


def root_figure(artist: Any) -> Any:
    """The top-level Figure holding an Axes or SubFigure (a Figure is its own root)."""
    figure = artist
    # `.figure` climbs Axes -> (Sub)Figure -> Figure; the root points at itself or None.
    for _ in range(16):
        parent = getattr(figure, "figure", None)
        if parent is None or parent is figure:
            break
        figure = parent
    return figure


def current_figure(name: str) -> Any:
    """pyplot's current figure, without creating an empty one."""
    import matplotlib.pyplot as plt

    if not plt.get_fignums():
        raise ImageError(
            f"{name} means matplotlib's current figure, but there is none open. Notebooks close "
            "figures when a cell ends: pass the Figure itself (fig = plt.gcf() in the plotting "
            "cell), or plot in the same cell."
        )
    return plt.gcf()


def read_file(path: str, name: str) -> bytes:
    """A file's bytes, with messages that say what is wrong with the path."""
    full = os.path.abspath(os.path.expanduser(path))
    if not os.path.exists(full):
        raise ImageError(
            f"{name}: no such file: {path} (looked for {full}). Check the path; relative paths "
            f"are relative to the working directory {os.getcwd()}."
        )
    if os.path.isdir(full):
        raise ImageError(f"{name}: {path} is a directory, not an image file.")
    try:
        with open(full, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise ImageError(f"{name}: cannot read {path}: {exc.strerror or exc}.") from None


def fetch_url(url: str, name: str, *, timeout: float, max_bytes: int) -> bytes:
    """GET an image URL with a size cap and an overall deadline."""
    import httpx

    deadline = time.monotonic() + timeout
    chunks: list[bytes] = []
    total = 0
    try:
        with httpx.Client(timeout=timeout, follow_redirects=True) as client:
            with client.stream("GET", url, headers={"Accept": "image/*"}) as response:
                if response.status_code >= 400:
                    raise ImageError(
                        f"{name}: fetching {url} failed with HTTP {response.status_code} "
                        f"{response.reason_phrase}; check the URL."
                    )
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > max_bytes:
                    raise ImageError(_too_big(name, url, int(declared), max_bytes))
                for chunk in response.iter_bytes():
                    total += len(chunk)
                    if total > max_bytes:
                        raise ImageError(_too_big(name, url, total, max_bytes))
                    if time.monotonic() > deadline:
                        raise httpx.ReadTimeout("overall deadline passed")
                    chunks.append(chunk)
    except httpx.TimeoutException:
        raise ImageError(
            f"{name}: fetching {url} took longer than {timeout:g} s; try again, raise "
            "url_timeout, or download the image and pass the file."
        ) from None
    except httpx.HTTPError as exc:
        raise ImageError(
            f"{name}: could not fetch {url} ({type(exc).__name__}: {exc}); check the URL and "
            "your connection, or download the image and pass the file."
        ) from None
    return b"".join(chunks)


def _too_big(name: str, url: str, size: int, limit: int) -> str:
    return (
        f"{name}: {url} is over the {limit / 1e6:g} MB limit for inlined images "
        f"({size / 1e6:.1f} MB so far); send it as a URL, or raise max_url_bytes."
    )


# Values are scaled in blocks this many elements long: the float temporary stays in cache
# and no full-size float copy of a 12-MP array is ever made.
_BLOCK_ELEMENTS = 1 << 18


def _stretch(array: Any, low: float, high: float) -> Any:
    """Linearly map [low, high] onto 0..255, rounding, with one uint8 output and no copy."""
    import numpy as np

    if high <= low:
        return np.zeros(array.shape, dtype=np.uint8)
    return _scale_to_uint8(array, 255.0 / (high - low), -low * 255.0 / (high - low))


def _scale_to_uint8(
    array: Any, scale: float, offset: float, *, only_if_unit_range: bool = False
) -> Any:
    """round(array * scale + offset) as uint8, block by block (truncating x + 0.5 rounds).

    `only_if_unit_range`: check each block lies in [0, 1] while it is in cache, and return
    None at the first that does not (or holds NaN): one pass over memory instead of three.
    """
    import numpy as np

    source = np.ascontiguousarray(array).reshape(-1)
    out = np.empty(source.shape, dtype=np.uint8)
    block = np.empty(min(_BLOCK_ELEMENTS, source.size), dtype=np.float32)
    scale32, shift32 = np.float32(scale), np.float32(offset + 0.5)
    for start in range(0, source.size, _BLOCK_ELEMENTS):
        chunk = source[start : start + _BLOCK_ELEMENTS]
        if only_if_unit_range and not (chunk.min() >= 0.0 and chunk.max() <= 1.0):
            return None  # NaN fails both comparisons too
        work = block[: chunk.size]
        np.multiply(chunk, scale32, out=work, casting="unsafe")
        np.add(work, shift32, out=work)
        if not only_if_unit_range:
            # Float error can land a hair outside [0, 255]; casting that would wrap.
            np.clip(work, 0.0, 255.0, out=work)
        np.copyto(out[start : start + chunk.size], work, casting="unsafe")
    return out.reshape(array.shape)


def _float_to_uint8(array: Any, name: str) -> tuple[Any, tuple[str, ...]]:
    import numpy as np

    # The usual case, values in [0, 1], in one pass: checked block by block as converted.
    pixels = _scale_to_uint8(array, 255.0, 0.0, only_if_unit_range=True)
    if pixels is not None:
        return pixels, ()
    # min and max propagate NaN and show inf: finite extremes mean every value is finite,
    # so only then is a full-size isfinite mask needed.
    low, high = float(array.min()), float(array.max())
    notes: list[str] = []
    if not (math.isfinite(low) and math.isfinite(high)):
        finite = np.isfinite(array)
        if not finite.any():
            raise ImageError(f"{name} has no finite values (all NaN or inf); nothing to show.")
        notes.append(f"{int((~finite).sum())} NaN/inf values shown as the minimum")
        low = float(array[finite].min())
        array = np.where(finite, array, array.dtype.type(low))
        high = float(array.max())
    if low >= 0.0 and high <= 1.0:
        return _scale_to_uint8(array, 255.0, 0.0), tuple(notes)
    notes.append(f"float array rescaled from [{low:.4g}, {high:.4g}] to [0, 255]")
    return _stretch(array, low, high), tuple(notes)
