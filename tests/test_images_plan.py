"""The resize planner: Qwen's grid and budget, checked on tables and random sizes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qwen_nb.media.plan import MAX_ASPECT_RATIO, Budget, plan_size

QWEN3 = Budget()


@pytest.mark.parametrize(
    "size, budget, expected",
    [
        ((4000, 3000), QWEN3, (1312, 960)),
        ((3000, 4000), QWEN3, (960, 1312)),
        ((640, 480), QWEN3, (640, 480)),  # already on the grid: unchanged
        ((650, 490), QWEN3, (640, 480)),  # rounded to the nearest unit
        ((10, 10), QWEN3, (256, 256)),  # upscaled to the processor's 65,536 px minimum
        ((5, 5), QWEN3, (256, 256)),
        ((300, 200), QWEN3, (320, 224)),  # ceil on both sides, as smart_resize does
        # A thin strip still fits, squeezed to Qwen's 200:1 aspect limit (32 x 40,960
        # was refused by Qwen's image processor).
        ((1, 100_000), QWEN3, (32, 6_400)),
        ((8_000, 20), QWEN3, (6_400, 32)),
        # A tight budget (3 to 4 units): not squared to 56 x 56 by the overshoot cut.
        ((3, 8), Budget(unit=28, min_pixels=3 * 784, max_pixels=4 * 784), (28, 84)),
        ((4000, 3000), Budget(unit=28, min_pixels=4 * 784, max_pixels=1280 * 784), (1148, 840)),
    ],
)
def test_plan_table(size, budget, expected):
    assert plan_size(*size, budget) == expected


@settings(max_examples=500, deadline=None)
@given(
    width=st.integers(1, 20_000),
    height=st.integers(1, 20_000),
    unit=st.sampled_from([28, 32]),
    max_units=st.integers(4, 16_384),
    min_units=st.integers(1, 4),
)
def test_plan_properties(width, height, unit, max_units, min_units):
    budget = Budget(
        unit=unit, min_pixels=min_units * unit * unit, max_pixels=max_units * unit * unit
    )
    w, h = plan_size(width, height, budget)
    assert w % unit == 0 and h % unit == 0 and w >= unit and h >= unit
    assert w * h <= budget.max_pixels
    assert max(w, h) <= MAX_ASPECT_RATIO * min(w, h)  # what Qwen's processor accepts
    # Never upscaled past what the minimum needs (plus one unit of rounding per side).
    if width * height >= budget.min_pixels:
        assert w * h <= max(width * height, budget.min_pixels) * 1.0 + unit * (w + h + unit)
    # The aspect ratio survives up to rounding, unless a side is pinned at one unit.
    if min(w, h) > unit and max(width, height) <= MAX_ASPECT_RATIO * min(width, height):
        ratio, planned = width / height, w / h
        tolerance = unit / min(w, h) * 1.01 + unit / max(w, h)
        assert abs(planned / ratio - 1) <= tolerance * 1.5


def test_bad_budgets_are_refused():
    from qwen_nb._errors import ImageError

    with pytest.raises(ImageError):
        Budget(max_pixels=10)
    with pytest.raises(ImageError):
        Budget(min_pixels=10_000, max_pixels=5_000)
