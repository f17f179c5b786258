"""PDF pages -> page images within Qwen's pixel budget, rendered by PDFium (pypdfium2).

pypdfium2 is an optional extra (`pip install qwen-nb[pdf]`), imported only when a PDF is
sent. Each page is rendered at the scale that gives its planned size directly (no second
resize), and encrypted, corrupt or empty PDFs are refused before anything is sent.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass
from typing import Any

from .._errors import ImageError, InputError
from .._types import PreparedImage
from .plan import Budget, plan_size

DEFAULT_MAX_PAGES = 20
# A page's "original" size for planning: rendered at this many dots per inch...
_PLANNING_DPI = 300
# ...and crops (box.crop()) come from a render this many times finer than the page sent.
_CROP_SCALE = 3.0
_CROP_MAX_PIXELS = 40_000_000
_PAGES = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d*)\s*)?$")
# Pages that come to more visual tokens than this get the figure in their notes.
_LARGE_TOKENS = 8_000


@dataclass(frozen=True)
class PdfPages:
    """A PDF with a page selection, as `qwen_nb.pdf_pages(path, pages="1-3,7")` makes it."""

    source: Any  # a path (str / PathLike) or the PDF's bytes
    pages: str | None = None  # "1-3,7"; None: every page
    max_pages: int = DEFAULT_MAX_PAGES

    def __repr__(self) -> str:
        what = f"{len(self.source)} bytes" if isinstance(self.source, bytes) else self.source
        return f"PdfPages({what!r}, pages={self.pages!r}, max_pages={self.max_pages})"


def pdf_pages(source: Any, pages: str | None = None, *, max_pages: int = DEFAULT_MAX_PAGES
              ) -> PdfPages:
    """Choose pages of a PDF (path or bytes) to send: `pages="1-3,7"` (1-based, "5-" to the
    end), at most `max_pages` of them. Pass the result wherever an image goes."""
    if not isinstance(max_pages, int) or isinstance(max_pages, bool) or max_pages < 1:
        raise InputError(f"max_pages = {max_pages!r} is not allowed: use a whole number >= 1.")
    if pages is not None and not isinstance(pages, str):
        pages = ",".join(str(p) for p in pages)  # a list of page numbers
    return PdfPages(source, pages, max_pages)


def is_pdf_like(value: Any) -> bool:
    """A PdfPages, PDF bytes, or a path to an existing .pdf file (cheap; imports nothing)."""
    if isinstance(value, PdfPages):
        return True
    if isinstance(value, (bytes, bytearray)):
        return bytes(value[:5]) == b"%PDF-"
    if isinstance(value, (str, os.PathLike)):
        name = os.fspath(value)
        return (isinstance(name, str) and name.lower().endswith(".pdf") and "\n" not in name
                and os.path.isfile(os.path.expanduser(name)))
    return False


def parse_pages(spec: str | None, count: int, label: str = "pages") -> list[int]:
    """ "1-3,7" -> [1, 2, 3, 7] within a document of `count` pages (1-based, in order)."""
    if spec is None or not spec.strip():
        return list(range(1, count + 1))
    chosen: list[int] = []
    for piece in spec.split(","):
        match = _PAGES.match(piece)
        if match is None:
            raise InputError(
                f'{label}={spec!r}: {piece.strip()!r} is not a page or a range; write e.g. '
                '"1-3,7" or "5-" (pages count from 1).'
            )
        first = int(match.group(1))
        last = first if match.group(2) is None else int(match.group(2) or count)
        if first < 1 or last < first or last > count:
            raise InputError(
                f"{label}={spec!r}: {piece.strip()} is outside the document's {count} "
                f"page{'s' if count != 1 else ''}."
            )
        chosen.extend(p for p in range(first, last + 1) if p not in chosen)
    return chosen


def prepare_pdf(value: Any, label: str, budget: Budget) -> list[PreparedImage]:
    """A PDF (path, bytes or PdfPages) -> one PreparedImage per selected page."""
    selection = value if isinstance(value, PdfPages) else PdfPages(value)
    document, name = _open(selection.source, label)
    try:
        count = len(document)
        if count == 0:
            raise ImageError(f"{name} has no pages; there is nothing to send.")
        pages = parse_pages(selection.pages, count, f"{label}: pages")
        targets = [_target_size(document[number - 1], budget) for number in pages]
        tokens = sum(_tokens(size, budget.unit) for size in targets)
        if len(pages) > selection.max_pages:
            raise ImageError(
                f"{name} has {len(pages)} pages to send (about {tokens:,} visual tokens), over "
                f"the cap of {selection.max_pages}. Choose pages with "
                f'qwen_nb.pdf_pages({label}, pages="1-{min(count, selection.max_pages)}") or '
                "raise max_pages=."
            )
        prepared = []
        for number, target in zip(pages, targets, strict=True):
            prepared.append(_prepare_page(document, number, target, selection, label, budget))
    finally:
        document.close()
    if tokens > _LARGE_TOKENS or len(pages) > 1:
        first = prepared[0]
        summary = (f"PDF: {len(pages)} of {count} pages, about {tokens:,} visual tokens in all")
        prepared[0] = dataclasses.replace(first, notes=(summary, *first.notes))
    return prepared


def render_page(document: Any, number: int, size: tuple[int, int]) -> Any:
    """Page `number` (1-based) as an RGB PIL image of exactly `size`."""
    page = document[number - 1]
    width, height = page.get_size()
    # Render at the scale that gives the planned size; PDFium rounds each side up, so a
    # pixel too many is cut (never a resample).
    scale = max(size[0] / width, size[1] / height)
    image = page.render(scale=scale, may_draw_forms=True).to_pil().convert("RGB")
    if image.size != size:
        if image.width >= size[0] and image.height >= size[1]:
            image = image.crop((0, 0, size[0], size[1]))
        else:
            from PIL import Image

            image = image.resize(size, Image.Resampling.LANCZOS)
    return image


def _prepare_page(
    document: Any, number: int, size: tuple[int, int], selection: PdfPages, label: str,
    budget: Budget,
) -> PreparedImage:
    from .codec import prepare_pil
    from .origin import remember_loader

    image = render_page(document, number, size)
    prepared = prepare_pil(image, budget, source=f"{label} page {number}",
                           notes=(f"PDF page {number} rendered at {size[0]}x{size[1]}",))
    prepared = dataclasses.replace(prepared, page=number)
    remember_loader(prepared, lambda: _fine_render(selection.source, number, size))
    return prepared


def _fine_render(source: Any, number: int, size: tuple[int, int]) -> Any:
    """A sharper render of a page for crops (box.crop() zooms into the real page)."""
    try:
        document, _ = _open(source, "page")
    except ImageError:
        return None
    try:
        scale = min(_CROP_SCALE, (_CROP_MAX_PIXELS / (size[0] * size[1])) ** 0.5)
        return render_page(document, number, (round(size[0] * scale), round(size[1] * scale)))
    finally:
        document.close()


def _target_size(page: Any, budget: Budget) -> tuple[int, int]:
    width, height = page.get_size()
    factor = _PLANNING_DPI / 72
    return plan_size(max(1, round(width * factor)), max(1, round(height * factor)), budget)


def _tokens(size: tuple[int, int], unit: int) -> int:
    return max(1, round(size[0] / unit)) * max(1, round(size[1] / unit))


def _open(source: Any, label: str) -> tuple[Any, str]:
    """(PdfDocument, a name for messages), with a message for each way a PDF can fail."""
    try:
        import pypdfium2 as pdfium
    except ImportError:
        raise ImageError(
            f"`{label}` is a PDF; sending PDFs needs pypdfium2: pip install qwen-nb[pdf] "
            "(or pip install pypdfium2)."
        ) from None
    if isinstance(source, (str, os.PathLike)):
        path = os.path.expanduser(os.fspath(source))
        name = f"`{label}` ({os.fspath(source)})" if label != os.fspath(source) else f"`{label}`"
        if not os.path.isfile(path):
            raise ImageError(f"{name}: no such file: {path}.")
        with open(path, "rb") as handle:
            data = handle.read()
    elif isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        name = f"`{label}` (PDF bytes)"
    else:
        raise ImageError(f"`{label}`: pdf_pages() takes a path or the PDF's bytes, not a "
                         f"{type(source).__name__}.")
    if not data:
        raise ImageError(f"{name} is empty (0 bytes); there is no PDF in it.")
    try:
        return pdfium.PdfDocument(data), name
    except pdfium.PdfiumError as error:
        text = str(error)
        if _opens_without_pages(data):
            raise ImageError(f"{name} has no pages; there is nothing to send.") from None
        if "password" in text.lower():
            raise ImageError(
                f"{name} is encrypted (password-protected); qwen_nb cannot open it. Save an "
                "unprotected copy, or export the pages as images."
            ) from None
        raise ImageError(
            f"{name} could not be read as a PDF ({text}); the file may be corrupt or "
            "truncated."
        ) from None


def _opens_without_pages(data: bytes) -> bool:
    """pypdfium2 refuses a PDF with no pages as it refuses a corrupt one (and PDFium's last
    error is not reset on success): ask PDFium itself whether it opens with zero pages."""
    import ctypes

    import pypdfium2.raw as raw

    buffer = ctypes.create_string_buffer(data, len(data))
    document = raw.FPDF_LoadMemDocument64(buffer, len(data), None)
    if not document:
        return False
    try:
        return raw.FPDF_GetPageCount(document) == 0
    finally:
        raw.FPDF_CloseDocument(document)
