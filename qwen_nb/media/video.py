"""Anything video-like a notebook holds -> a PreparedVideo: frames sampled as Qwen3-VL does.

Sources: a path (mp4, mov, webm, mkv, avi, gif), bytes of such a file, a numpy array
(T x H x W x 3), a list of PIL images or arrays (frames), or `Video(source, ...)` for
explicit control. Files are decoded with PyAV (the `qwen-nb[video]` extra), imported on
first use; sampling seeks to each moment rather than decoding every frame (`_decode`).
Every refusal is a VideoError raised before anything is sent.
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import io
import math
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from .._errors import VideoError
from .._types import VIDEO_ENCODINGS, PreparedImage, PreparedVideo
from .video_plan import (
    DEFAULT_FPS,
    DEFAULT_MAX_FRAMES,
    DEFAULT_MAX_VIDEO_TOKENS,
    HARD_MAX_FRAMES,
    frame_count,
    frame_indices,
    frame_size,
    index_range,
    visual_tokens,
)

VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".webm", ".mkv", ".avi", ".gif")
ACCEPTED_VIDEOS = (
    "a path to an mp4, mov, webm, mkv, avi or gif file; bytes of such a file; a numpy uint8 "
    "array T x H x W x 3; a list of PIL images or H x W x 3 arrays (the frames); or "
    "qwen_nb.Video(source, fps=2, start=None, end=None, max_frames=None, max_pixels=None)"
)
JPEG_QUALITY = 85
SPARSE_SPACING = 2.0  # seconds between samples beyond which cheaper nearby frames are taken
THUMBNAIL_HEIGHT = 64
# DashScope's frame list takes 4 to 512 frames.
FRAME_LIST_RANGE = (4, 512)


@dataclass(frozen=True)
class Video:
    """A video with explicit sampling: frames per second, a time range, caps.

    `fps` is the sampling rate (for a frame list or array: the rate its frames were taken
    at); `start` / `end` in seconds; `max_frames` caps the frame count (a longer clip is
    sampled more sparsely); `max_pixels` caps the pixels of each frame."""

    source: Any
    fps: float = DEFAULT_FPS
    start: float | None = None
    end: float | None = None
    max_frames: int | None = None
    max_pixels: int | None = None

    def __post_init__(self) -> None:
        def number(name: str, value: Any, *, positive: bool) -> None:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and (
                math.isfinite(value) and (value > 0 if positive else value >= 0))
            if not ok:
                rule = "a positive number" if positive else "a number of seconds >= 0"
                raise VideoError(f"Video({name}={value!r}) is not allowed: use {rule}.")

        number("fps", self.fps, positive=True)
        for name in ("start", "end"):
            if getattr(self, name) is not None:
                number(name, getattr(self, name), positive=False)
        if self.start is not None and self.end is not None and self.start >= self.end:
            raise VideoError(
                f"Video(start={self.start}, end={self.end}): start must be before end."
            )
        for name, low in (("max_frames", 2), ("max_pixels", 32 * 32)):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                      or value < low):
                raise VideoError(f"Video({name}={value!r}) is not allowed: use a whole "
                                 f"number of at least {low}.")
        if self.max_frames is not None and self.max_frames > HARD_MAX_FRAMES:
            raise VideoError(f"Video(max_frames={self.max_frames}) is over Qwen3-VL's "
                             f"{HARD_MAX_FRAMES} frames; lower it.")

    def __repr__(self) -> str:
        return (f"Video({_describe_source(self.source)}, fps={self.fps}, start={self.start}, "
                f"end={self.end}, max_frames={self.max_frames}, max_pixels={self.max_pixels})")


def is_video_like(value: Any) -> bool:
    """True for a Video or a path / bytes of a video file (cheap; imports nothing).

    Arrays and frame lists count only inside Video() here, since a list of images is also
    several images; -v and video= accept them directly."""
    if isinstance(value, Video):
        return True
    if isinstance(value, (str, os.PathLike)):
        try:
            path = os.fspath(value)
        except TypeError:
            return False
        return isinstance(path, str) and path.lower().endswith(VIDEO_EXTENSIONS[:-1])
    if isinstance(value, (bytes, bytearray)):
        return sniff_video(bytes(value[:16])) is not None
    ndarray = _loaded_type("numpy", "ndarray")
    return ndarray is not None and isinstance(value, ndarray) and value.ndim == 4


def sniff_video(head: bytes) -> str | None:
    """The container a file's first bytes announce (mp4/mov, webm/mkv, avi, gif), or None."""
    if head[4:8] == b"ftyp":
        return "mp4"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "webm"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "avi"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    return None


