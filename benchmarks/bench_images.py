"""Benchmark: preparing a 12-megapixel photo and screenshot for sending, qwen_nb vs naive.

The screenshot runs twice: through Pillow only (QWEN_NB_PYVIPS=0) and, when libvips
loads, through the pyvips fast path. Legibility: SSIM (tests/support.py, numpy) of the
image sent against lossless (RGB) resizes of the original to the same size: the same
resize (Pillow's two steps, or libvips' shrink; the goal's measure: what the palette
encoding lost) and, for reference, one full Lanczos pass (which also counts the resize's
own blur). Times are wall and CPU (all threads: libvips uses several), interleaved.

Run with `python benchmarks/bench_images.py`. The inputs are synthetic and seeded, so
every run measures the same bytes. "Naive" is what a notebook snippet usually does: full
decode, PNG, base64. Memory is measured two ways: tracemalloc (Python objects only: it
cannot see Pillow's C pixel buffers) and the peak resident size of a fresh process
(everything, including those buffers).
"""

from __future__ import annotations

import base64
import io
import os
import subprocess
import sys
import tempfile
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from _bench import median, report, timed_runs
from PIL import Image, ImageDraw, ImageFont

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

from support import ssim  # noqa: E402

from qwen_nb.media.images import prepare_images  # noqa: E402
from qwen_nb.media.vips import _load_pyvips  # noqa: E402

WIDTH, HEIGHT = 4000, 3000
REPEATS = 9
NAIVE_REPEATS = 5
GOAL_PHOTO_MS = 120.0
GOAL_PHOTO_MB = 0.7
GOAL_SPEEDUP = 10.0
GOAL_SCREENSHOT_SPEEDUP = 3.0
GOAL_SCREENSHOT_MB = 0.5
GOAL_SSIM = 0.98


@dataclass(frozen=True)
class Result:
    case: str
    method: str
    median_ms: float
    cpu_ms: float
    tracemalloc_mb: float
    rss_mb: float
    payload_mb: float
    ssim: tuple[float, float] | None = None


def make_photo(seed: int = 1) -> bytes:
    """A photo-like JPEG: smooth light and shapes, fine texture and sensor noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    base = np.stack([x / WIDTH * 120 + 60, y / HEIGHT * 100 + 70, (x + y) / 7000 * 90 + 40], -1)
    # Low-frequency "scene": random blobs upsampled smoothly, as lighting and objects are.
    coarse = rng.uniform(-60, 60, size=(24, 32, 3)).astype(np.float32)
    scene = Image.fromarray(np.uint8(coarse + 128)).resize((WIDTH, HEIGHT), Image.BICUBIC)
    texture = rng.normal(0, 1, size=(HEIGHT // 4, WIDTH // 4, 3)).astype(np.float32) * 20
    texture_img = Image.fromarray(np.uint8(np.clip(texture + 128, 0, 255))).resize(
        (WIDTH, HEIGHT), Image.BILINEAR
    )
    pixels = base + (np.asarray(scene, np.float32) - 128) + (np.asarray(texture_img) - 128.0)
    pixels += rng.normal(0, 4, size=pixels.shape).astype(np.float32)
    image = Image.fromarray(np.uint8(np.clip(pixels, 0, 255)))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=92)
    return buffer.getvalue()


def make_screenshot(seed: int = 2) -> bytes:
    """A screenshot-like PNG: flat panels, title bars, and lines of anti-aliased text."""
    rng = np.random.default_rng(seed)
    font = ImageFont.load_default(size=20)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz0123456789(),.=_"))
    image = Image.new("RGB", (WIDTH, HEIGHT), (246, 246, 248))
    draw = ImageDraw.Draw(image)
    palette = [(255, 255, 255), (230, 236, 245), (40, 44, 52), (250, 240, 220)]
    for _ in range(6):
        x0, y0 = int(rng.integers(0, WIDTH - 800)), int(rng.integers(0, HEIGHT - 600))
        x1, y1 = x0 + int(rng.integers(600, 2000)), y0 + int(rng.integers(400, 1500))
        fill = palette[int(rng.integers(len(palette)))]
        draw.rectangle((x0, y0, x1, y1), fill=fill, outline=(180, 180, 190), width=2)
        draw.rectangle((x0, y0, x1, y0 + 40), fill=(60, 120, 200))
        ink = (230, 230, 230) if fill == (40, 44, 52) else (30, 30, 30)
        chars = (min(x1, WIDTH) - x0 - 40) // 11
        for line_y in range(y0 + 56, min(y1, HEIGHT) - 24, 26):
            words = [
                "".join(rng.choice(letters, int(rng.integers(2, 10)))) for _ in range(chars // 5)
            ]
            draw.text((x0 + 20, line_y), " ".join(words)[:chars], fill=ink, font=font)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def naive(data: bytes) -> str:
    """Full decode, PNG, base64: the usual notebook snippet."""
    image = Image.open(io.BytesIO(data))
    image.load()
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def traced_peak_mb(function: Callable[[], str]) -> tuple[float, int]:
    """tracemalloc's peak for one run (Python objects only), and the payload length."""
    tracemalloc.start()
    payload = function()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 1e6, len(payload)


