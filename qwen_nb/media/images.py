"""Anything image-like a notebook holds -> images ready to send, within Qwen's pixel budget.

`is_image_like` is cheap and imports nothing heavy, so `%%qwen` can ask it about every
`{name}` in a cell. `prepare_images` refuses bad input with an ImageError before anything
is sent. Pillow, numpy, matplotlib and httpx are imported only when a value needs them.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import io
import os
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from .._errors import ImageError
from .._types import DEFAULT_MAX_PIXELS, DEFAULT_MIN_PIXELS, QWEN3_VL_UNIT, PreparedImage
from .codec import prepare_encoded, prepare_pil
from .origin import remember
from .pdf import is_pdf_like
from .plan import Budget, plan_size, processor_budget
from .sniff import (
    has_image_extension,
    is_data_url,
    is_http_url,
    is_image_path,
    is_image_url,
    sniff_format,
)
from .sources import (
    array_to_image,
    current_figure,
    fetch_url,
    figure_image,
    read_file,
    root_figure,
)

__all__ = [
    "ACCEPTED_TYPES",
    "Budget",
    "PreparedImage",
    "check_payload_size",
    "is_image_like",
    "plan_size",
    "prepare_images",
]

ACCEPTED_TYPES = (
    "PIL.Image.Image; a numpy array (H x W, H x W x 3 or H x W x 4); a matplotlib Figure or "
    "Axes, or matplotlib.pyplot for its current figure; bytes, bytearray or io.BytesIO holding "
    "an encoded image; a path (str or pathlib.Path) to a JPEG, PNG, WEBP, GIF, BMP or TIFF "
    "file; a PDF (path, bytes or qwen_nb.pdf_pages(...)); an http(s) URL; "
    "IPython.display.Image; or a list or tuple of these"
)

# Lists of lists are fine; a list that contains itself is not.
_MAX_NESTING = 8
# Threads preparing images at once (Pillow releases the GIL; more than the cores buys
# nothing and holds more decoded pixels in memory).
_MAX_POOL_THREADS = 4
# Arrays smaller than this on a side are data (a 3x3 matrix, N x 3 points), not pictures.
_MIN_ARRAY_SIDE = 8


def is_image_like(value: Any) -> bool:
    """True if `prepare_images` would treat `value` as an image (cheap; imports nothing)."""
    return _is_image_like(value, 0)


def prepare_images(value: Any, *, label: str, **budget_and_urls: Any) -> list[PreparedImage]:
    """One value (or a list/tuple of them) -> PreparedImage list, in order.

    `label` is the expression the user wrote; it names the image in sources and errors.
    Keywords as for `prepare_each` (max_pixels, min_pixels, unit, inline_urls, ...).
    """
    return prepare_labelled([(value, label)], **budget_and_urls)


def prepare_labelled(values: Sequence[tuple[Any, str]], **budget_and_urls: Any
                     ) -> list[PreparedImage]:
    """(value, label) pairs -> PreparedImage list in input order, several at once.

    Keywords as for `prepare_each`.
    """
    return [image for group in prepare_each(values, **budget_and_urls) for image in group]


def prepare_each(
    values: Sequence[tuple[Any, str]],
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    min_pixels: int = DEFAULT_MIN_PIXELS,
    unit: int = QWEN3_VL_UNIT,
    inline_urls: bool = False,
    url_timeout: float = 10.0,
    max_url_bytes: int = 20_000_000,
) -> list[list[PreparedImage]]:
    """(value, label) pairs -> one PreparedImage list per value (a list or a PDF gives
    several), in input order, all of them prepared in one pass over the shared pool.

    Pillow, numpy and zlib release the GIL, so images are prepared on a small shared pool
    of threads; if any fails, the first failing one in input order is raised.
    """
    budget_note = None
    if unit == QWEN3_VL_UNIT and min_pixels == DEFAULT_MIN_PIXELS:
        max_pixels, budget_note = processor_budget(max_pixels)
    context = _Context(
        budget=Budget(unit=unit, min_pixels=min_pixels, max_pixels=max_pixels),
        inline_urls=inline_urls,
        url_timeout=url_timeout,
        max_url_bytes=max_url_bytes,
    )
    leaves: list[tuple[Any, str]] = []
    owners: list[int] = []  # the index in `values` each leaf came from
    for owner, (value, label) in enumerate(values):
        _flatten(value, label, leaves, 0)
        owners.extend([owner] * (len(leaves) - len(owners)))
    # A PDF is one leaf but many images (its pages); PDFium renders them here, in order.
    pages = {index: _prepare_pdf(value, label, context)
             for index, (value, label) in enumerate(leaves) if _is_pdf(value)}
    images = [leaf for index, leaf in enumerate(leaves) if index not in pages]
    if len(images) < 2:
        singles = [_prepare_one(value, label, context) for value, label in images]
    else:
        singles = _prepare_in_parallel(images, context)
    next_single = iter(singles)
    groups: list[list[PreparedImage]] = [[] for _ in values]
    for index, (value, _) in enumerate(leaves):
        if index in pages:
            groups[owners[index]].extend(pages[index])
            continue
        image = next(next_single)
        if budget_note is not None:
            image = dataclasses.replace(image, notes=(*image.notes, budget_note))
        remember(image, value)  # so box.crop() can cut from the full-resolution original
        groups[owners[index]].append(image)
    return groups


def _is_pdf(value: Any) -> bool:
    """A PDF leaf, including a path ending in .pdf that does not exist (its own message)."""
    return is_pdf_like(value) or (
        isinstance(value, (str, os.PathLike)) and os.fspath(value).lower().endswith(".pdf"))


def _prepare_pdf(value: Any, label: str, context: _Context) -> list[PreparedImage]:
    from .pdf import prepare_pdf

    return prepare_pdf(value, label, context.budget)


def check_payload_size(images: Sequence[PreparedImage], max_total_bytes: int) -> None:
    """Raise ImageError if the images' URLs add up to more than `max_total_bytes`."""
    sizes = [(len(image.url), image) for image in images]
    total = sum(size for size, _ in sizes)
    if total <= max_total_bytes:
        return
    # Name the largest images, as many as it takes to get back under the cap.
    culprits: list[str] = []
    remaining = total
    for size, image in sorted(sizes, key=lambda pair: pair[0], reverse=True):
        shape = "x".join(map(str, image.sent_size)) if image.sent_size else "?"
        culprits.append(f"{image.source} ({_mb(size)}, {shape} {image.format})")
        remaining -= size
        if remaining <= max_total_bytes:
            break
    count = f"{len(sizes)} image{'s' if len(sizes) != 1 else ''}"
    raise ImageError(
        f"The {count} come to {_mb(total)} in the request, over the {_mb(max_total_bytes)} "
        f"limit. Shrink {'; '.join(culprits)} (a lower --max-pixels, or crop), or send fewer "
        "images."
    )