def prepare_video(
    value: Any,
    *,
    label: str,
    encoding: str = "images",
    max_video_tokens: int = DEFAULT_MAX_VIDEO_TOKENS,
) -> PreparedVideo:
    """A video-like value -> PreparedVideo in `encoding`; refuses bad input (VideoError)."""
    if encoding not in VIDEO_ENCODINGS:
        raise VideoError(f"--video-as {encoding!r} is unknown; use auto, "
                         f"{', '.join(VIDEO_ENCODINGS)}.")
    video = value if isinstance(value, Video) else Video(value)
    sampled = _sample(video, label)
    tokens = visual_tokens(len(sampled.images), sampled.images[0].size)
    if tokens > max_video_tokens:
        width, height = sampled.images[0].size
        raise VideoError(
            f"`{label}` would cost about {tokens:,} visual tokens ({len(sampled.images)} frames "
            f"of {width}x{height}), over the {max_video_tokens:,} cap. Raise it with "
            "--max-video-tokens (max_video_tokens= in ask()), or send fewer frames or pixels "
            "(Video(..., max_frames=, max_pixels=, start=, end=))."
        )
    low, high = FRAME_LIST_RANGE
    notes = list(sampled.notes)
    images, times = list(sampled.images), list(sampled.times)
    if encoding == "frames":
        if len(images) > high:
            raise VideoError(f"`{label}` has {len(images)} frames; DashScope's frame list takes "
                             f"at most {high}. Use Video(..., max_frames={high}).")
        if len(images) < low:
            notes.append(f"last frame repeated to reach DashScope's minimum of {low} frames")
            while len(images) < low:
                images.append(images[-1])
                times.append(times[-1])
    frames = tuple(kept.prepared(f"{label} @ {t:.1f} s") for kept, t in
                   zip(images, times, strict=True))
    mp4 = _encode_mp4(images, sampled.sample_fps) if encoding == "video_url" else None
    thumbnails = tuple(kept.thumbnail for kept in images)
    return PreparedVideo(
        source=sampled.source,
        frames=frames,
        timestamps=tuple(round(t, 3) for t in times),
        encoding=encoding,
        mp4_url=None if mp4 is None else "data:video/mp4;base64," + base64.b64encode(
            mp4).decode("ascii"),
        sample_fps=sampled.sample_fps,
        original_size=sampled.original_size,
        duration=sampled.duration,
        thumbnails=thumbnails,
        notes=tuple(notes),
    )


# --- sampling ----------------------------------------------------------------------------


@dataclass
class _Sampled:
    images: list[_Kept]  # all of one size
    times: list[float]
    sample_fps: float
    source: str
    original_size: tuple[int, int]
    duration: float
    notes: tuple[str, ...] = ()


