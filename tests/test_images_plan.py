"""The resize planner: Qwen's grid and budget, checked on tables and random sizes."""

from __future__ import annotations

import math

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from qwen_nb.media.plan import MAX_ASPECT_RATIO, Budget, plan_size, processor_budget

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


# --- Qwen3-VL's processor range (issue 11 §5) -----------------------------------------------


@settings(max_examples=300, deadline=None)
@given(width=st.integers(1, 5_000), height=st.integers(1, 5_000))
def test_the_default_budget_plans_inside_the_processor_range(width, height):
    """What is sent is what the server's processor keeps: at least 65,536 px, so the token
    estimate ceil(w/32) * ceil(h/32) is the server's count (the server enlarges anything
    smaller itself, so a 5x5 image is 64 tokens there, never 4)."""
    assume(max(width, height) <= 100 * min(width, height))
    w, h = plan_size(width, height, Budget())
    assert w * h >= 65_536
    assert (w // 32) * (h // 32) == math.ceil(w / 32) * math.ceil(h / 32) >= 64


def test_a_budget_below_the_processor_minimum_is_planned_at_it_and_said():
    from PIL import Image

    from qwen_nb.media.images import prepare_images

    [image] = prepare_images(Image.new("RGB", (1000, 1000), (200, 0, 0)), label="red",
                             max_pixels=50_000)
    assert image.sent_size == (256, 256) and image.visual_tokens == 64
    assert any("below Qwen3-VL's minimum of 65,536 pixels" in note for note in image.notes)
    [tiny] = prepare_images(Image.new("RGB", (5, 5)), label="tiny")
    assert tiny.sent_size == (256, 256) and tiny.visual_tokens == 64


def test_processor_budget_moves_only_budgets_outside_the_range():
    assert processor_budget(1_310_720) == (1_310_720, None)
    low, note = processor_budget(50_000)
    assert low == 65_536 and "below" in note
    high, note = processor_budget(10**9)
    assert high == 16_777_216 and "above" in note
