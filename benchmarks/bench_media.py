"""Benchmark: figures, numpy arrays and several images at once, each against a baseline
measured in the same run.

    python benchmarks/bench_media.py

- figure: `prepare_images(fig)` against a plain `fig.savefig(buf, format="png")` of the
  same figure at the same pixel count (goal <= 1.1x the time, and no more bytes);
- arrays: a 4000 x 3000 x 3 float32 / float64 / uint16 / uint8 array against the best
  numpy + Pillow path found (scale in place, astype uint8, fromarray, the same resize and
  JPEG, base64), which does no range or NaN checks (goal <= 1.1x);
- 20 images (3-MP JPEGs) in one request: prepared together (the shared pool) against one
  after another in the same process (goal >= 1.4x faster wall time on 2 cores).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import statistics
import time
from collections.abc import Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from _bench import machine, table, verdict  # noqa: E402
from PIL import Image  # noqa: E402

from qwen_nb.media.images import (  # noqa: E402
    Budget,
    plan_size,
    prepare_images,
    prepare_labelled,
)

REPEATS = 7


def interleaved(functions: list[Callable[[], object]], repeats: int = REPEATS) -> list[float]:
    """Median ms of each function, runs interleaved so outside load hits all alike."""
    for function in functions:
        function()  # warm-up (first-use imports, the thread pool)
    durations: list[list[float]] = [[] for _ in functions]
    for _ in range(repeats):
        for index, function in enumerate(functions):
            started = time.perf_counter()
            function()
            durations[index].append((time.perf_counter() - started) * 1000)
    return [statistics.median(d) for d in durations]


def make_figure() -> plt.Figure:
    rng = np.random.default_rng(0)
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
    x = np.linspace(0, 10, 800)
    for k in range(5):
        left.plot(x, np.sin(x * (k + 1) / 2) + k, label=f"series {k}")
    left.legend(loc="upper right")
    left.set(title="Signals", xlabel="time (s)", ylabel="value")
    right.scatter(rng.normal(size=400), rng.normal(size=400), s=8, alpha=0.6)
    right.set(title="Scatter", xlabel="x", ylabel="y")
    right.grid(True)
    return figure


def bench_figure() -> list[dict]:
    figure = make_figure()
    prepared = prepare_images(figure, label="fig")[0]
    width, height = prepared.sent_size
    w_in, h_in = figure.get_size_inches()
    dpi = (width * height / (w_in * h_in)) ** 0.5

    def plain() -> bytes:
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=dpi)
        return buffer.getvalue()

    ours_ms, plain_ms = interleaved([lambda: prepare_images(figure, label="fig"), plain])
    plain_bytes = len(plain())
    ratio = ours_ms / plain_ms
    print(f"figure 10x4 in, sent {width}x{height} PNG: qwen_nb {ours_ms:.0f} ms "
          f"{prepared.nbytes / 1e3:.0f} kB; plain savefig at {dpi:.0f} dpi {plain_ms:.0f} ms "
          f"{plain_bytes / 1e3:.0f} kB")
    met = ratio <= 1.1 and prepared.nbytes <= plain_bytes
    plt.close(figure)
    return [{"row": f"matplotlib figure -> {width}x{height} PNG",
             "measured": f"{ours_ms:.0f} ms, {prepared.nbytes / 1e3:.0f} kB ({ratio:.2f}x)",
             "baseline": f"plain savefig PNG {plain_ms:.0f} ms, {plain_bytes / 1e3:.0f} kB",
             "goal": "<= 1.1x, no more bytes", "met": met}]


def photo_pixels(width: int = 4000, height: int = 3000) -> np.ndarray:
    """Smooth light, shapes and noise: a photo-like uint8 RGB array (sent as JPEG)."""
    rng = np.random.default_rng(1)
    coarse = rng.uniform(40, 215, size=(24, 32, 3)).astype(np.uint8)
    scene = np.asarray(Image.fromarray(coarse).resize((width, height), Image.BICUBIC))
    noise = rng.normal(0, 6, size=(height, width, 3)).astype(np.float32)
    return np.clip(scene + noise, 0, 255).astype(np.uint8)


def best_path(array: np.ndarray, scale: float, offset: float) -> str:
    """The fastest hand-written way found: one float32 work array scaled in place."""
    if array.dtype != np.uint8:
        work = np.multiply(array, np.float32(scale), dtype=np.float32)
        work += np.float32(offset + 0.5)
        np.clip(work, 0, 255, out=work)
        pixels = work.astype(np.uint8)
    else:
        pixels = array
    image = Image.fromarray(pixels)
    size = plan_size(image.width, image.height, Budget())
    image = image.resize(size, Image.Resampling.LANCZOS, reducing_gap=1.0)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    data = buffer.getvalue()
    hashlib.sha256(data).hexdigest()
    return "data:image/jpeg;base64," + base64.b64encode(data).decode("ascii")


def bench_arrays() -> list[dict]:
    pixels = photo_pixels()
    cases = {
        "float32 0..1": (pixels.astype(np.float32) / 255, 255.0, 0.0),
        "float64 0..1": (pixels.astype(np.float64) / 255, 255.0, 0.0),
        "uint16 0..4095": (pixels.astype(np.uint16) * 16, 255.0 / 4080, 0.0),
        "uint8": (pixels, 1.0, 0.0),
    }
    results = []
    for name, (array, scale, offset) in cases.items():
        ours_ms, best_ms = interleaved([lambda a=array: prepare_images(a, label="a"),
                                        lambda a=array, s=scale, o=offset: best_path(a, s, o)],
                                       repeats=5)
        ratio = ours_ms / best_ms
        print(f"array 4000x3000x3 {name}: qwen_nb {ours_ms:.0f} ms, best path {best_ms:.0f} ms "
              f"({ratio:.2f}x)")
        results.append({"row": f"numpy {name} 4000x3000x3 array",
                        "measured": f"{ours_ms:.0f} ms ({ratio:.2f}x)",
                        "baseline": f"best numpy+Pillow path {best_ms:.0f} ms",
                        "goal": "<= 1.1x", "met": ratio <= 1.1})
    return results


def bench_parallel() -> list[dict]:
    pixels = photo_pixels(2000, 1500)
    images = []
    for n in range(20):
        buffer = io.BytesIO()
        Image.fromarray(np.roll(pixels, n * 37, axis=1)).save(buffer, "JPEG", quality=92)
        images.append(buffer.getvalue())
    labelled = [(data, f"image {n + 1}") for n, data in enumerate(images)]

    def together() -> object:
        return prepare_labelled(labelled)

    def one_by_one() -> object:
        return [prepare_images(data, label=label)[0] for data, label in labelled]

    assert [p.digest for p in together()] == [p.digest for p in one_by_one()]
    ours_ms, serial_ms = interleaved([together, one_by_one])
    speedup = serial_ms / ours_ms
    print(f"20 x 3-MP JPEGs: together {ours_ms:.0f} ms, one after another {serial_ms:.0f} ms "
          f"({speedup:.2f}x) on {os.cpu_count()} CPUs")
    return [{"row": "20 images (3 MP JPEG) in one request",
             "measured": f"{ours_ms:.0f} ms ({speedup:.2f}x faster)",
             "baseline": f"one after another {serial_ms:.0f} ms",
             "goal": f">= 1.4x on {os.cpu_count()} cores", "met": speedup >= 1.4}]


def main() -> None:
    print(f"# figures, arrays, several images ({machine()}); medians of {REPEATS}")
    results = bench_figure() + bench_arrays() + bench_parallel()
    print(table(["what", "qwen_nb", "baseline (same run)", "goal", ""],
                [[r["row"], r["measured"], r["baseline"], r["goal"], verdict(r["met"])]
                 for r in results]))
    for r in results:
        print("RESULT " + json.dumps(r))


if __name__ == "__main__":
    main()
