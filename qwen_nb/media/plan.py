"""Where an image should end up: Qwen's grid and pixel budget, as pure arithmetic.

No Pillow here, so the planner can be tested with tables and hypothesis in microseconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .._errors import ImageError
from .._types import (
    DEFAULT_MAX_PIXELS,
    DEFAULT_MIN_PIXELS,
    QWEN3_VL_MAX_PIXELS,
    QWEN3_VL_MIN_PIXELS,
    QWEN3_VL_UNIT,
)

# Qwen's image processors (qwen-vl-utils' and transformers' smart_resize, hence vLLM and
# SGLang) raise on an image whose long side is more than 200 times its short side.
MAX_ASPECT_RATIO = 200


@dataclass(frozen=True)
class Budget:
    """The model's grid unit and the per-image pixel range it accepts."""

    unit: int = QWEN3_VL_UNIT
    min_pixels: int = DEFAULT_MIN_PIXELS
    max_pixels: int = DEFAULT_MAX_PIXELS

    def __post_init__(self) -> None:
        if self.unit < 1:
            raise ImageError(
                f"unit={self.unit} must be a positive number of pixels (32 for Qwen3-VL)."
            )
        if self.max_pixels < self.unit * self.unit:
            raise ImageError(
                f"max_pixels={self.max_pixels} is smaller than one {self.unit}x{self.unit} unit "
                f"({self.unit * self.unit} pixels); the default is {DEFAULT_MAX_PIXELS}."
            )
        if self.min_pixels > self.max_pixels:
            raise ImageError(
                f"min_pixels={self.min_pixels} is larger than max_pixels={self.max_pixels}; "
                "lower min_pixels or raise max_pixels."
            )


def plan_size(width: int, height: int, budget: Budget) -> tuple[int, int]:
    """The (width, height) to send: multiples of the unit, aspect kept, within the budget.

    Follows qwen-vl-utils' `smart_resize`: round each side to the nearest unit, then scale
    down if over `max_pixels`, or up only as far as `min_pixels` needs.
    """
    if width < 1 or height < 1:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    unit = budget.unit
    w_bar = max(unit, _round_to(width, unit))
    h_bar = max(unit, _round_to(height, unit))
    if w_bar * h_bar > budget.max_pixels:
        beta = math.sqrt(width * height / budget.max_pixels)
        w_bar = max(unit, math.floor(width / beta / unit) * unit)
        h_bar = max(unit, math.floor(height / beta / unit) * unit)
    elif w_bar * h_bar < budget.min_pixels:
        beta = math.sqrt(budget.min_pixels / (width * height))
        w_bar = math.ceil(width * beta / unit) * unit
        h_bar = math.ceil(height * beta / unit) * unit
        if w_bar * h_bar > budget.max_pixels:
            # In a tight budget rounding both sides up can overshoot, and cutting the long
            # side back (below) would square the image: take the nearest grid size instead.
            w_bar = max(unit, round(width * beta / unit) * unit)
            h_bar = max(unit, round(height * beta / unit) * unit)
    # Qwen refuses aspect ratios over 200:1 and the unit clamp or the ceil above can overshoot;
    # rather than refuse, cut the longer side (then the other) until the image fits.
    while w_bar * h_bar > budget.max_pixels:
        if w_bar >= h_bar:
            w_bar = max(unit, min(w_bar - unit, budget.max_pixels // h_bar // unit * unit))
        else:
            h_bar = max(unit, min(h_bar - unit, budget.max_pixels // w_bar // unit * unit))
    # A thin strip (or the one-unit clamp on its short side) can still exceed Qwen's
    # aspect limit, and the server would refuse the request: squeeze the long side.
    if w_bar > MAX_ASPECT_RATIO * h_bar:
        w_bar = max(unit, MAX_ASPECT_RATIO * h_bar // unit * unit)
    elif h_bar > MAX_ASPECT_RATIO * w_bar:
        h_bar = max(unit, MAX_ASPECT_RATIO * w_bar // unit * unit)
    return w_bar, h_bar


def _round_to(value: float, unit: int) -> int:
    return round(value / unit) * unit


def processor_budget(max_pixels: int) -> tuple[int, str | None]:
    """`max_pixels` moved into the Qwen3-VL processor's range, and a note when it moved:
    the server would resize an image outside it again, so the estimate would be wrong."""
    if max_pixels < QWEN3_VL_MIN_PIXELS:
        return QWEN3_VL_MIN_PIXELS, (
            f"max_pixels {max_pixels:,} is below Qwen3-VL's minimum of "
            f"{QWEN3_VL_MIN_PIXELS:,} pixels (64 visual tokens), which the server enlarges "
            "every image to; planned at the minimum"
        )
    if max_pixels > QWEN3_VL_MAX_PIXELS:
        return QWEN3_VL_MAX_PIXELS, (
            f"max_pixels {max_pixels:,} is above Qwen3-VL's maximum of "
            f"{QWEN3_VL_MAX_PIXELS:,} pixels, which the server shrinks every image to; "
            "planned at the maximum"
        )
    return max_pixels, None
