"""How many frames, at which times and at what size: Qwen3-VL's video sampling as arithmetic.

Follows qwen-vl-utils' `fetch_video` / `smart_nframes` for Qwen3-VL (16 px patches merged
2 x 2, so a 32 px grid): 2 frames per second by default, an even number of frames (the
model merges frames in temporal pairs), at least 4 and at most a cap, frame indices spread
evenly (`linspace(first, last, n).round()`), and one frame size for all frames within a
total pixel budget, so a long clip gets fewer pixels per frame (down to a floor) and, past
the frame cap, fewer frames per second. No PyAV, no Pillow: tested with tables.
"""

from __future__ import annotations

import math

from .._errors import VideoError
from .._types import QWEN3_VL_UNIT
from .plan import Budget, plan_size

DEFAULT_FPS = 2.0
FRAME_FACTOR = 2  # temporal patch: frames go to the model in pairs
MIN_FRAMES = 4
# qwen-vl-utils allows 768; a hosted API is paid per token and refuses large bodies, so the
# default is lower (Video(max_frames=...) raises it, up to the hard limit).
DEFAULT_MAX_FRAMES = 128
HARD_MAX_FRAMES = 768
UNIT_PIXELS = QWEN3_VL_UNIT * QWEN3_VL_UNIT
VIDEO_MIN_PIXELS = 128 * UNIT_PIXELS  # per frame (qwen-vl-utils VIDEO_MIN_TOKEN_NUM)
VIDEO_MAX_PIXELS = 768 * UNIT_PIXELS  # per frame (VIDEO_MAX_TOKEN_NUM)
# Across all frames. qwen-vl-utils uses 0.9 x the model's sequence length (about 115k
# tokens); a notebook default of about 16k visual tokens keeps a call affordable.
VIDEO_TOTAL_PIXELS = 16384 * UNIT_PIXELS
DEFAULT_MAX_VIDEO_TOKENS = 24576


def frame_count(duration: float, fps: float, max_frames: int, total_frames: int) -> int:
    """Frames to sample from `duration` seconds holding `total_frames` frames.

    smart_nframes: duration x fps, clamped to [4, max_frames] and to the frames there are,
    rounded down to an even number (never below 2)."""
    if total_frames < 1:
        raise ValueError("a clip with no frames has nothing to sample")
    low = math.ceil(MIN_FRAMES / FRAME_FACTOR) * FRAME_FACTOR
    high = max(FRAME_FACTOR, math.floor(min(max_frames, total_frames) / FRAME_FACTOR)
               * FRAME_FACTOR)
    wanted = duration * fps
    count = min(max(wanted, low), high, total_frames)
    return max(min(FRAME_FACTOR, total_frames),
               math.floor(count / FRAME_FACTOR) * FRAME_FACTOR)


def frame_indices(first: int, last: int, count: int) -> list[int]:
    """`count` frame indices spread evenly from `first` to `last` (torch.linspace + round)."""
    if count == 1:
        return [first]
    step = (last - first) / (count - 1)
    return [int(round(first + i * step)) for i in range(count)]


def index_range(start: float | None, end: float | None, video_fps: float,
                total_frames: int) -> tuple[int, int]:
    """(first, last) frame index of the start..end range (calculate_video_frame_range)."""
    duration = total_frames / video_fps
    first = 0 if start is None else math.ceil(max(0.0, min(start, duration)) * video_fps)
    last = total_frames - 1 if end is None else min(
        math.floor(max(0.0, min(end, duration)) * video_fps), total_frames - 1)
    if first > last or (start is not None and start >= duration):
        raise VideoError(
            f"The range start={start} s to end={end if end is not None else 'the end'} holds "
            f"no frame of this {duration:.2f} s clip; choose start and end within it."
        )
    return first, last


def frame_size(width: int, height: int, count: int, *, max_pixels: int | None = None,
               total_pixels: int = VIDEO_TOTAL_PIXELS) -> tuple[int, int]:
    """One (width, height) for every frame: on the 32 px grid, within the per-frame cap and
    the total budget shared by `count` frames (never below the per-frame floor)."""
    per_frame = max(min(VIDEO_MAX_PIXELS, total_pixels / max(count, 1) * FRAME_FACTOR),
                    int(VIDEO_MIN_PIXELS * 1.05))
    if max_pixels is not None:
        per_frame = min(per_frame, max_pixels)
    per_frame = max(int(per_frame), UNIT_PIXELS)
    budget = Budget(unit=QWEN3_VL_UNIT, min_pixels=min(VIDEO_MIN_PIXELS, per_frame),
                    max_pixels=per_frame)
    return plan_size(width, height, budget)


def visual_tokens(count: int, size: tuple[int, int]) -> int:
    """Qwen3-VL's estimate: frames / 2 x (h / 32) x (w / 32)."""
    width, height = size
    return -(-count // FRAME_FACTOR) * max(1, round(width / QWEN3_VL_UNIT)) * max(
        1, round(height / QWEN3_VL_UNIT))