# --- dispatch ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Context:
    budget: Budget
    inline_urls: bool
    url_timeout: float
    max_url_bytes: int


def _flatten(value: Any, label: str, out: list[tuple[Any, str]], depth: int) -> None:
    if isinstance(value, (list, tuple)):
        kind = type(value).__name__
        if not value:
            raise ImageError(f"`{label}` is an empty {kind}; there is no image in it to send.")
        if depth >= _MAX_NESTING:
            raise ImageError(f"`{label}` is nested more than {_MAX_NESTING} lists deep.")
        for index, item in enumerate(value):
            _flatten(item, f"{label}[{index}]", out, depth + 1)
        return
    out.append((value, label))


def _prepare_in_parallel(leaves: list[tuple[Any, str]], context: _Context) -> list[PreparedImage]:
    """Prepare on the shared pool, keeping input order; matplotlib (not thread-safe) and
    lazily opened PIL images (one object may appear twice) are handled here first."""
    pool = image_pool()
    futures: list[Future[PreparedImage]] = []
    try:
        for value, label in leaves:
            if _is_pyplot(value) or _is_matplotlib_artist(value):
                futures.append(_done_now(_prepare_one, value, label, context))
                continue
            pil_image = _module_type("PIL.Image", "Image")
            if pil_image is not None and isinstance(value, pil_image):
                _load_pil(value, label)
            futures.append(pool.submit(_prepare_one, value, label, context))
        return [future.result() for future in futures]
    finally:
        for future in futures:
            future.cancel()  # after a failure, do not prepare what will not be sent


_POOL_LOCK = threading.Lock()
_POOL: list[ThreadPoolExecutor] = []


def image_pool() -> ThreadPoolExecutor:
    """The process-wide pool for image preparation: one thread per core, at most 4."""
    with _POOL_LOCK:
        if not _POOL:
            workers = max(1, min(_MAX_POOL_THREADS, os.cpu_count() or 1))
            _POOL.append(ThreadPoolExecutor(workers, thread_name_prefix="qwen-images"))
        return _POOL[0]


