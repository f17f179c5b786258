"""Video sampling speed and memory (run: python benchmarks/bench_video.py).

Goals (issue 15): sampling 64 frames from a 10-minute 1080p H.264 clip takes <= 3 s and is
>= 5x faster than decoding every frame (same run), and peak RSS grows by <= 200 MB while
sampling. The clip is made here with PyAV (libx264 ultrafast, 25 fps, a keyframe every 250
frames as in real files) and kept in the temp directory, since making it takes minutes.

Each measurement runs in a fresh subprocess, so the page cache is warm for both sides
alike and the peak RSS is the sampler's own.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _bench import ROOT, median, table, verdict  # noqa: E402

FPS = 25
GOP = 250
SIZE = (1920, 1080)
FRAMES_OUT = 64

SAMPLE = """
import resource, sys, time
sys.path.insert(0, {root!r})
from qwen_nb.media.video import Video, prepare_video
import av, PIL.Image, numpy  # imported before the baseline RSS is read
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
video = prepare_video(Video({path!r}, max_frames={frames}), label="clip")
elapsed = time.perf_counter() - started
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(elapsed, len(video.frames), (after - before) / 1024, video.frame_size)
"""

DECODE_ALL = """
import sys, time
import av
started = time.perf_counter()
with av.open({path!r}) as container:
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    count = sum(1 for _ in container.decode(stream))
print(time.perf_counter() - started, count)
"""


def make_clip(path: Path, seconds: int) -> None:
    """A 1080p H.264 clip: a moving gradient and bar, encoded ultrafast with a long GOP."""
    import av
    import numpy as np

    width, height = SIZE
    luma = ((np.arange(width)[None, :] // 4 + np.arange(height)[:, None] // 4) % 256).astype(
        np.uint8)
    chroma = np.full((height // 2, width), 128, np.uint8)
    temporary = path.with_suffix(".partial.mp4")
    started = time.monotonic()
    with av.open(str(temporary), mode="w") as output:
        stream = output.add_stream("libx264", rate=FPS)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "ultrafast", "g": str(GOP), "keyint_min": str(GOP),
                          "sc_threshold": "0", "crf": "30"}
        for index in range(seconds * FPS):
            plane = np.roll(luma, index * 3, axis=1)
            left = (index * 9) % (width - 160)
            plane[400:680, left:left + 160] = 235
            frame = av.VideoFrame.from_ndarray(np.vstack([plane, chroma]), format="yuv420p")
            for packet in stream.encode(frame):
                output.mux(packet)
        for packet in stream.encode():
            output.mux(packet)
    temporary.rename(path)
    print(f"made {path} ({path.stat().st_size / 1e6:.0f} MB) in "
          f"{time.monotonic() - started:.0f} s", flush=True)


def run(code: str) -> list[str]:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONPATH": ROOT})
    return out.stdout.split(maxsplit=3)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=600)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    path = Path(tempfile.gettempdir()) / f"qwen_nb_bench_{args.seconds}s_1080p_gop{GOP}.mp4"
    if not path.exists():
        make_clip(path, args.seconds)
    sampled, decoded, growth = [], [], []
    shape = ""
    for _ in range(args.repeat):
        elapsed, count, grown, shape = run(SAMPLE.format(root=ROOT, path=str(path),
                                                         frames=FRAMES_OUT))
        sampled.append(float(elapsed))
        growth.append(float(grown))
        assert int(count) == FRAMES_OUT, count
        elapsed, total = run(DECODE_ALL.format(path=str(path)))
        decoded.append(float(elapsed))
    sample_s, decode_s, grown_mb = median(sampled), median(decoded), max(growth)
    ratio = decode_s / sample_s
    minutes = args.seconds / 60
    print(table(["what", "seconds", ""], [
        [f"qwen_nb: {FRAMES_OUT} frames ({shape.strip()}) from {minutes:g} min 1080p",
         f"{sample_s:.2f}", f"{ratio:.1f}x faster"],
        [f"decode all {total} frames (PyAV, threaded)", f"{decode_s:.2f}", "baseline"],
    ]))
    met = sample_s <= 3.0 and ratio >= 5.0 and grown_mb <= 200
    print(f"[{verdict(met)}] {FRAMES_OUT} frames in {sample_s:.2f} s (<= 3 s), {ratio:.1f}x "
          f"faster than decoding all (>= 5x), peak RSS +{grown_mb:.0f} MB (<= 200 MB)")
    print("RESULT " + json.dumps({
        "row": f"sample {FRAMES_OUT} frames from a {minutes:g}-min 1080p H.264 clip",
        "measured": f"{sample_s:.2f} s, {ratio:.1f}x, peak RSS +{grown_mb:.0f} MB",
        "baseline": f"decode every frame {decode_s:.1f} s",
        "goal": "<= 3 s, >= 5x, <= 200 MB",
        "met": met}))


if __name__ == "__main__":
    main()