def _sample(video: Video, label: str) -> _Sampled:
    source = video.source
    if isinstance(source, Video):
        raise VideoError(f"`{label}` is a Video inside a Video; pass the inner source.")
    if isinstance(source, (str, os.PathLike)):
        path = os.path.expanduser(os.fspath(source))
        if not isinstance(path, str):
            raise VideoError(f"`{label}` is a bytes path; pass it as str.")
        if not os.path.isfile(path):
            what = "a directory" if os.path.isdir(path) else "not found"
            raise VideoError(f"`{label}`: {path!r} is {what}. Check the path (relative paths "
                             f"start at {os.getcwd()!r}).")
        try:
            with open(path, "rb") as handle:
                handle.read(1)
        except OSError as exc:
            raise VideoError(f"`{label}`: {path!r} cannot be read ({exc.strerror or exc}).") \
                from None
        return _sample_file(path, video, label, describe=_short(path))
    if isinstance(source, (bytes, bytearray, memoryview, io.BytesIO)):
        data = source.getvalue() if isinstance(source, io.BytesIO) else bytes(source)
        if not data:
            raise VideoError(f"`{label}` is empty bytes; there is no video in it.")
        return _sample_file(io.BytesIO(data), video, label,
                            describe=f"{sniff_video(data[:16]) or 'video'} bytes")
    ndarray = _loaded_type("numpy", "ndarray")
    if ndarray is not None and isinstance(source, ndarray):
        return _sample_frames(_array_frames(source, label), video, label,
                              describe=f"numpy {source.dtype} {'x'.join(map(str, source.shape))}")
    if isinstance(source, (list, tuple)):
        if not source:
            raise VideoError(f"`{label}` is an empty {type(source).__name__}: no frames.")
        return _sample_frames([_frame_image(item, f"{label}[{i}]") for i, item in
                               enumerate(source)], video, label,
                              describe=f"{len(source)} frames")
    raise VideoError(f"`{label}` is a {_type_name(source)}, which cannot be sent as a video. "
                     f"Accepted: {ACCEPTED_VIDEOS}.")


def _sample_frames(images: list[Any], video: Video, label: str, describe: str) -> _Sampled:
    """Frames given by the user are sent as given (qwen-vl-utils does not resample a frame
    list), at `video.fps`, within the frame cap; an odd count repeats the last frame."""
    cap = video.max_frames or DEFAULT_MAX_FRAMES
    times = [i / video.fps for i in range(len(images))]
    keep = [i for i, t in enumerate(times) if (video.start is None or t >= video.start)
            and (video.end is None or t <= video.end)]
    if not keep:
        raise VideoError(f"`{label}`: no frame lies between start={video.start} and "
                         f"end={video.end} (frames at {video.fps:g} per second).")
    if len(keep) > cap:
        raise VideoError(
            f"`{label}` has {len(keep)} frames, more than the cap of {cap}. Pass fewer "
            f"(e.g. frames[::{math.ceil(len(keep) / cap)}]) or raise the cap with "
            f"qwen_nb.Video(frames, max_frames={min(len(keep), HARD_MAX_FRAMES)})."
        )
    images = [images[i] for i in keep]
    times = [times[i] for i in keep]
    notes: tuple[str, ...] = ()
    if len(images) % 2:
        images.append(images[-1])
        times.append(times[-1])
        notes = ("odd frame count: the last frame is repeated (frames go in pairs)",)
    width, height = images[0].size
    size = frame_size(width, height, len(images), max_pixels=video.max_pixels)
    resized = [_Kept.of(_resize(image.convert("RGB"), size)) for image in images]
    duration = (len(keep)) / video.fps
    return _Sampled(resized, times, video.fps, f"{label} ({describe})", (width, height),
                    duration, notes)


