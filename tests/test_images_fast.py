"""The fast image paths keep their promises: figures drawn once at the grid size and
lossless, screenshots legible (SSIM) and small, libvips giving Pillow's output, arrays
scaled exactly, several images prepared in input order with errors on the right one."""

from __future__ import annotations

import base64
import io
import threading

import matplotlib
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont
from support import ssim

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from qwen_nb._errors import ImageError  # noqa: E402
from qwen_nb.media.codec import open_encoded  # noqa: E402
from qwen_nb.media.images import Budget, plan_size, prepare_images  # noqa: E402
from qwen_nb.media.vips import pyvips_module  # noqa: E402


def decode(prepared) -> Image.Image:
    image = Image.open(io.BytesIO(base64.b64decode(prepared.url.partition(",")[2])))
    image.load()
    return image


def line_plot(**figure_kwargs):
    figure, axes = plt.subplots(figsize=(6.4, 4.8), **figure_kwargs)
    x = np.linspace(0, 10, 400)
    for k in range(4):
        axes.plot(x, np.sin(x * (k + 1)), label=f"k={k}")
    axes.legend()
    axes.set_title("waves")
    return figure


def screenshot(width=2400, height=1600, seed=3) -> bytes:
    """Panels and lines of small anti-aliased text, saved as PNG."""
    rng = np.random.default_rng(seed)
    font = ImageFont.load_default(size=18)
    image = Image.new("RGB", (width, height), (246, 246, 248))
    draw = ImageDraw.Draw(image)
    letters = list("abcdefghijklmnopqrstuvwxyz0123456789(),.=_")
    for top in range(0, height - 300, 400):
        draw.rectangle((20, top + 10, width - 20, top + 390), fill=(255, 255, 255),
                       outline=(180, 180, 190), width=2)
        draw.rectangle((20, top + 10, width - 20, top + 44), fill=(60, 120, 200))
        for line_y in range(top + 56, top + 370, 24):
            text = "".join(rng.choice(letters, 180))
            draw.text((36, line_y), text, fill=(30, 30, 30), font=font)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


# --- figures -------------------------------------------------------------------------


def test_a_figure_is_drawn_once_at_its_grid_size_and_left_as_it_was():
    figure = line_plot()
    draws = []
    figure.canvas.mpl_connect("draw_event", lambda event: draws.append(event))
    prepared = prepare_images(figure, label="fig")[0]
    assert len(draws) == 1  # one render, no second pass
    width, height = prepared.sent_size
    assert width % 32 == 0 and height % 32 == 0
    assert width * height <= Budget().max_pixels
    assert (width, height) == plan_size(width, height, Budget())
    assert decode(prepared).size == (width, height)
    assert tuple(figure.get_size_inches()) == (6.4, 4.8)  # restored
    assert any(note.startswith("drawn at ") for note in prepared.notes)
    assert not any("resized" in note for note in prepared.notes)


def test_a_figure_goes_as_lossless_png_no_larger_than_savefig():
    figure = line_plot()
    prepared = prepare_images(figure, label="fig")[0]
    sent = decode(prepared)
    assert prepared.format == "PNG" and sent.mode == "RGB"  # not a quantised palette
    assert len(sent.getcolors(1 << 20)) > 256  # anti-aliasing kept as drawn
    width, height = prepared.sent_size
    dpi = (width * height / (6.4 * 4.8)) ** 0.5
    plain = io.BytesIO()
    figure.savefig(plain, format="png", dpi=dpi)  # the same figure at the same pixel count
    assert prepared.nbytes <= len(plain.getvalue())


def test_a_transparent_figure_is_flattened_onto_white():
    figure = line_plot()
    figure.patch.set_alpha(0.0)
    prepared = prepare_images(figure, label="fig")[0]
    sent = decode(prepared).convert("RGB")
    assert sent.getpixel((2, 2)) == (255, 255, 255)
    assert any("flattened onto white" in note for note in prepared.notes)


# --- screenshots --------------------------------------------------------------------


@pytest.fixture(params=["pillow", "libvips"])
def engine(request, monkeypatch):
    if request.param == "pillow":
        monkeypatch.setenv("QWEN_NB_PYVIPS", "0")
    elif pyvips_module() is None:
        pytest.skip("libvips is not loadable here (pip install pyvips; apt install libvips42)")
    return request.param


def test_a_screenshot_stays_legible_and_small(engine):
    data = screenshot()
    prepared = prepare_images(data, label="shot")[0]
    assert prepared.format == "PNG" and prepared.nbytes <= 500_000
    sent = decode(prepared).convert("RGB")
    # Against a lossless resize of the original to the same size.
    reference = Image.open(io.BytesIO(data)).convert("RGB").resize(
        sent.size, Image.Resampling.LANCZOS)
    assert ssim(sent, reference) >= 0.98
    assert any("resized from 2400x1600" in note for note in prepared.notes)


def test_libvips_gives_the_pillow_paths_output(monkeypatch):
    if pyvips_module() is None:
        pytest.skip("libvips is not loadable here (pip install pyvips; apt install libvips42)")
    data = screenshot()
    fast = prepare_images(data, label="shot")[0]
    monkeypatch.setenv("QWEN_NB_PYVIPS", "0")
    plain = prepare_images(data, label="shot")[0]
    assert (fast.format, fast.sent_size, fast.original_size, fast.notes) == (
        plain.format, plain.sent_size, plain.original_size, plain.notes)
    assert decode(fast).mode == decode(plain).mode
    assert ssim(decode(fast).convert("RGB"), decode(plain).convert("RGB")) >= 0.98


