"""Clips made with PyAV for the video tests (no downloads): each frame's brightness encodes
its index, so a test can tell which frame the sampler really returned."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def level(index: int) -> int:
    """The grey level of frame `index` (distinct for 0..24, then it wraps)."""
    return 20 + (index % 25) * 9


def make_clip(path: Path, *, seconds: float, fps: int = 10, size: tuple[int, int] = (160, 96),
              gop: int = 250, codec: str = "libx264", audio: bool = False) -> Path:
    """An H.264 (or other codec) clip whose frame i is a flat grey of level(i)."""
    import av

    width, height = size
    frames = int(round(seconds * fps))
    with av.open(str(path), mode="w") as output:
        stream = output.add_stream(codec, rate=fps)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p" if codec != "gif" else "rgb8"
        if codec == "libx264":
            stream.options = {"preset": "ultrafast", "g": str(gop), "keyint_min": str(gop),
                              "sc_threshold": "0", "qp": "0"}
        else:
            stream.gop_size = gop
        for index in range(frames):
            grey = np.full((height, width, 3), level(index), dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(grey, format="rgb24")
            for packet in stream.encode(frame):
                output.mux(packet)
        for packet in stream.encode():
            output.mux(packet)
    return path


def make_audio_only(path: Path, seconds: float = 1.0) -> Path:
    import av

    with av.open(str(path), mode="w") as output:
        stream = output.add_stream("aac", rate=16000)
        stream.layout = "mono"
        samples = np.zeros((1, 1024), dtype=np.float32)
        for index in range(int(seconds * 16000 / 1024)):
            frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
            frame.sample_rate = 16000
            frame.pts = index * 1024
            for packet in stream.encode(frame):
                output.mux(packet)
        for packet in stream.encode():
            output.mux(packet)
    return path


def frame_index_of(image_or_url, fps: int = 10) -> int:
    """The frame index (mod 25) whose grey level this image shows."""
    import base64
    import io

    from PIL import Image

    if isinstance(image_or_url, str):
        data = base64.b64decode(image_or_url.split(",", 1)[1])
        image_or_url = Image.open(io.BytesIO(data))
    mean = float(np.asarray(image_or_url.convert("L"), dtype=np.float32).mean())
    return int(round((mean - 20) / 9)) % 25