def _sample_file(file: Any, video: Video, label: str, describe: str) -> _Sampled:
    av = _import_av()
    try:
        container = av.open(file, mode="r")
    except Exception as exc:
        raise VideoError(
            f"`{label}` could not be opened as a video ({type(exc).__name__}: "
            f"{_short(str(exc), 120)}). Use an mp4, mov, webm, mkv, avi or gif file."
        ) from None
    try:
        if not container.streams.video:
            kinds = sorted({stream.type for stream in container.streams})
            held = (f"it holds only {' and '.join(kinds)}" if kinds
                    else "it holds no streams at all: an empty, zero-length clip")
            raise VideoError(f"`{label}` has no video stream ({held}); nothing to send.")
        stream = container.streams.video[0]
        info = _stream_info(container, stream)
        if info.total_frames < 1 or info.duration <= 0:
            raise VideoError(f"`{label}` is a zero-length clip: it holds no frames.")
        first, last = index_range(video.start, video.end, info.fps, info.total_frames)
        cap = video.max_frames or DEFAULT_MAX_FRAMES
        count = frame_count((last - first + 1) / info.fps, video.fps, cap, last - first + 1)
        indices = frame_indices(first, last, count)
        targets = [index / info.fps for index in indices]
        size = frame_size(info.width, info.height, count, max_pixels=video.max_pixels)
        spacing = (targets[-1] - targets[0]) / (count - 1) if count > 1 else 0.0
        # Frame threads pay off on long runs of decoding; after every seek they must refill,
        # which costs more than they give when samples sit far apart.
        stream.thread_type = "SLICE" if spacing >= SPARSE_SPACING else "AUTO"
        container.seek(0)
        images, times = _decode(container, stream, targets, size, keyframes=info.keyframes,
                                tolerance=0.45 * spacing, frame_period=1 / info.fps)
    finally:
        container.close()
    if not images:
        raise VideoError(f"`{label}` is a zero-length clip: no frame could be decoded.")
    notes: tuple[str, ...] = ()
    if len(images) % 2:
        images.append(images[-1])
        times.append(times[-1])
        notes = ("odd frame count: the last frame is repeated (frames go in pairs)",)
    span = (last - first + 1) / info.fps
    sample_fps = len(images) / span if span > 0 else video.fps
    source = (f"{label} ({describe}, {info.width}x{info.height}, {info.duration:.1f} s at "
              f"{info.fps:g} fps)")
    return _Sampled(images, times, sample_fps, source, (info.width, info.height), span, notes)


@dataclass(frozen=True)
class _StreamInfo:
    width: int
    height: int
    fps: float
    duration: float
    total_frames: int
    keyframes: tuple[float, ...]  # seconds from the stream's start


def _stream_info(container: Any, stream: Any) -> _StreamInfo:
    """Size, rate, duration, frame count and keyframe times from one demux pass (packets
    are read, not decoded: a fraction of the cost of decoding)."""
    unit = float(stream.time_base)  # plain floats: Fraction arithmetic per packet is slow
    start = stream.start_time or 0
    count, last = 0, 0
    keyframes: list[float] = []
    for packet in container.demux(stream):
        pts = packet.pts
        if pts is None or not packet.size:
            continue
        count += 1
        last = max(last, pts - start + (packet.duration or 0))
        if packet.is_keyframe:
            keyframes.append((pts - start) * unit)
    end = last * unit
    rate = stream.average_rate or stream.guessed_rate
    fps = float(rate) if rate and 0 < float(rate) <= 1000 else 0.0
    if fps <= 0 and end > 0:
        fps = count / end
    if end <= 0 and count and fps > 0:
        end = count / fps
    return _StreamInfo(stream.codec_context.width, stream.codec_context.height, fps or 1.0,
                       end, count, tuple(sorted(keyframes)))