def _done_now(function: Any, *args: Any) -> Future[PreparedImage]:
    """Run in this thread; the outcome in a Future so results and errors keep their place."""
    future: Future[PreparedImage] = Future()
    try:
        future.set_result(function(*args))
    except BaseException as error:  # re-raised by .result() in input order
        future.set_exception(error)
    return future


def _prepare_one(value: Any, label: str, context: _Context) -> PreparedImage:
    name = f"`{label}`"
    budget = context.budget
    pil_image = _module_type("PIL.Image", "Image")
    if pil_image is not None and isinstance(value, pil_image):
        return _prepare_pil_value(value, label, budget)
    ndarray = _module_type("numpy", "ndarray")
    if ndarray is not None and isinstance(value, ndarray):
        image, notes = array_to_image(value, label)
        shape = "x".join(map(str, value.shape))
        return prepare_pil(
            image, budget, source=f"{label} (numpy {value.dtype} {shape})", notes=notes
        )
    figure = _as_figure(value, name)
    if figure is not None:
        kind = "current figure" if _is_pyplot(value) else type(value).__name__
        image, dpi = figure_image(figure, budget)
        return prepare_pil(
            image,
            budget,
            source=f"{label} (matplotlib {kind})",
            notes=(f"drawn at {dpi:.0f} dpi",),
            orientation=1,
            source_format="matplotlib",
        )
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _prepare_bytes(bytes(value), label, budget)
    if isinstance(value, io.BytesIO):
        return _prepare_bytes(value.getvalue(), label, budget)
    if isinstance(value, str):
        return _prepare_str(value, label, context)
    if isinstance(value, os.PathLike):
        path = os.fspath(value)
        if isinstance(path, str):
            return _prepare_path(path, label, budget)
    ipython_image = _module_type("IPython.core.display", "Image")
    if ipython_image is not None and isinstance(value, ipython_image):
        return _prepare_ipython_image(value, label, context)
    raise ImageError(
        f"{name} is a {_type_name(value)}, which cannot be sent as an image. "
        f"Accepted: {ACCEPTED_TYPES}."
    )


def _prepare_pil_value(image: Any, label: str, budget: Budget) -> PreparedImage:
    width, height = image.size
    source = f"{label} (PIL {image.mode} {width}x{height})"
    _load_pil(image, label)
    return prepare_pil(image, budget, source=source)


def _load_pil(image: Any, label: str) -> None:
    try:
        image.load()  # a lazily opened file fails here if it is truncated
    except Exception as exc:
        raise ImageError(
            f"`{label}` could not be decoded ({type(exc).__name__}: {exc}); its file is "
            "probably truncated or corrupt."
        ) from None


def _prepare_bytes(data: bytes, label: str, budget: Budget) -> PreparedImage:
    fmt = sniff_format(data[:32]) or "encoded"
    source = f"{label} ({fmt} bytes, {_kb(len(data))})"
    return prepare_encoded(data, budget, name=f"`{label}`", source=source)


def _prepare_str(text: str, label: str, context: _Context) -> PreparedImage:
    if is_data_url(text):
        try:
            data = base64.b64decode(text.partition(",")[2], validate=True)
        except (binascii.Error, ValueError):
            raise ImageError(f"`{label}` is a data: URL whose base64 is invalid.") from None
        return _prepare_bytes(data, label, context.budget)
    if is_http_url(text):
        return _prepare_url(text, label, context)
    if not has_image_extension(text) and not os.path.exists(os.path.expanduser(text)):
        raise ImageError(
            f"`{label}` is a str that is neither an image file nor an http(s) URL "
            f"({_short(text, 60)!r}). Accepted: {ACCEPTED_TYPES}."
        )
    return _prepare_path(text, label, context.budget)


def _prepare_path(path: str, label: str, budget: Budget) -> PreparedImage:
    name = f"`{label}`"
    data = read_file(path, name)
    source = _short(path) if label.strip("'\"") == path else f"{label} ({_short(path)})"
    return prepare_encoded(data, budget, name=f"{name} ({path})", source=source)