def _png_chunks(data: bytes) -> list[bytes]:
    chunks, position = [], 8
    while position < len(data):
        length = int.from_bytes(data[position:position + 4], "big")
        chunks.append(data[position:position + 12 + length])
        position += 12 + length
    return chunks


def _sideways_png(*, exif_after_pixels: bool) -> bytes:
    """A 300x200 PNG whose EXIF says 'turn 90 degrees', its eXIf chunk before or after IDAT."""
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    Image.new("RGB", (300, 200), (200, 30, 30)).save(buffer, "PNG", exif=exif)
    data = buffer.getvalue()
    if not exif_after_pixels:
        return data
    chunks = _png_chunks(data)
    exif_chunk = next(chunk for chunk in chunks if chunk[4:8] == b"eXIf")
    rest = [chunk for chunk in chunks if chunk is not exif_chunk]
    return data[:8] + b"".join(rest[:-1]) + exif_chunk + rest[-1]


def test_a_png_is_not_decoded_to_read_metadata_that_precedes_its_pixels():
    # The libvips path decodes the file itself: Pillow must not have decoded it first.
    for data, orientation in ((screenshot(), 1), (_sideways_png(exif_after_pixels=False), 6)):
        decoded = open_encoded(data, "`shot`")
        assert decoded.orientation == orientation
        assert decoded.image.tile, "Pillow decoded every pixel just to read the header"


def test_png_exif_after_the_pixels_is_still_applied(engine):
    data = _sideways_png(exif_after_pixels=True)
    assert [chunk[4:8] for chunk in _png_chunks(data)][-2:] == [b"eXIf", b"IEND"]
    prepared = prepare_images(data, label="sideways")[0]
    assert prepared.original_size == (200, 300)
    assert "EXIF orientation applied" in prepared.notes
    assert decode(prepared).size[1] > decode(prepared).size[0]


def test_a_truncated_png_still_fails_clearly_with_libvips():
    data = screenshot()
    with pytest.raises(ImageError, match="truncated or corrupt"):
        prepare_images(data[: len(data) // 2], label="shot")


def test_few_colours_make_an_exact_palette(monkeypatch):
    monkeypatch.setenv("QWEN_NB_PYVIPS", "0")
    image = Image.new("RGB", (2000, 1500), (255, 255, 255))
    ImageDraw.Draw(image).rectangle((0, 0, 999, 1499), fill=(200, 30, 40))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    prepared = prepare_images(buffer.getvalue(), label="x")[0]
    sent = decode(prepared)
    expected = image.resize(sent.size, Image.Resampling.LANCZOS, reducing_gap=1.0)
    assert len(expected.getcolors(1 << 16)) <= 256
    assert sent.mode == "P"
    assert np.array_equal(np.asarray(sent.convert("RGB")), np.asarray(expected))


# --- arrays --------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["contiguous", "transposed"])
def test_float_arrays_scale_like_the_reference(dtype, layout):
    rng = np.random.default_rng(5)
    array = rng.random((700, 500, 3)).astype(dtype)  # > one block of 2**18 values
    if layout == "transposed":
        array = array.transpose(1, 0, 2)
    from qwen_nb.media.sources import array_to_image

    image, notes = array_to_image(array, "a")
    expected = np.clip(np.rint(array * 255.0), 0, 255).astype(np.uint8)
    got = np.asarray(image)
    assert got.shape == expected.shape and notes == ()
    assert np.abs(got.astype(int) - expected).max() <= 1
    assert np.mean(got == expected) > 0.999


def test_ranges_and_non_finite_values():
    from qwen_nb.media.sources import array_to_image

    array = np.linspace(-2.0, 6.0, 64 * 64, dtype=np.float64).reshape(64, 64)
    array[0, 0] = np.nan
    array[0, 1] = np.inf
    image, notes = array_to_image(array, "a")
    got = np.asarray(image)
    assert got[0, 0] == 0 and got[0, 1] == 0 and got[-1, -1] == 255
    assert any("2 NaN/inf" in note for note in notes)
    assert any("rescaled" in note for note in notes)
    wide = np.arange(0, 4096 * 64, dtype=np.int32).reshape(64, 4096) % 4096
    image, notes = array_to_image(wide, "w")
    assert np.asarray(image).max() == 255 and np.asarray(image).min() == 0


# --- several at once -----------------------------------------------------------------


def test_many_images_keep_their_order():
    from qwen_nb import api
    from qwen_nb._config import resolve_settings

    rng = np.random.default_rng(9)
    values = [rng.integers(0, 256, (80 + i, 120, 3), dtype=np.uint8) for i in range(12)]
    values[3] = Image.fromarray(values[3])
    settings = resolve_settings(api_key="k", base_url="http://127.0.0.1:9")
    together = api.prepare_images(values, max_pixels=None, inline_urls=False,
                                  settings=settings)
    one_by_one = [prepare_images(v, label=f"image {i + 1}")[0] for i, v in enumerate(values)]
    assert [p.digest for p in together] == [p.digest for p in one_by_one]
    assert [p.source for p in together] == [p.source for p in one_by_one]
    assert any(t.name.startswith("qwen-images") for t in threading.enumerate())


def test_the_first_bad_image_in_input_order_is_the_one_reported(tmp_path):
    from qwen_nb import api
    from qwen_nb._config import resolve_settings

    good = np.zeros((64, 64, 3), np.uint8)
    values = [good, str(tmp_path / "missing.png"), good, b"\x89PNG\r\n\x1a\nbroken", good]
    settings = resolve_settings(api_key="k", base_url="http://127.0.0.1:9")
    with pytest.raises(ImageError) as caught:
        api.prepare_images(values, max_pixels=None, inline_urls=False, settings=settings)
    assert "image 2" in caught.value.message and "missing.png" in caught.value.message
