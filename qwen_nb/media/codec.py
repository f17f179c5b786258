"""Decode, normalise, resize and encode images with Pillow (imported on first use)."""

from __future__ import annotations

import base64
import hashlib
import io
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .._errors import ImageError
from .._types import PreparedImage
from .plan import MAX_ASPECT_RATIO, Budget, plan_size
from .sniff import png_has_chunks_after_pixels, sniff_format

if TYPE_CHECKING:
    from PIL import Image

JPEG_QUALITY = 90
# Sent untouched when already within budget: every OpenAI-compatible provider decodes these.
PASSTHROUGH_FORMATS = frozenset({"JPEG", "PNG", "WEBP"})
# ...and only if already compressed to under a byte a pixel (plus room for headers);
# a photo saved as PNG is re-encoded as JPEG at a fifth of the size.
_PASSTHROUGH_BYTES_PER_PIXEL = 1.0
_PASSTHROUGH_HEADER_ALLOWANCE = 16_384
# Resize in two steps: box-average by the integer part of the scale, then Lanczos the
# rest. Box averaging is a proper low-pass for shrinking; from 12 MP it took 25 ms here
# against 115 ms for one full Lanczos pass.
_REDUCING_GAP = 1.0
# Graphics (plots, screenshots, line art) have few distinct colours even after resizing;
# photos have tens of thousands. Counted on a nearest-neighbour sample of this many pixels.
_GRAPHICS_MAX_COLOURS = 4096
_COLOUR_SAMPLE_PIXELS = 128 * 1024
# A "graphics" PNG bigger than this is probably a photo after all; JPEG then.
_PNG_MAX_BYTES_PER_PIXEL = 1.0
# A resized screenshot goes as a 256-colour PNG: on a 12-MP screenshot the RGB level-6
# encode took 180 ms and 0.9 MB, the palette one 11 + 21 ms and 0.2 MB, text intact (SSIM
# 0.99 against the RGB resize; benchmarks/bench_images.py). With 256 colours or fewer the
# palette is exact. Images drawn at their final size (figures) stay lossless RGB.
_PNG_PALETTE_COLOURS = 256
# From this size a palette PNG is deflated with run-length matches only (Z_RLE): on the
# 12-MP screenshot's 1312x960 result 9 ms against level 6's 32 ms, for the same 0.20 MB
# (a downscaled plot: 7 vs 17 ms, 91 vs 73 kB). Smaller images keep level 6, where the
# time is under a millisecond and RLE would triple a small chart's bytes.
_PNG_RLE_MIN_PIXELS = 1_000_000

_ORIENTATION_TAG = 0x0112
_GPS_IFD_TAG = 0x8825
_WHITE = (255, 255, 255)


@dataclass(frozen=True)
class Decoded:
    """An opened image plus what we learned about it before decoding pixels."""

    image: Image.Image
    format: str  # "JPEG", "PNG", ... as Pillow reports it
    size: tuple[int, int]  # as stored, before EXIF orientation
    orientation: int  # EXIF orientation, 1 = upright
    notes: tuple[str, ...] = ()