def _decode(container: Any, stream: Any, targets: Sequence[float], size: tuple[int, int],
            *, keyframes: Sequence[float], tolerance: float, frame_period: float
            ) -> tuple[list[_Kept], list[float]]:
    """The frame at each target time, or a cheaper one within `tolerance` of it.

    The keyframe times come from the demux pass. A keyframe within tolerance is taken as
    is (one frame decoded). Otherwise, when the decoder is already just before the target
    (close targets), it decodes on to the exact frame; when it has to seek to the keyframe
    before the target, it stops at the first frame inside the tolerance window instead of
    running on to the target itself. Every frame keeps its own time. Only the chosen frames
    are converted, straight to their final size, so memory stays within a few frames of
    the output."""
    base = float(stream.start_time * stream.time_base) if stream.start_time else 0.0
    width, height = size
    images: list[_Kept] = []
    times: list[float] = []
    frames: Iterator[Any] | None = None
    position = -math.inf  # time of the last frame decoded
    eps = frame_period / 2
    seekable = bool(keyframes)
    # Samples this far apart each sit in their own stretch of the clip: decoding dominates,
    # and the frames in between are never needed.
    sparse = tolerance >= SPARSE_SPACING * 0.45

    def frame_time(frame: Any) -> float:
        return (float(frame.time) if frame.time is not None else 0.0) - base

    def keyframe_before(moment: float) -> float | None:
        index = bisect.bisect_right(keyframes, moment + 1e-6) - 1
        return keyframes[index] if index >= 0 else None

    for target in targets:
        chosen_before = times[-1] if times else -math.inf
        close = [k for k in {keyframe_before(target + tolerance), keyframe_before(target)}
                 if k is not None and abs(k - target) <= tolerance and k > chosen_before]
        goal = min(close, key=lambda k: abs(k - target)) if close else target
        restart = keyframe_before(goal)
        behind = position >= goal - eps or (restart is not None and position < restart - eps)
        if frames is None or (seekable and behind and restart is not None):
            if seekable and restart is not None:
                container.seek(int((restart + base) / stream.time_base), stream=stream,
                               backward=True, any_frame=False)
            elif frames is None:
                container.seek(0)
            frames = container.decode(stream)
        if sparse and not close and restart is not None and position <= restart + eps:
            # Decoding from a keyframe for a sparse sample: stop at the first frame in the
            # tolerance window (and never before the range) rather than run on to the target.
            goal = max(target - tolerance, restart, chosen_before + frame_period, targets[0])
        chosen = candidate = None
        for frame in frames:
            moment = frame_time(frame)
            position = moment
            if moment <= chosen_before:
                continue
            candidate = frame
            if moment >= goal - eps:
                chosen = frame
                break
        if chosen is None:  # the stream ended before the target: take its last frame
            if candidate is None:
                break
            chosen = candidate
        times.append(frame_time(chosen))
        # Scaled in its own (YUV) format first, then converted at the small size: about
        # 2.5x cheaper than scaling and converting a 1080p frame in one step.
        small = chosen.reformat(width=width, height=height, interpolation="AREA")
        images.append(_Kept.of(small.reformat(format="rgb24").to_image()))
    return images, times


# --- arrays and frames ---------------------------------------------------------------


def _array_frames(array: Any, label: str) -> list[Any]:
    from PIL import Image

    if array.ndim != 4 or array.shape[-1] != 3 or 0 in array.shape:
        raise VideoError(
            f"`{label}` is an array of shape {array.shape}; a video array must be "
            "T x H x W x 3 (frames, height, width, RGB) with no empty axis."
        )
    if array.dtype.kind == "f":
        import numpy as np

        if not np.isfinite(array).all() or array.min() < 0 or array.max() > 1:
            raise VideoError(f"`{label}` is a float array with values outside [0, 1]; "
                             "scale it to [0, 1] or convert to uint8.")
        array = (array * 255).round().astype("uint8")
    elif array.dtype.name != "uint8":
        raise VideoError(f"`{label}` has dtype {array.dtype}; a video array must be uint8 "
                         "(0-255) or float in [0, 1].")
    return [Image.fromarray(frame) for frame in array]


def _frame_image(item: Any, label: str) -> Any:
    pil_image = _loaded_type("PIL.Image", "Image")
    if pil_image is not None and isinstance(item, pil_image):
        return item
    ndarray = _loaded_type("numpy", "ndarray")
    if ndarray is not None and isinstance(item, ndarray):
        if item.ndim != 3 or item.shape[-1] != 3:
            raise VideoError(f"`{label}` is an array of shape {item.shape}; a frame must be "
                             "H x W x 3.")
        return _array_frames(item[None], label)[0]
    raise VideoError(f"`{label}` is a {_type_name(item)}; each frame must be a PIL image or "
                     "an H x W x 3 array.")


