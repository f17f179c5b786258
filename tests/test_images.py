"""prepare_images on every input kind: decode what would be sent and check it."""

from __future__ import annotations

import base64
import io
import pathlib
import struct
import subprocess
import sys
import zlib

import matplotlib
import numpy as np
import pytest
from PIL import Image

from qwen_nb._errors import ImageError, InputError
from qwen_nb._types import DEFAULT_MAX_PIXELS, PreparedImage
from qwen_nb.media.images import check_payload_size, is_image_like, prepare_images

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

RED = (220, 30, 40)
BLUE = (20, 40, 200)


# --- helpers -------------------------------------------------------------------------------


def decode(prepared: PreparedImage) -> Image.Image:
    """The image exactly as the provider will see it."""
    header, _, payload = prepared.url.partition(",")
    assert header == f"data:image/{prepared.format.lower()};base64"
    data = base64.b64decode(payload)
    assert len(data) == prepared.nbytes
    image = Image.open(io.BytesIO(data))
    image.load()
    assert image.format == prepared.format
    # A resized graphic may go as a 256-colour palette PNG: RGB pixels to the model.
    return image.convert("RGB") if image.mode == "P" else image


def payload_bytes(prepared: PreparedImage) -> bytes:
    return base64.b64decode(prepared.url.partition(",")[2])


def encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def two_colour(size: tuple[int, int], mode: str = "RGB") -> Image.Image:
    """Left half RED, right half BLUE: survives resizing and shows mirroring."""
    image = Image.new("RGB", size, RED)
    image.paste(BLUE, (size[0] // 2, 0, size[0], size[1]))
    return image.convert(mode) if mode != "RGB" else image


def photo(size: tuple[int, int], seed: int = 0) -> Image.Image:
    """Noisy gradients: many colours, so it is treated (and encoded) as a photo."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0 : size[1], 0 : size[0]]
    base = np.stack([x * 200 / size[0], y * 200 / size[1], (x + y) * 100 / sum(size)], -1)
    noise = rng.normal(0, 12, base.shape)
    return Image.fromarray(np.uint8(np.clip(base + noise + 20, 0, 255)))


def close(pixel: tuple[int, ...] | int, expected: tuple[int, ...] | int, tol: int = 24) -> bool:
    pixel = pixel if isinstance(pixel, tuple) else (pixel,)
    expected = expected if isinstance(expected, tuple) else (expected,)
    return all(abs(a - b) <= tol for a, b in zip(pixel, expected, strict=True))


def prepare_one(value: object, **options: object) -> PreparedImage:
    prepared = prepare_images(value, label="x", **options)
    assert len(prepared) == 1
    return prepared[0]


def assert_on_grid(prepared: PreparedImage, image: Image.Image, unit: int = 32) -> None:
    assert image.size == prepared.sent_size
    assert image.width % unit == 0 and image.height % unit == 0
    assert image.width * image.height <= DEFAULT_MAX_PIXELS


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


# --- PIL images in every mode ----------------------------------------------------------------


def _p_with_transparency() -> Image.Image:
    image = two_colour((200, 100)).convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
    blue_index = image.getpixel((150, 50))
    image.info["transparency"] = blue_index
    return image


def _i16() -> Image.Image:
    ramp = np.tile(np.linspace(0, 4000, 256, dtype=np.uint16), (64, 1))
    return Image.fromarray(ramp)  # mode I;16


def _float_mode() -> Image.Image:
    return Image.fromarray(np.tile(np.linspace(-1, 1, 256, dtype=np.float32), (64, 1)))


# (name, image, expected sent mode, expected format, {pixel (fraction x, y): colour}, note part)
PIL_CASES = [
    ("RGB", two_colour((640, 480)), "RGB", "PNG", {(0.1, 0.5): RED, (0.9, 0.5): BLUE}, None),
    ("L", two_colour((640, 480), "L"), "L", "PNG", {(0.1, 0.5): 82, (0.9, 0.5): 52}, None),
    (
        "RGBA transparent",
        Image.merge("RGBA", (*two_colour((640, 480)).split(), Image.new("L", (640, 480), 0))),
        "RGB",
        "PNG",
        {(0.1, 0.5): (255, 255, 255)},
        "flattened onto white",
    ),
    ("RGBA opaque", two_colour((640, 480), "RGBA"), "RGB", "PNG", {(0.1, 0.5): RED}, None),
    ("LA", two_colour((640, 480), "LA"), "RGB", "PNG", {(0.1, 0.5): (82, 82, 82)}, None),
    (
        "P with transparency",
        _p_with_transparency(),
        "RGB",
        "PNG",
        {(0.1, 0.5): RED, (0.9, 0.5): (255, 255, 255)},
        "flattened onto white",
    ),
    ("CMYK", two_colour((640, 480), "CMYK"), "RGB", "PNG", {(0.1, 0.5): RED}, "CMYK"),
    (
        "1",
        two_colour((640, 480), "L").point(lambda v: 255 if v > 60 else 0, "1"),
        "L",
        "PNG",
        {(0.1, 0.5): 255, (0.9, 0.5): 0},
        None,
    ),
    ("I;16", _i16(), "L", "PNG", {(0.0, 0.5): 0, (0.99, 0.5): 255}, "16-bit image rescaled"),
    ("F", _float_mode(), "L", "PNG", {(0.0, 0.5): 0, (0.99, 0.5): 255}, "float image rescaled"),
    ("RGB photo", photo((640, 480)), "RGB", "JPEG", {}, None),
]


@pytest.mark.parametrize(
    "image, mode, fmt, pixels, note",
    [case[1:] for case in PIL_CASES],
    ids=[case[0] for case in PIL_CASES],
)
def test_pil_modes(image, mode, fmt, pixels, note):
    prepared = prepare_one(image)
    sent = decode(prepared)
    assert_on_grid(prepared, sent)
    assert sent.mode == mode
    assert prepared.format == fmt
    for (fx, fy), colour in pixels.items():
        xy = (int(fx * (sent.width - 1)), int(fy * (sent.height - 1)))
        assert close(sent.getpixel(xy), colour), (xy, sent.getpixel(xy), colour)
    if note:
        assert any(note in n for n in prepared.notes), prepared.notes
    assert prepared.source == f"x (PIL {image.mode} {image.width}x{image.height})"
    assert prepared.original_size == image.size


def test_large_pil_image_is_resized_within_budget_and_noted():
    prepared = prepare_one(photo((4000, 3000)))
    sent = decode(prepared)
    assert sent.size == (1312, 960)
    assert_on_grid(prepared, sent)
    assert "resized from 4000x3000 to 1312x960" in prepared.notes
    assert prepared.format == "JPEG"
    assert prepared.visual_tokens == 41 * 30


def test_max_pixels_and_unit_are_honoured():
    prepared = prepare_one(photo((1000, 1000)), max_pixels=256 * 28 * 28, unit=28)
    sent = decode(prepared)
    assert sent.width % 28 == 0 and sent.height % 28 == 0
    assert sent.width * sent.height <= 256 * 28 * 28


def test_tiny_image_is_upscaled_only_to_the_processor_minimum():
    # Qwen3-VL's processor enlarges anything under 65,536 px (64 visual tokens) itself, so
    # the image is sent at that size and the estimate is what the server counts.
    prepared = prepare_one(two_colour((10, 10)))
    assert decode(prepared).size == (256, 256)
    assert prepared.visual_tokens == 64


def test_exif_orientation_of_a_pil_image_is_applied():
    image = two_colour((400, 300))
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: turn 90 degrees clockwise to view
    loaded = Image.open(io.BytesIO(encode(image, "PNG", exif=exif)))
    prepared = prepare_one(loaded)
    sent = decode(prepared)
    assert sent.size == (288, 384)
    assert close(sent.getpixel((144, 10)), RED)  # the left half is now on top
    assert close(sent.getpixel((144, 370)), BLUE)
    assert "EXIF orientation applied" in prepared.notes


# --- numpy ---------------------------------------------------------------------------------


def _rgb_array(dtype=np.uint8, scale=255.0) -> np.ndarray:
    array = np.zeros((64, 128, 3), dtype=np.float64)
    array[:, :64] = np.array(RED) / 255.0
    array[:, 64:] = np.array(BLUE) / 255.0
    return (array * scale).astype(dtype)


NUMPY_CASES = [
    ("uint8 HxWx3", _rgb_array(), "RGB", {(0.1, 0.5): RED, (0.9, 0.5): BLUE}, None),
    (
        "uint8 HxWx4",
        np.dstack([_rgb_array(), np.full((64, 128), 255, np.uint8)]),
        "RGB",
        {(0.1, 0.5): RED},
        None,
    ),
    ("uint8 HxW", np.tile(np.uint8([0, 200]).repeat(64), (64, 1)), "L", {(0.9, 0.5): 200}, None),
    ("uint8 HxWx1", np.full((64, 128, 1), 77, np.uint8), "L", {(0.5, 0.5): 77}, None),
    ("float 0..1", _rgb_array(np.float32, 1.0), "RGB", {(0.1, 0.5): RED}, None),
    (
        "float other range",
        np.tile(np.linspace(-3.1, 7.2, 128), (64, 1)),
        "L",
        {(0.0, 0.5): 0, (0.99, 0.5): 255},
        "float array rescaled from [-3.1, 7.2] to [0, 255]",
    ),
    (
        "uint16",
        np.tile(np.linspace(0, 4095, 128).astype(np.uint16), (64, 1)),
        "L",
        {(0.0, 0.5): 0, (0.99, 0.5): 255},
        "uint16 array rescaled from [0, 4095] to [0, 255]",
    ),
    ("int64 in 0..255", _rgb_array(np.int64), "RGB", {(0.1, 0.5): RED}, None),
    (
        "bool mask",
        np.tile(np.array([False, True]).repeat(64), (64, 1)),
        "L",
        {(0.1, 0.5): 0, (0.9, 0.5): 255},
        None,
    ),
    (
        "float with NaN",
        np.where(np.eye(64, 128) > 0, np.nan, 0.5),
        "L",
        {(0.5, 0.1): 128},
        "NaN/inf values",
    ),
]


@pytest.mark.parametrize(
    "array, mode, pixels, note",
    [case[1:] for case in NUMPY_CASES],
    ids=[case[0] for case in NUMPY_CASES],
)
def test_numpy_arrays(array, mode, pixels, note):
    prepared = prepare_one(array)
    sent = decode(prepared)
    assert_on_grid(prepared, sent)
    assert sent.mode == mode
    for (fx, fy), colour in pixels.items():
        xy = (int(fx * (sent.width - 1)), int(fy * (sent.height - 1)))
        assert close(sent.getpixel(xy), colour, tol=6), (xy, sent.getpixel(xy), colour)
    if note:
        assert any(note in n for n in prepared.notes), prepared.notes
    assert prepared.source.startswith(f"x (numpy {array.dtype} ")


# --- matplotlib ------------------------------------------------------------------------------


def _red_figure():
    figure, axes = plt.subplots(figsize=(6.4, 4.8))
    axes.imshow(np.tile(np.array(RED, np.uint8), (10, 10, 1)))
    axes.set_axis_off()
    return figure, axes


@pytest.mark.parametrize("which", ["figure", "axes", "pyplot"])
def test_matplotlib(which):
    figure, axes = _red_figure()
    value = {"figure": figure, "axes": axes, "pyplot": plt}[which]
    prepared = prepare_one(value)
    sent = decode(prepared).convert("RGB")
    assert_on_grid(prepared, sent)
    assert prepared.format == "PNG"
    # Drawn near the budget, not at the 100 dpi default (640 x 480).
    assert sent.width * sent.height > DEFAULT_MAX_PIXELS // 3
    assert close(sent.getpixel((sent.width // 2, sent.height // 2)), RED, tol=4)
    assert "matplotlib" in prepared.source


def test_subfigure_renders_its_root_figure():
    figure = plt.figure()
    left, _ = figure.subfigures(1, 2)
    left.subplots().plot([1, 2, 3])
    assert decode(prepare_one(left)).size == decode(prepare_one(figure)).size


# --- encoded bytes and files ------------------------------------------------------------------


def _animated_gif() -> bytes:
    frames = [two_colour((128, 64)), Image.new("RGB", (128, 64), BLUE), Image.new("RGB", (128, 64))]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)


FILE_CASES = [
    ("jpg", encode(photo((2000, 1500)), "JPEG", quality=92), "JPEG", (1312, 960), None),
    ("png", encode(two_colour((3000, 2000)), "PNG"), "PNG", (1376, 928), None),
    ("webp", encode(two_colour((3000, 2000)), "WEBP", lossless=True), "PNG", (1376, 928), None),
    ("gif", _animated_gif(), "PNG", (384, 192), "GIF: first frame of 3 sent"),
    ("bmp", encode(two_colour((300, 200)), "BMP"), "PNG", (320, 224), None),
    ("tiff", encode(two_colour((300, 200)), "TIFF"), "PNG", (320, 224), None),
]


@pytest.mark.parametrize(
    "extension, data, fmt, size, note",
    FILE_CASES,
    ids=[case[0] for case in FILE_CASES],
)
@pytest.mark.parametrize("form", ["str", "Path", "bytes", "bytearray", "BytesIO"])
def test_files_and_bytes(tmp_path, extension, data, fmt, size, note, form):
    path = tmp_path / f"input.{extension}"
    path.write_bytes(data)
    value = {
        "str": str(path),
        "Path": path,
        "bytes": data,
        "bytearray": bytearray(data),
        "BytesIO": io.BytesIO(data),
    }[form]
    assert is_image_like(value)
    prepared = prepare_one(value)
    sent = decode(prepared)
    assert_on_grid(prepared, sent)
    assert (prepared.format, sent.size) == (fmt, size)
    if fmt == "PNG":
        assert close(sent.getpixel((5, sent.height // 2)), RED)
    if note:
        assert note in prepared.notes
    if form in ("str", "Path"):
        assert prepared.source == f"x ({path})"


def test_path_source_is_just_the_path_when_the_label_is_the_path(tmp_path):
    path = tmp_path / "fig1.png"
    path.write_bytes(encode(two_colour((64, 64)), "PNG"))
    [prepared] = prepare_images(str(path), label=f'"{path}"')
    assert prepared.source == str(path)


def test_large_jpeg_bytes_are_draft_decoded_to_the_right_size_and_content():
    data = encode(two_colour((4000, 3000)), "JPEG", quality=90)
    prepared = prepare_one(data)
    sent = decode(prepared)
    assert sent.size == (1312, 960)
    assert close(sent.getpixel((10, 480)), RED) and close(sent.getpixel((1300, 480)), BLUE)
    assert prepared.original_size == (4000, 3000)
    assert "resized from 4000x3000 to 1312x960" in prepared.notes


def test_jpeg_exif_orientation_is_applied():
    exif = Image.Exif()
    exif[0x0112] = 8  # turn 90 degrees counter-clockwise to view
    data = encode(two_colour((400, 300)), "JPEG", quality=95, exif=exif)
    prepared = prepare_one(data)
    sent = decode(prepared)
    assert sent.size == (288, 384)
    assert close(sent.getpixel((144, 10)), BLUE)
    assert close(sent.getpixel((144, 370)), RED)
    assert "EXIF orientation applied" in prepared.notes
    assert prepared.original_size == (300, 400)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_small_encoded_images_pass_through_untouched(fmt):
    data = encode(photo((640, 480)), fmt, **({"quality": 85} if fmt != "PNG" else {}))
    if fmt == "PNG":  # a noisy PNG is > 1 byte a pixel; use a flat one
        data = encode(two_colour((640, 480)), "PNG")
    prepared = prepare_one(data)
    assert payload_bytes(prepared) == data
    assert prepared.format == fmt
    assert prepared.sent_size == (640, 480)
    assert "sent as is" in prepared.notes


def _exif(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif


@pytest.mark.parametrize(
    "why, data",
    [
        ("over budget", encode(photo((2000, 1500)), "JPEG", quality=85)),
        ("rotated", encode(photo((640, 480)), "JPEG", exif=_exif(6))),
        ("RGBA", encode(two_colour((640, 480), "RGBA"), "PNG")),
        ("tiny", encode(photo((20, 20)), "JPEG")),
        ("photo as PNG", encode(photo((640, 480)), "PNG")),
    ],
)
def test_encoded_images_that_are_not_passed_through(why, data):
    prepared = prepare_one(data)
    assert payload_bytes(prepared) != data
    assert "sent as is" not in prepared.notes


def test_gps_exif_is_not_passed_through():
    exif = Image.Exif()
    exif.get_ifd(0x8825)[1] = "N"  # GPSLatitudeRef: any GPS data at all
    data = encode(photo((640, 480)), "JPEG", quality=85, exif=exif)
    assert Image.open(io.BytesIO(data)).getexif().get_ifd(0x8825)
    prepared = prepare_one(data)
    assert payload_bytes(prepared) != data
    assert not Image.open(io.BytesIO(payload_bytes(prepared))).getexif().get_ifd(0x8825)


def test_ipython_images(tmp_path):
    from IPython.display import Image as IPyImage

    data = encode(two_colour((256, 256)), "PNG")
    path = tmp_path / "a.png"
    path.write_bytes(data)
    from_data = prepare_one(IPyImage(data=data))
    from_file = prepare_one(IPyImage(filename=str(path)))
    from_url = prepare_one(IPyImage(url="https://example.org/cat.png", embed=False))
    assert payload_bytes(from_data) == data == payload_bytes(from_file)
    assert from_data.source == "x (IPython Image, PNG)"
    assert from_url.url == "https://example.org/cat.png"


def test_data_url_string():
    data = encode(two_colour((256, 256)), "PNG")
    url = "data:image/png;base64," + base64.b64encode(data).decode()
    assert is_image_like(url)
    assert payload_bytes(prepare_one(url)) == data


def test_lists_and_tuples_keep_order_and_label_items(tmp_path):
    red, blue = Image.new("RGB", (64, 64), RED), Image.new("RGB", (64, 64), BLUE)
    prepared = prepare_images([red, (blue, red)], label="imgs")
    colours = [decode(p).convert("RGB").getpixel((5, 5)) for p in prepared]
    assert colours == [RED, BLUE, RED]
    assert [p.source.split(" ")[0] for p in prepared] == ["imgs[0]", "imgs[1][0]", "imgs[1][1]"]


def test_digest_is_stable_and_content_addressed():
    image = photo((640, 480))
    first, second = prepare_one(image), prepare_one(image.copy())
    assert first.digest == second.digest and len(first.digest) == 64
    assert prepare_one(photo((640, 480), seed=1)).digest != first.digest


def test_url_string_not_inlined_is_sent_as_url():
    prepared = prepare_one("https://example.org/photos/cat.JPG?size=large")
    assert prepared.url == "https://example.org/photos/cat.JPG?size=large"
    assert prepared.sent_size is None and prepared.visual_tokens is None
    assert prepared.format == "JPEG"
    assert "provider downloads it" in prepared.notes[0]


# --- errors ----------------------------------------------------------------------------------


def _png_header(width: int, height: int) -> bytes:
    """A PNG that claims a size and holds almost nothing: a decompression bomb's header."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    idat = b"IDAT" + zlib.compress(b"\x00" * 16)
    return (
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", len(ihdr))
        + chunk
        + struct.pack(">I", zlib.crc32(chunk))
        + struct.pack(">I", len(idat) - 4)
        + idat
        + struct.pack(">I", zlib.crc32(idat))
    )


_GOOD_JPEG = encode(photo((800, 600)), "JPEG")

ERROR_CASES = [
    ("dict", {"a": 1}, ["`x`", "is a dict", "cannot be sent as an image", "Accepted:", "numpy"]),
    ("int", 3, ["`x` is a int", "Accepted:"]),
    ("plain str", "hello there", ["`x` is a str", "neither an image file nor", "'hello there'"]),
    ("missing file", "nope/missing.png", ["`x`", "no such file: nope/missing.png"]),
    ("empty list", [], ["`x` is an empty list"]),
    ("empty bytes", b"", ["is empty (0 bytes)"]),
    ("text bytes", b"just some text", ["not an image Pillow can read", "JPEG, PNG"]),
    ("truncated JPEG", _GOOD_JPEG[: len(_GOOD_JPEG) // 2], ["truncated or corrupt"]),
    ("corrupt PNG", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, ["starts like a PNG", "corrupt"]),
    ("bomb", _png_header(100_000, 100_000), ["decompression bomb", "MAX_IMAGE_PIXELS"]),
    ("zero-size PIL", Image.new("RGB", (0, 0)), ["zero size (0x0)"]),
    ("zero-size array", np.zeros((0, 10), np.uint8), ["empty numpy array", "(0, 10)"]),
    ("1-D array", np.zeros(100), ["shape (100,)", "not an image", "H x W x 3"]),
    ("channels-first", np.zeros((3, 64, 64)), ["channels-first", "x.transpose(1, 2, 0)"]),
    ("batch", np.zeros((1, 64, 64, 3)), ["batch of one", "x[0]"]),
    ("complex", np.zeros((64, 64), complex), ["dtype complex128", "uint8"]),
    ("all NaN", np.full((64, 64), np.nan), ["no finite values"]),
    ("list item", [Image.new("RGB", (64, 64)), {"a": 1}], ["`x[1]` is a dict"]),
]


@pytest.mark.parametrize(
    "value, parts", [case[1:] for case in ERROR_CASES], ids=[case[0] for case in ERROR_CASES]
)
def test_errors_name_the_expression_and_say_what_is_wrong(value, parts):
    with pytest.raises(ImageError) as caught:
        prepare_images(value, label="x")
    for part in parts:
        assert part in str(caught.value), (part, str(caught.value))
    assert isinstance(caught.value, InputError)


def test_error_for_files(tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("this is not a picture")
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    cases = {
        str(text): "not an image Pillow can read",
        str(empty): "is empty (0 bytes)",
        str(tmp_path): "is a directory",
        tmp_path / "missing.jpg": "no such file",
    }
    for value, part in cases.items():
        with pytest.raises(ImageError) as caught:
            prepare_images(value, label="pic")
        assert part in str(caught.value) and "`pic`" in str(caught.value)


def test_bomb_warning_range_is_an_error_too(monkeypatch):
    # Between 1x and 2x the limit Pillow only warns; we refuse.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 800 * 600 - 1)
    with pytest.raises(ImageError, match="decompression bomb"):
        prepare_images(_GOOD_JPEG, label="x")


def test_pyplot_without_a_figure_says_to_pass_the_figure():
    plt.close("all")
    with pytest.raises(ImageError, match="no(ne)? open.*pass the Figure"):
        prepare_images(plt, label="plt")
    assert not plt.get_fignums()  # and did not create an empty one


@pytest.mark.parametrize(
    "options, part",
    [
        ({"max_pixels": 100, "min_pixels": 1}, "smaller than one 32x32 unit"),
        ({"min_pixels": 10**9}, "larger than max_pixels"),
        ({"unit": 0}, "positive"),
    ],
)
def test_bad_budget_options(options, part):
    with pytest.raises(ImageError, match=part):
        prepare_images(Image.new("RGB", (64, 64)), label="x", **options)


def test_check_payload_size_names_the_largest_images():
    small = prepare_one(Image.new("RGB", (64, 64), RED))
    big = prepare_images(photo((600, 450)), label="big")[0]
    bigger = prepare_images(photo((1200, 900), seed=3), label="bigger")[0]
    images = [small, big, bigger]
    check_payload_size(images, sum(len(i.url) for i in images))
    limit = len(small.url) + len(big.url) + 10
    with pytest.raises(ImageError) as caught:
        check_payload_size(images, limit)
    message = str(caught.value)
    assert "bigger (PIL RGB 1200x900)" in message and "over the" in message
    assert "big (PIL RGB 600x450)" not in message  # dropping `bigger` alone is enough
    with pytest.raises(ImageError, match="big \\(PIL RGB 600x450\\)"):
        check_payload_size(images, len(small.url))


# --- is_image_like -------------------------------------------------------------------------


def test_is_image_like_truth_table(tmp_path):
    from IPython.display import Image as IPyImage

    png = encode(two_colour((64, 64)), "PNG")
    image_file = tmp_path / "a.jpg"
    image_file.write_bytes(_GOOD_JPEG)
    text_file = tmp_path / "a.txt"
    text_file.write_text("hi")
    figure, axes = plt.subplots()
    table = [
        (Image.new("RGB", (4, 4)), True),
        (np.zeros((64, 64), np.uint8), True),
        (np.zeros((64, 64, 3), np.float32), True),
        (np.zeros((64, 64, 4), bool), True),
        (np.zeros((64, 64, 1)), True),
        (np.zeros((64, 64, 2)), False),
        (np.zeros((3, 64, 64)), False),
        (np.zeros(100), False),
        (np.eye(3), False),  # a matrix, not a picture: goes in as text
        (np.zeros((100, 3)), False),  # N x 3 points
        (np.zeros((64, 64), complex), False),
        (figure, True),
        (axes, True),
        (plt, True),
        (IPyImage(data=png), True),
        (png, True),
        (bytearray(png), True),
        (io.BytesIO(png), True),
        (_GOOD_JPEG, True),
        (b"hello", False),
        (b"", False),
        (str(image_file), True),
        (image_file, True),
        (str(text_file), False),
        (str(tmp_path / "missing.png"), False),
        (str(tmp_path), False),
        ("hello", False),
        ("", False),
        ("https://example.org/a/cat.png", True),
        ("https://example.org/a/cat.webp?x=1", True),
        ("https://example.org/a/page.html", False),
        ("see https://example.org/cat.png", False),
        ("data:image/png;base64,AAAA", True),
        ([Image.new("RGB", (4, 4)), png], True),
        ((png,), True),
        ([], False),
        ([png, "hello"], False),
        ({"a": png}, False),
        (None, False),
        (42, False),
        (3.5, False),
    ]
    for value, expected in table:
        assert is_image_like(value) is expected, (type(value), value if expected else "")


def test_cheap_paths_import_nothing_heavy():
    code = """
import sys, pathlib, io
import qwen_nb.media.images as m
for value in ["hello", "x.png", b"\\x89PNG\\r\\n\\x1a\\n", io.BytesIO(b"abc"), [1], {}, 3,
              pathlib.Path("nope.jpg"), "https://e.org/a.png"]:
    m.is_image_like(value)
m.prepare_images("https://e.org/a.png", label="u")
heavy = [name for name in ("PIL", "numpy", "matplotlib", "httpx") if name in sys.modules]
print(",".join(heavy))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_path_objects_are_accepted(tmp_path):
    path = pathlib.Path(tmp_path) / "b.png"
    path.write_bytes(encode(two_colour((256, 256)), "PNG"))
    assert decode(prepare_one(path)).size == (256, 256)