def _prepare_url(url: str, label: str, context: _Context) -> PreparedImage:
    source = _short(url) if label.strip("'\"") == url else f"{label} ({_short(url)})"
    if not context.inline_urls:
        extension = os.path.splitext(url.split("?", 1)[0])[1].lower().lstrip(".")
        return PreparedImage(
            url=url,
            source=source,
            format={"jpg": "JPEG", "jpeg": "JPEG", "tif": "TIFF"}.get(extension, extension.upper()),
            digest=hashlib.sha256(url.encode()).hexdigest(),
            notes=("sent as a URL: the provider downloads it",),
        )
    name = f"`{label}`"
    data = fetch_url(url, name, timeout=context.url_timeout, max_bytes=context.max_url_bytes)
    return prepare_encoded(
        data, context.budget, name=f"{name} ({url})", source=source, notes=("fetched and inlined",)
    )


def _prepare_ipython_image(image: Any, label: str, context: _Context) -> PreparedImage:
    data = getattr(image, "data", None)
    if isinstance(data, (bytes, bytearray)) and data:
        fmt = (getattr(image, "format", None) or sniff_format(bytes(data[:32])) or "").upper()
        source = f"{label} (IPython Image, {fmt or 'encoded'})"
        return prepare_encoded(bytes(data), context.budget, name=f"`{label}`", source=source)
    url = getattr(image, "url", None)
    if isinstance(url, str) and url:
        return _prepare_url(url, label, context)
    filename = getattr(image, "filename", None)
    if isinstance(filename, str) and filename:
        return _prepare_path(filename, label, context.budget)
    raise ImageError(f"`{label}` is an IPython.display.Image with no data, url or filename.")


def _as_figure(value: Any, name: str) -> Any:
    """The matplotlib Figure to render for a Figure, SubFigure, Axes or pyplot; else None."""
    if _is_pyplot(value):
        return current_figure(name)
    if _is_matplotlib_artist(value):
        return root_figure(value)
    return None


# --- cheap recognition -------------------------------------------------------------------


def _is_image_like(value: Any, depth: int) -> bool:
    if is_pdf_like(value):
        return True
    if isinstance(value, str):
        if is_data_url(value):
            return True
        if is_http_url(value):
            return is_image_url(value)
        return is_image_path(value)
    if isinstance(value, (bytes, bytearray)):
        return sniff_format(bytes(value[:32])) is not None
    if isinstance(value, io.BytesIO):
        return sniff_format(bytes(value.getbuffer()[:32])) is not None
    if isinstance(value, (list, tuple)):
        return (
            bool(value)
            and depth < _MAX_NESTING
            and all(_is_image_like(item, depth + 1) for item in value)
        )
    if isinstance(value, os.PathLike):
        try:
            return is_image_path(value)
        except TypeError:
            return False
    pil_image = _module_type("PIL.Image", "Image")
    if pil_image is not None and isinstance(value, pil_image):
        return True
    ndarray = _module_type("numpy", "ndarray")
    if ndarray is not None and isinstance(value, ndarray):
        return _is_image_array(value)
    if _is_pyplot(value) or _is_matplotlib_artist(value):
        return True
    ipython_image = _module_type("IPython.core.display", "Image")
    return ipython_image is not None and isinstance(value, ipython_image)


def _is_image_array(array: Any) -> bool:
    shape = array.shape
    if not (len(shape) == 2 or (len(shape) == 3 and shape[2] in (1, 3, 4))):
        return False
    return min(shape[0], shape[1]) >= _MIN_ARRAY_SIDE and array.dtype.kind in "biuf"


def _is_pyplot(value: Any) -> bool:
    pyplot = sys.modules.get("matplotlib.pyplot")
    return pyplot is not None and value is pyplot


def _is_matplotlib_artist(value: Any) -> bool:
    figure_base = _module_type("matplotlib.figure", "FigureBase")
    axes = _module_type("matplotlib.axes", "Axes")
    return (figure_base is not None and isinstance(value, figure_base)) or (
        axes is not None and isinstance(value, axes)
    )


def _module_type(module: str, attribute: str) -> type | None:
    """A class from a module only if that module is already imported: never import it."""
    loaded = sys.modules.get(module)
    found = getattr(loaded, attribute, None) if loaded is not None else None
    return found if isinstance(found, type) else None


# --- wording -----------------------------------------------------------------------------


def _type_name(value: Any) -> str:
    cls = type(value)
    return (
        cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    )


def _short(text: str, limit: int = 80) -> str:
    if len(text) <= limit:
        return text
    keep = (limit - 1) // 2
    return f"{text[:keep]}…{text[-keep:]}"


def _kb(nbytes: int) -> str:
    return f"{nbytes / 1000:.1f} kB"


def _mb(nbytes: int) -> str:
    return f"{nbytes / 1e6:.1f} MB"
