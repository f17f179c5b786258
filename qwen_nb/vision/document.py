"""Document parsing answers (`qwenvl html`, `qwenvl markdown`) -> a clean document and its
regions in page pixels.

QwenVL HTML marks each block with `data-bbox="x1 y1 x2 y2"` (a class such as "image" or
"formula" on some); QwenVL Markdown puts `<!-- Image (x1, y1, x2, y2) -->` placeholders
where figures and tables are. The HTML kept for showing holds structural tags only, no
attributes but colspan/rowspan, no data-bbox: model output stays inert. Standard library
only (pandas for `tables()` on request).
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

from .._types import PreparedImage
from .grounding import Boxes, ground_items

# Tags shown as they are (structure and emphasis); anything else keeps only its text.
STRUCTURAL_TAGS = frozenset({
    "h1", "h2", "h3", "h4", "h5", "h6", "p", "div", "span", "section", "header", "footer",
    "ul", "ol", "li", "dl", "dt", "dd", "table", "thead", "tbody", "tfoot", "tr", "th", "td",
    "caption", "br", "hr", "strong", "b", "em", "i", "u", "sub", "sup", "code", "pre",
    "blockquote", "figure", "figcaption",
})
_VOID = frozenset({"br", "hr", "img", "meta", "link", "input", "source", "col", "area", "wbr"})
# Whose content is never text of the document.
_DROPPED_WITH_CONTENT = frozenset({"script", "style", "iframe", "object", "embed", "svg",
                                   "math", "template", "noscript", "textarea", "select"})
_SPAN_ATTRIBUTES = ("colspan", "rowspan")
_NAMES_BY_TAG = {"h1": "title", "h2": "heading", "h3": "heading", "h4": "heading",
                 "h5": "heading", "h6": "heading", "p": "paragraph", "li": "list item",
                 "table": "table", "img": "image", "figure": "figure", "ul": "list",
                 "ol": "list", "caption": "caption", "pre": "code", "code": "code"}
_NUMBER = r"(-?\d+(?:\.\d+)?)"
_PLACEHOLDER = re.compile(
    r"<!--\s*([A-Za-z][\w -]*?)\s*\(\s*" + r"\s*,\s*".join([_NUMBER] * 4) + r"\s*\)\s*-->"
)
_FENCE = re.compile(r"^\s*```[^\n]*\n(.*?)(?:\n```\s*)?$", re.DOTALL)


@dataclass(frozen=True)
class Document:
    """A parsed page: the clean HTML or Markdown, its regions (boxes labelled by class,
    text in `attributes["text"]`), and notes for Details."""

    format: str  # "html" or "markdown"
    text: str  # the clean document: sanitised HTML, or Markdown without placeholders
    regions: Boxes = field(default_factory=Boxes)
    notes: tuple[str, ...] = ()

    @property
    def html(self) -> str | None:
        return self.text if self.format == "html" else None

    @property
    def markdown(self) -> str | None:
        return self.text if self.format == "markdown" else None

    def tables(self) -> list[Any]:
        """Each table of the document as a pandas DataFrame (the first row as header)."""
        import pandas

        rows_of_tables = (html_tables(self.text) if self.format == "html"
                          else markdown_tables(self.text))
        frames = []
        for rows in rows_of_tables:
            width = max(len(row) for row in rows)
            rows = [row + [""] * (width - len(row)) for row in rows]
            header, body = rows[0], rows[1:]
            frames.append(pandas.DataFrame(body, columns=_unique(header)))
        return frames


def parse_document(
    answer: str,
    mode: str,
    images: Sequence[PreparedImage] = (),
    *,
    coords: str = "auto",
    model: str | None = None,
) -> Document:
    """A `qwenvl html` / `qwenvl markdown` answer -> Document. Never raises on what the
    model wrote."""
    text = _unfence(answer)
    if mode == "html":
        parser = _QwenHTML()
        try:
            parser.feed(text)
            parser.close()
        except Exception as error:  # html.parser is lenient; this is for the truly odd
            return Document("html", html.escape(text), notes=(
                f"the document HTML could not be parsed ({type(error).__name__})",))
        items, clean = parser.regions, parser.clean_html()
    else:
        items = [
            {"bbox_2d": [float(n) for n in match.groups()[1:]], "label": match.group(1).lower()}
            for match in _PLACEHOLDER.finditer(text)
        ]
        clean = _PLACEHOLDER.sub("", text).strip()
    found = ground_items(items, images, coords=coords, model=model, what="document regions")
    return Document(mode, clean, found.boxes, found.notes)


def html_tables(text: str) -> list[list[list[str]]]:
    """Rows of cell texts of each <table> in `text`."""
    parser = _Tables()
    parser.feed(text)
    parser.close()
    return [rows for rows in parser.tables if rows]


def markdown_tables(text: str) -> list[list[list[str]]]:
    """Rows of cell texts of each pipe table in Markdown `text` (the delimiter row dropped)."""
    tables: list[list[list[str]]] = []
    current: list[list[str]] = []
    for line in [*text.splitlines(), ""]:
        stripped = line.strip()
        if stripped.startswith("|") or (current and "|" in stripped):
            cells = [cell.strip() for cell in stripped.strip("|").split("|")]
            if not all(re.fullmatch(r":?-{1,}:?", cell) for cell in cells if cell):
                current.append(cells)
            continue
        if len(current) > 1:
            tables.append(current)
        current = []
    return tables


def _unfence(answer: str) -> str:
    match = _FENCE.match(answer)
    return match.group(1) if match else answer


def _unique(header: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    names = []
    for index, name in enumerate(header):
        name = name or f"column {index + 1}"
        seen[name] = seen.get(name, 0) + 1
        names.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    return names


class _QwenHTML(HTMLParser):
    """Collects regions (data-bbox, class, text) and writes the structural HTML back."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.regions: list[dict[str, Any]] = []
        self._open: list[tuple[str, int | None, bool]] = []  # (tag, region index, shown)
        self._dropping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._dropping or tag in _DROPPED_WITH_CONTENT:
            if tag not in _VOID:
                self._dropping += 1
            return
        values = dict(attrs)
        region = self._region(tag, values)
        shown = tag in STRUCTURAL_TAGS
        if shown:
            spans = "".join(
                f' {name}="{int(values[name])}"' for name in _SPAN_ATTRIBUTES
                if (values.get(name) or "").isdigit() and 0 < int(values[name]) < 1000
            )
            self.out.append(f"<{tag}{spans}>")
        if tag not in _VOID:
            self._open.append((tag, region, shown))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._dropping or tag in _DROPPED_WITH_CONTENT:
            return
        self._region(tag, dict(attrs))
        if tag in ("br", "hr"):
            self.out.append(f"<{tag}>")

    def handle_endtag(self, tag: str) -> None:
        if self._dropping:
            if tag in _DROPPED_WITH_CONTENT or tag not in _VOID:
                self._dropping -= 1
            return
        if tag not in (name for name, _, _ in self._open):
            return
        while self._open:
            name, _, shown = self._open.pop()
            if shown:
                self.out.append(f"</{name}>")
            if name == tag:
                break

    def handle_data(self, data: str) -> None:
        if self._dropping:
            return
        self.out.append(html.escape(data, quote=False))
        for _, region, _ in self._open:
            if region is not None:
                self.regions[region]["text"] += data

    def clean_html(self) -> str:
        while self._open:
            name, _, shown = self._open.pop()
            if shown:
                self.out.append(f"</{name}>")
        return "".join(self.out).strip()

    def _region(self, tag: str, values: dict[str, str | None]) -> int | None:
        numbers = re.findall(_NUMBER, values.get("data-bbox") or "")
        if len(numbers) != 4:
            return None
        kind = (values.get("class") or "").strip().split(" ")[0] or _NAMES_BY_TAG.get(tag, tag)
        self.regions.append({"bbox_2d": [float(n) for n in numbers], "label": kind, "text": ""})
        return len(self.regions) - 1

    def close(self) -> None:
        super().close()
        for region in self.regions:
            region["text"] = " ".join(region["text"].split())


class _Tables(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: list[list[list[str]]] = []
        self._cell: list[str] | None = None
        self._depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._depth += 1
            if self._depth == 1:
                self.tables.append([])
        elif self._depth == 1 and tag == "tr":
            self.tables[-1].append([])
        elif self._depth == 1 and tag in ("td", "th"):
            if not self.tables[-1]:
                self.tables[-1].append([])
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._depth = max(0, self._depth - 1)
        elif self._depth == 1 and tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