# --- encoding ----------------------------------------------------------------------------


def _resize(image: Any, size: tuple[int, int]) -> Any:
    from PIL import Image

    return image if image.size == size else image.resize(size, Image.Resampling.BICUBIC,
                                                         reducing_gap=3.0)


@dataclass(frozen=True)
class _Kept:
    """A sampled frame as the JPEG that will be sent (and its thumbnail): kept encoded
    from the moment it is decoded, so memory holds kilobytes per frame, not megabytes."""

    jpeg: bytes
    size: tuple[int, int]
    thumbnail: str

    @classmethod
    def of(cls, image: Any) -> _Kept:
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=JPEG_QUALITY)
        return cls(buffer.getvalue(), image.size, _thumbnail(image))

    def prepared(self, source: str) -> PreparedImage:
        return PreparedImage(
            url="data:image/jpeg;base64," + base64.b64encode(self.jpeg).decode("ascii"),
            source=source, original_size=self.size, sent_size=self.size, format="JPEG",
            nbytes=len(self.jpeg), digest=hashlib.sha256(self.jpeg).hexdigest(),
        )

    def image(self) -> Any:
        from PIL import Image

        return Image.open(io.BytesIO(self.jpeg)).convert("RGB")


def _thumbnail(image: Any) -> str:
    width, height = image.size
    small = image.resize((max(1, round(width * THUMBNAIL_HEIGHT / height)), THUMBNAIL_HEIGHT),
                         reducing_gap=2.0)
    buffer = io.BytesIO()
    small.save(buffer, format="JPEG", quality=70)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _encode_mp4(images: Sequence[_Kept], fps: float) -> bytes:
    """The sampled frames as a small H.264 MP4 at the sampling rate (never the original)."""
    from fractions import Fraction

    av = _import_av()
    buffer = io.BytesIO()
    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    with av.open(buffer, mode="w", format="mp4") as output:
        stream = output.add_stream(codec, rate=Fraction(fps).limit_denominator(1000))
        stream.width, stream.height = images[0].size
        stream.pix_fmt = "yuv420p"
        if codec == "libx264":
            stream.options = {"preset": "veryfast", "crf": "23"}
        for kept in images:
            frame = av.VideoFrame.from_image(kept.image())
            for packet in stream.encode(frame):
                output.mux(packet)
        for packet in stream.encode():
            output.mux(packet)
    return buffer.getvalue()


# --- helpers -----------------------------------------------------------------------------


def _import_av() -> Any:
    try:
        import av
    except ImportError:
        raise VideoError(
            "Video needs PyAV, which is not installed: pip install 'qwen-nb[video]' "
            "(or pip install av)."
        ) from None
    return av


def _loaded_type(module: str, attribute: str) -> type | None:
    """A class from a module only if that module is already imported: never import it."""
    loaded = sys.modules.get(module)
    found = getattr(loaded, attribute, None) if loaded is not None else None
    return found if isinstance(found, type) else None


def _describe_source(source: Any) -> str:
    if isinstance(source, (str, os.PathLike)):
        return repr(os.fspath(source))
    shape = getattr(source, "shape", None)
    if shape is not None:
        return f"<array {'x'.join(map(str, shape))}>"
    if isinstance(source, (list, tuple)):
        return f"<{len(source)} frames>"
    if isinstance(source, (bytes, bytearray)):
        return f"<{len(source):,} bytes>"
    return f"<{_type_name(source)}>"


def _type_name(value: Any) -> str:
    cls = type(value)
    return cls.__qualname__ if cls.__module__ == "builtins" else (
        f"{cls.__module__}.{cls.__qualname__}")


def _short(text: str, limit: int = 80) -> str:
    if len(text) <= limit:
        return text
    keep = (limit - 1) // 2
    return f"{text[:keep]}…{text[-keep:]}"
