"""The grounding overlay of a streaming answer: redrawn in the kernel as boxes complete.

Each image travels once; each update is only a transparent PNG of the marks, which the
page lays over it (a small fraction of the picture's bytes).

Pure logic (no widgets), driven by answer deltas and a clock. Per delta the cost is a
list append. Per draw it looks only at the text added since the last draw, with `in`
(C speed): the answer is read again only once it has named `bbox_2d` / `point_2d` and a
`}` has arrived since (an item can only have completed then), at most every `interval`
seconds, and the picture is drawn and sent only when the number of complete items grew.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .._types import ChatRequest

COORDINATE_KEYS = ("bbox_2d", "point_2d")
# Characters of the text before a new piece looked at with it, so a key split across two
# draws is still seen.
_OVERLAP = max(map(len, COORDINATE_KEYS)) - 1


class LiveOverlay:
    """Boxes and points drawn on the request's images while the answer streams."""

    def __init__(self, request: ChatRequest, *, interval: float = 0.5,
                 clock: Callable[[], float] = time.monotonic) -> None:
        from .._types import QwenResponse

        self._template = QwenResponse(model=request.model, images=request.images,
                                      reading=request.reading, complete=False)
        self.interval = interval
        self.clock = clock
        self._chunks: list[str] = []
        self._text = ""
        self._named = False  # the answer has named a coordinate key
        self._pending = False  # a `}` arrived since the last reading
        self._read_at = -interval
        self._shown: dict[int, tuple[int, int]] = {}  # images sent, at their display sizes
        self.items = 0  # complete boxes and points shown
        self.readings = 0  # times the answer so far was parsed
        self.seconds = 0.0  # kernel time spent reading and drawing (benchmarks report it)

    @staticmethod
    def wanted(request: ChatRequest) -> bool:
        """Only where the final Answer tab draws boxes: images, and no JSON/document mode."""
        reading = request.reading
        return bool(request.images) and not reading.json and reading.doc is None

    def add(self, text: str) -> None:
        self._chunks.append(text)

    @property
    def pending(self) -> bool:
        """A `}` that may complete an item has not been read yet (the interval holds it)."""
        return self._pending

    def take(self) -> list[dict[str, Any]] | None:
        """The overlay's parts (render.overlay.overlay_layers) when more items are complete
        than shown, else None."""
        if self._chunks:
            new = "".join(self._chunks)
            self._chunks.clear()
            if not self._named:
                seen = self._text[-_OVERLAP:] + new
                self._named = any(key in seen for key in COORDINATE_KEYS)
            self._text += new
            self._pending = self._pending or (self._named and "}" in new)
        if not self._pending or self.clock() - self._read_at < self.interval:
            return None
        started = time.perf_counter()
        self._pending = False
        self._read_at = self.clock()
        self.readings += 1
        try:
            return self._figures()
        finally:
            self.seconds += time.perf_counter() - started

    def _figures(self) -> list[dict[str, Any]] | None:
        from ..render.overlay import overlay_layers
        from ..render.vision import complete_grounding

        cut = complete_grounding(self._template.replace(answer=self._text))
        if cut is None:
            return None
        reading = cut.interpretation
        items = len(reading.boxes) + len(reading.points)
        if items <= self.items:
            return None
        self.items = items
        return overlay_layers(cut, self._shown)