_RSS_CHILD = """
import sys
sys.path.insert(0, {root!r})
from PIL import Image
from qwen_nb.media.images import prepare_images
import bench_images as b
data = open({path!r}, "rb").read()
before = b.high_water_mb()
{call}
print(b.high_water_mb() - before)
"""


def high_water_mb() -> float:
    """This process's peak resident size (VmHWM; ru_maxrss is inherited across fork)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb(path: str, call: str) -> float:
    """Peak resident memory added by one call, in a fresh process (sees C buffers too)."""
    here = os.path.dirname(os.path.abspath(__file__))
    code = _RSS_CHILD.format(root=os.path.dirname(here), path=path, call=call)
    env = {**os.environ, "PYTHONPATH": here}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    return float(out.stdout.strip() or "nan")


def engine(name: str) -> Callable[[Callable[[], str]], Callable[[], str]]:
    """Run a function with the pyvips path on ("pyvips") or off ("Pillow")."""
    def wrap(function: Callable[[], str]) -> Callable[[], str]:
        def run() -> str:
            os.environ["QWEN_NB_PYVIPS"] = "1" if name == "pyvips" else "0"
            return function()
        return run
    return wrap


def measure(case: str, data: bytes, path: str) -> list[Result]:
    engines = ["Pillow"] + (["pyvips"] if case.startswith("screenshot") and _load_pyvips()
                            else [])
    runs = []
    for name in engines:
        switch = engine(name)
        env = f"import os; os.environ['QWEN_NB_PYVIPS'] = {'1' if name == 'pyvips' else '0'!r}\n"
        runs.append((f"qwen_nb {name} (bytes)",
                     switch(lambda: prepare_images(data, label=case)[0].url), REPEATS,
                     env + "prepare_images(data, label='x')"))
        runs.append((f"qwen_nb {name} (path)",
                     switch(lambda: prepare_images(path, label=path)[0].url), REPEATS,
                     env + f"prepare_images({path!r}, label='x')"))
    runs.append(("naive", lambda: naive(data), NAIVE_REPEATS, "b.naive(data)"))
    for _, function, _, _ in runs:
        function()  # warm-up: first-use imports are not what we measure
    timings = timed_runs({r[0]: r[1] for r in runs}, REPEATS,
                         at_most={r[0]: r[2] for r in runs})
    results = []
    for method, function, _, call in runs:
        wall, cpu = timings[method]
        traced_mb, payload = traced_peak_mb(function)
        rss = peak_rss_mb(path, call)
        similarity = (legibility(data, function(), libvips="pyvips" in method)
                      if method != "naive" else None)
        results.append(Result(case, method, median(wall) * 1000, median(cpu) * 1000,
                              traced_mb, rss, payload / 1e6, similarity))
    return results


def legibility(original: bytes, url: str, *, libvips: bool = False) -> tuple[float, float]:
    """SSIM of the image sent against lossless resizes of the original to its size: the
    same resize kept as RGB, which isolates what the encoding lost (Pillow's two steps,
    box reduce then Lanczos; or libvips' own shrink), and one full Lanczos pass, which
    also counts the resize's own blur."""
    sent = Image.open(io.BytesIO(base64.b64decode(url.partition(",")[2]))).convert("RGB")
    image = Image.open(io.BytesIO(original)).convert("RGB")
    if libvips:
        import pyvips

        thumb = pyvips.Image.thumbnail_buffer(original, sent.width, height=sent.height,
                                              size="force")
        same = Image.frombuffer("RGB", sent.size, thumb.write_to_memory(), "raw", "RGB", 0, 1)
    else:
        same = image.resize(sent.size, Image.Resampling.LANCZOS, reducing_gap=1.0)
    full = image.resize(sent.size, Image.Resampling.LANCZOS)
    return ssim(sent, same), ssim(sent, full)


def main() -> None:
    print(f"Pillow {Image.__version__}, numpy {np.__version__}, {os.cpu_count()} CPUs")
    cases = {"photo 4000x3000 JPEG": make_photo(), "screenshot 4000x3000 PNG": make_screenshot()}
    results: list[Result] = []
    with tempfile.TemporaryDirectory() as folder:
        for case, data in cases.items():
            extension = ".jpg" if "JPEG" in case else ".png"
            path = os.path.join(folder, "input" + extension)
            with open(path, "wb") as handle:
                handle.write(data)
            print(f"{case}: input {len(data) / 1e6:.2f} MB")
            results.extend(measure(case, data, path))

    header = (
        f"{'case':<26} {'method':<22} {'wall ms':>8} {'CPU ms':>7} {'tracemalloc MB':>15} "
        f"{'peak RSS MB':>12} {'payload MB':>11} {'SSIM same/full':>14} {'naive/this':>11}"
    )
    print("\n" + header + "\n" + "-" * len(header))
    naive_ms = {r.case: r.median_ms for r in results if r.method == "naive"}
    for r in results:
        ratio = naive_ms[r.case] / r.median_ms
        similarity = f"{r.ssim[0]:.3f}/{r.ssim[1]:.3f}" if r.ssim is not None else "-"
        print(
            f"{r.case:<26} {r.method:<22} {r.median_ms:>8.1f} {r.cpu_ms:>7.1f} "
            f"{r.tracemalloc_mb:>15.1f} "
            f"{r.rss_mb:>12.1f} {r.payload_mb:>11.2f} {similarity:>14} {ratio:>10.1f}x"
        )
    print("\nGoals (the ratios: wall, and CPU of all this process's threads):")
    naive_cpu = {r.case: r.cpu_ms for r in results if r.method == "naive"}
    for r in results:
        if r.method == "naive" or "(path)" in r.method:
            continue
        ratio = naive_ms[r.case] / r.median_ms
        cpu_ratio = naive_cpu[r.case] / r.cpu_ms
        naive_line = (f"naive {naive_ms[r.case]:.0f} ms, CPU {naive_cpu[r.case]:.0f} ms "
                      "(same run)")
        if r.case.startswith("photo"):
            met = (r.median_ms <= GOAL_PHOTO_MS and r.payload_mb <= GOAL_PHOTO_MB
                   and ratio >= GOAL_SPEEDUP)
            goal = f"<= {GOAL_PHOTO_MS:g} ms, <= {GOAL_PHOTO_MB:g} MB, >= {GOAL_SPEEDUP:g}x"
            row = "12-MP JPEG photo ready to send"
        else:
            met = (ratio >= GOAL_SCREENSHOT_SPEEDUP and r.payload_mb <= GOAL_SCREENSHOT_MB
                   and r.ssim is not None and r.ssim[0] >= GOAL_SSIM)
            goal = (f">= {GOAL_SCREENSHOT_SPEEDUP:g}x, <= {GOAL_SCREENSHOT_MB:g} MB, "
                    f"SSIM >= {GOAL_SSIM:g} vs the same resize kept lossless")
            row = f"12-MP PNG screenshot ready to send ({r.method.split()[1]})"
        measured = (f"{r.median_ms:.0f} ms (CPU {r.cpu_ms:.0f} ms), {r.payload_mb:.2f} MB, "
                    f"{ratio:.1f}x wall, {cpu_ratio:.1f}x CPU")
        if r.ssim is not None and r.case.startswith("screenshot"):
            measured += f", SSIM {r.ssim[0]:.3f} ({r.ssim[1]:.3f} vs one Lanczos pass)"
        report(f"{row}: {measured}", met, row=row, measured=measured, baseline=naive_line,
               goal=goal)


if __name__ == "__main__":
    main()