def open_encoded(data: bytes, name: str) -> Decoded:
    """Open encoded bytes lazily (header only), turning Pillow's failures into ImageError."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise ImageError(f"{name} is empty (0 bytes); there is no image in it.")
    try:
        with warnings.catch_warnings():
            # Pillow only warns between 1x and 2x its limit; a bomb is a bomb either way.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(_bomb_message(name, str(exc))) from None
    except UnidentifiedImageError:
        raise ImageError(_unidentified_message(name, data)) from None
    except Exception as exc:  # Pillow plugins raise many types on corrupt headers
        raise ImageError(
            f"{name} could not be read as an image ({type(exc).__name__}: {exc}); "
            "the file may be corrupt or truncated."
        ) from None
    width, height = image.size
    if width < 1 or height < 1:
        raise ImageError(f"{name} has zero size ({width}x{height}); there is nothing to send.")
    _check_bomb(name, width, height)
    notes: list[str] = []
    frames = getattr(image, "n_frames", 1)
    if frames > 1:
        unit = "page" if image.format == "TIFF" else "frame"
        notes.append(f"{image.format}: first {unit} of {frames} sent")
    return Decoded(
        image=image,
        format=image.format or "",
        size=(width, height),
        orientation=_encoded_orientation(image, data),
        notes=tuple(notes),
    )


def prepare_encoded(
    data: bytes, budget: Budget, *, name: str, source: str, notes: tuple[str, ...] = ()
) -> PreparedImage:
    """Encoded image bytes -> PreparedImage; passes small JPEG/PNG/WEBP through untouched."""
    decoded = open_encoded(data, name)
    image = decoded.image
    oriented = _oriented(decoded.size, decoded.orientation)
    target = plan_size(*oriented, budget)
    notes = notes + decoded.notes
    if _can_pass_through(decoded, data, budget):
        if decoded.format == "JPEG":
            # 1/8-scale decode still reads every byte: it catches truncation for ~3 ms.
            image.draft(image.mode, (max(1, decoded.size[0] // 8), max(1, decoded.size[1] // 8)))
        _load(image, name)
        return _prepared(data, decoded.format, source, oriented, oriented, notes + ("sent as is",))
    if decoded.format == "PNG" and image.mode in ("L", "RGB") and decoded.orientation == 1:
        from .vips import shrink_encoded

        shrunk = shrink_encoded(data, target) if target != decoded.size else None
        if shrunk is not None:
            return prepare_pil(
                shrunk,
                budget,
                source=source,
                notes=notes,
                original_size=oriented,
                orientation=1,
                source_format=decoded.format,
                resized=True,
            )
    if decoded.format in ("JPEG", "MPO"):
        # Decode at 1/2, 1/4 or 1/8 scale straight from the DCT: most of the speed-up.
        image.draft(image.mode, _oriented(target, decoded.orientation))
    _load(image, name)
    return prepare_pil(
        image,
        budget,
        source=source,
        notes=notes,
        original_size=oriented,
        orientation=decoded.orientation,
        source_format=decoded.format,
    )


def prepare_pil(
    image: Image.Image,
    budget: Budget,
    *,
    source: str,
    notes: tuple[str, ...] = (),
    original_size: tuple[int, int] | None = None,
    orientation: int | None = None,
    source_format: str = "",
    resized: bool = False,
) -> PreparedImage:
    """A decoded PIL image -> resized to the grid, upright, flattened, encoded.

    `resized`: the pixels were already resampled (by libvips), so a palette PNG loses
    nothing that the resize had not already changed.
    """
    from PIL import Image

    if orientation is None:
        orientation = exif_orientation(image)
    if original_size is None:
        original_size = _oriented(image.size, orientation)
    if original_size[0] < 1 or original_size[1] < 1:
        raise ImageError(
            f"{source} has zero size ({original_size[0]}x{original_size[1]}); "
            "there is nothing to send."
        )
    target = plan_size(*original_size, budget)
    image, mode_notes = normalise_mode(image)
    notes = notes + mode_notes
    stored_target = _oriented(target, orientation)
    if image.size != stored_target:
        resized = True
        image = image.resize(stored_target, Image.Resampling.LANCZOS, reducing_gap=_REDUCING_GAP)
    if original_size != target:
        notes += (f"resized from {_wxh(original_size)} to {_wxh(target)}",)
    if orientation in _TRANSPOSE_NAMES:
        image = image.transpose(getattr(Image.Transpose, _TRANSPOSE_NAMES[orientation]))
        notes += ("EXIF orientation applied",)
    image, transparent = flatten_alpha(image)
    if transparent:
        notes += ("transparent areas flattened onto white",)
    if transparent or (source_format not in ("JPEG", "MPO") and looks_like_graphics(image)):
        data, fmt = _encode_png(image, palette=resized), "PNG"
        if not transparent and len(data) > _PNG_MAX_BYTES_PER_PIXEL * _area(image.size):
            data, fmt = _encode_jpeg(image), "JPEG"
    else:
        data, fmt = _encode_jpeg(image), "JPEG"
    return _prepared(data, fmt, source, original_size, image.size, notes)


def exif_orientation(image: Image.Image) -> int:
    """The EXIF orientation tag (1..8), 1 when absent or unreadable."""
    return _orientation(image.getexif)


def _encoded_orientation(image: Image.Image, data: bytes) -> int:
    """The orientation without decoding the pixels, whenever the header has said it all."""
    from PIL import Image

    if image.format == "PNG" and not png_has_chunks_after_pixels(data):
        # PngImageFile.getexif() decodes every pixel in case EXIF follows them; here none
        # does, and the libvips path (which decodes itself) would pay for a second decode.
        return _orientation(lambda: Image.Image.getexif(image))
    return exif_orientation(image)


def _orientation(read_exif: Callable[[], Image.Exif]) -> int:
    try:
        value = read_exif().get(_ORIENTATION_TAG, 1)
    except Exception:  # malformed EXIF must not stop an otherwise fine image
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def normalise_mode(image: Image.Image) -> tuple[Image.Image, tuple[str, ...]]:
    """Convert any Pillow mode to L, RGB or RGBA, saying what changed when it matters."""
    mode = image.mode
    if mode in ("L", "RGB", "RGBA"):
        return image, ()
    if mode == "1":
        return image.convert("L"), ()
    if mode == "P":
        palette = image.palette
        has_alpha = "transparency" in image.info or (palette is not None and palette.mode == "RGBA")
        return image.convert("RGBA" if has_alpha else "RGB"), ()
    if mode in ("LA", "La", "PA", "RGBa"):
        return image.convert("RGBA"), ()
    if mode == "CMYK":
        return image.convert("RGB"), ("converted from CMYK",)
    if mode.startswith("I") or mode == "F":
        return _rescale_to_grey(image)
    return image.convert("RGB"), (f"converted from {mode}",)


def flatten_alpha(image: Image.Image) -> tuple[Image.Image, bool]:
    """RGBA -> RGB on white; returns whether any pixel was actually transparent."""
    from PIL import Image

    if image.mode != "RGBA":
        return image, False
    alpha = image.getchannel("A")
    if alpha.getextrema()[0] == 255:
        return image.convert("RGB"), False
    # Providers drop alpha in different ways (often to black); white is what a page shows.
    flat = Image.new("RGB", image.size, _WHITE)
    flat.paste(image, mask=alpha)
    return flat, True


def looks_like_graphics(image: Image.Image) -> bool:
    """True for plots, screenshots and line art: few distinct colours."""
    from PIL import Image

    sample = image
    step = max(1, int((_area(image.size) / _COLOUR_SAMPLE_PIXELS) ** 0.5))
    if step > 1:
        # Nearest-neighbour invents no new colours, unlike any smoothing filter.
        size = (max(1, image.width // step), max(1, image.height // step))
        sample = image.resize(size, Image.Resampling.NEAREST)
    return sample.getcolors(maxcolors=_GRAPHICS_MAX_COLOURS) is not None


def to_data_url(data: bytes, fmt: str) -> str:
    """A `data:image/...;base64,` URL for encoded bytes."""
    return f"data:image/{fmt.lower()};base64,{base64.b64encode(data).decode('ascii')}"


# --- internals ---------------------------------------------------------------------------

_TRANSPOSE_NAMES = {
    2: "FLIP_LEFT_RIGHT",
    3: "ROTATE_180",
    4: "FLIP_TOP_BOTTOM",
    5: "TRANSPOSE",
    6: "ROTATE_270",
    7: "TRANSVERSE",
    8: "ROTATE_90",
}


def _can_pass_through(decoded: Decoded, data: bytes, budget: Budget) -> bool:
    image = decoded.image
    width, height = decoded.size
    return (
        decoded.format in PASSTHROUGH_FORMATS
        and not decoded.notes  # animated: send one frame, not all of them
        and decoded.orientation == 1
        and (image.mode in ("L", "RGB") or (image.mode == "P" and "transparency" not in image.info))
        and budget.min_pixels <= width * height <= budget.max_pixels
        and max(width, height) <= MAX_ASPECT_RATIO * min(width, height)  # Qwen's limit
        and len(data)
        <= _PASSTHROUGH_BYTES_PER_PIXEL * width * height + _PASSTHROUGH_HEADER_ALLOWANCE
        and not _has_gps(image)  # re-encoding drops EXIF: don't send where a photo was taken
    )


def _load(image: Image.Image, name: str) -> None:
    try:
        image.load()
    except Exception as exc:  # truncated streams raise OSError, others ValueError/SyntaxError
        raise ImageError(
            f"{name} could not be decoded ({type(exc).__name__}: {exc}); "
            "the file is probably truncated or corrupt. Re-save or re-download it."
        ) from None


def _has_gps(image: Image.Image) -> bool:
    try:
        return bool(image.getexif().get_ifd(_GPS_IFD_TAG))
    except Exception:
        return False


def _rescale_to_grey(image: Image.Image) -> tuple[Image.Image, tuple[str, ...]]:
    """16-bit, 32-bit and float images: stretch the values present to 0..255."""
    kind = "float" if image.mode == "F" else "16-bit" if "16" in image.mode else "32-bit"
    work = image if image.mode in ("I", "F") else image.convert("I")
    low, high = work.getextrema()
    if 0 <= low and high <= 255 and image.mode != "F":
        return work.convert("L"), ()
    scale = 255.0 / (high - low) if high > low else 0.0
    offset = -low * scale
    # Pillow only accepts `v * a + b` here; it is applied in C as one linear map.
    grey = work.point(lambda v: v * scale + offset).convert("L")
    return grey, (f"{kind} image rescaled from [{low:.4g}, {high:.4g}] to [0, 255]",)


def _check_bomb(name: str, width: int, height: int) -> None:
    from PIL import Image

    limit = Image.MAX_IMAGE_PIXELS
    if limit is not None and width * height > limit:
        raise ImageError(
            _bomb_message(name, f"{width}x{height} = {width * height} pixels, limit {limit}")
        )


def _bomb_message(name: str, detail: str) -> str:
    return (
        f"{name} is too large to decode safely ({detail}): it could be a decompression bomb. "
        "If you trust it, raise PIL.Image.MAX_IMAGE_PIXELS, or shrink the image first."
    )


def _unidentified_message(name: str, data: bytes) -> str:
    fmt = sniff_format(data[:32])
    if fmt is not None:
        return (
            f"{name} starts like a {fmt} image but Pillow cannot read it; "
            "the file is probably truncated or corrupt. Re-save or re-download it."
        )
    head = data[:16]
    return (
        f"{name} is not an image Pillow can read (it starts with {head!r}). "
        "Accepted formats: JPEG, PNG, WEBP, GIF, BMP, TIFF."
    )


def _encode_jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def _encode_png(image: Image.Image, *, palette: bool) -> bytes:
    if palette and image.mode == "RGB":
        image = _to_palette(image)
    buffer = io.BytesIO()
    if image.mode == "P" and _area(image.size) >= _PNG_RLE_MIN_PIXELS:
        image.save(buffer, "PNG", compress_type=zlib.Z_RLE)
    else:
        # zlib's default level: on plots 25-30% smaller than level 1 for about 10 ms more.
        image.save(buffer, "PNG", compress_level=6)
    return buffer.getvalue()


def _to_palette(image: Image.Image) -> Image.Image:
    """256 colours: exact when there are no more (median cut keeps each), else octree."""
    from PIL import Image

    if image.getcolors(maxcolors=_PNG_PALETTE_COLOURS) is not None:
        return image.convert("P", palette=Image.Palette.ADAPTIVE, colors=_PNG_PALETTE_COLOURS)
    return image.quantize(_PNG_PALETTE_COLOURS, method=Image.Quantize.FASTOCTREE)


def _prepared(
    data: bytes,
    fmt: str,
    source: str,
    original_size: tuple[int, int],
    sent_size: tuple[int, int],
    notes: tuple[str, ...],
) -> PreparedImage:
    return PreparedImage(
        url=to_data_url(data, fmt),
        source=source,
        original_size=original_size,
        sent_size=tuple(sent_size),
        format=fmt,
        nbytes=len(data),
        digest=hashlib.sha256(data).hexdigest(),
        notes=notes,
    )


def _oriented(size: tuple[int, int], orientation: int) -> tuple[int, int]:
    """Swap width and height for the EXIF orientations that turn the image 90 degrees."""
    return (size[1], size[0]) if orientation in (5, 6, 7, 8) else (size[0], size[1])


def _area(size: tuple[int, int]) -> int:
    return size[0] * size[1]


def _wxh(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"
