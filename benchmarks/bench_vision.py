"""Benchmark: grounding overlays and PDF pages.

    python benchmarks/bench_vision.py

1. Parse a 200-box grounding answer and draw it on a 12-megapixel photo (`overlay(full=True)`:
   the original), and for the Answer tab (the image as sent, at display size, encoded);
   baseline: the cookbooks' usual snippet (strip the fence, json.loads, draw every box and
   label on a copy of the original), in the same run.
2. Rasterise a 10-page PDF (A4 scans at 150 dpi, made with Pillow) into page images at the
   default pixel budget: PDFium render alone, and qwen_nb's whole preparation (render +
   encode); beside `pdftoppm` (poppler) at the same size when it is installed.
Medians of several runs; inputs are synthetic and seeded.
"""

from __future__ import annotations

import io
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

from PIL import Image, ImageDraw, ImageFont

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from _bench import machine, median, table, verdict  # noqa: E402

import qwen_nb  # noqa: E402,F401  (plugs the answer reader in)
from qwen_nb._types import QwenResponse  # noqa: E402
from qwen_nb.media.images import prepare_images  # noqa: E402
from qwen_nb.media.pdf import prepare_pdf, render_page  # noqa: E402
from qwen_nb.media.plan import Budget  # noqa: E402
from qwen_nb.render.vision import answer_html  # noqa: E402

BOXES = 200
PAGES = 10
REPEATS = 7
GOAL_OVERLAY_MS = 150.0
GOAL_PDF_S = 1.0


def photo() -> Image.Image:
    rng = random.Random(7)
    image = Image.new("RGB", (4000, 3000), (110, 140, 170))
    draw = ImageDraw.Draw(image)
    for _ in range(300):
        x, y = rng.randrange(4000), rng.randrange(3000)
        draw.rectangle(
            (x, y, x + rng.randrange(40, 400), y + rng.randrange(40, 300)),
            fill=tuple(rng.randrange(256) for _ in range(3)),
        )
    return image


def grounding_answer() -> str:
    rng = random.Random(11)
    items = []
    for index in range(BOXES):
        x1, y1 = rng.randrange(0, 900), rng.randrange(0, 900)
        items.append(
            {
                "bbox_2d": [x1, y1, x1 + rng.randrange(20, 100), y1 + rng.randrange(20, 100)],
                "label": f"object {index % 12}",
            }
        )
    return "```json\n" + json.dumps(items) + "\n```"


def timed(function, repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return median(times)


def cookbook_snippet(answer: str, original: Image.Image) -> Image.Image:
    """What the Qwen cookbooks hand-write: parse, then draw on a copy of the original."""
    text = answer.split("```json", 1)[1].split("```", 1)[0]
    boxes = json.loads(text)
    canvas = original.copy()
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=40)
    width, height = canvas.size
    for box in boxes:
        x1, y1, x2, y2 = (
            box["bbox_2d"][i] / 1000 * (width if i % 2 == 0 else height) for i in range(4)
        )
        draw.rectangle((x1, y1, x2, y2), outline="red", width=8)
        draw.text((x1 + 8, y1 + 6), box["label"], fill="red", font=font)
    return canvas


def overlay_rows() -> list[list[str]]:
    original = photo()
    images = tuple(prepare_images(original, label="photo"))
    answer = grounding_answer()

    def response() -> QwenResponse:
        return QwenResponse(answer=answer, images=images, model="qwen3-vl-32b-thinking")

    full = timed(lambda: response().overlay(full=True))
    assert len(response().boxes) == BOXES
    shown = timed(lambda: answer_html(response(), lambda text: text))
    naive = timed(lambda: cookbook_snippet(answer, original))
    met = full * 1000 <= GOAL_OVERLAY_MS
    print(
        "RESULT "
        + json.dumps(
            {
                "row": f"parse + draw {BOXES} boxes on a 12 MP photo",
                "measured": f"{full * 1000:.0f} ms (Answer-tab image: {shown * 1000:.0f} ms)",
                "baseline": f"cookbook snippet {naive * 1000:.0f} ms",
                "goal": f"<= {GOAL_OVERLAY_MS:.0f} ms",
                "met": met,
            }
        )
    )
    return [
        [f"parse + draw {BOXES} boxes, full 12 MP (overlay(full=True))", f"{full * 1000:.0f} ms"],
        ["parse + draw + encode for the Answer tab (960 px)", f"{shown * 1000:.0f} ms"],
        ["cookbook snippet on the 12 MP original (baseline)", f"{naive * 1000:.0f} ms"],
    ]


def scanned_pdf() -> bytes:
    rng = random.Random(3)
    pages = []
    for number in range(PAGES):
        page = Image.new("RGB", (1240, 1754), "white")
        draw = ImageDraw.Draw(page)
        draw.text((100, 80), f"Page {number + 1}", fill="black", font=ImageFont.load_default(40))
        for row in range(40):
            draw.rectangle(
                (100, 180 + row * 36, 100 + rng.randrange(600, 1040), 196 + row * 36),
                fill=(40, 40, 40),
            )
        pages.append(page)
    buffer = io.BytesIO()
    pages[0].save(buffer, "PDF", save_all=True, append_images=pages[1:], resolution=150)
    return buffer.getvalue()


def pdf_rows() -> list[list[str]]:
    import pypdfium2 as pdfium

    data = scanned_pdf()
    budget = Budget()
    prepared = prepare_pdf(data, "pdf", budget)
    size = prepared[0].sent_size

    def render_only() -> None:
        document = pdfium.PdfDocument(data)
        for number in range(1, len(document) + 1):
            render_page(document, number, size)
        document.close()

    render = timed(render_only, 5)
    whole = timed(lambda: prepare_pdf(data, "pdf", budget), 5)
    rows = [
        [f"PDFium render, {PAGES} pages at {size[0]}x{size[1]}", f"{render:.2f} s"],
        [f"qwen_nb prepare (render + encode), {PAGES} pages", f"{whole:.2f} s"],
    ]
    poppler = shutil.which("pdftoppm")
    baseline = "pdftoppm not installed"
    if poppler:
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "in.pdf")
            with open(path, "wb") as handle:
                handle.write(data)
            command = [
                poppler,
                "-png",
                "-scale-to-x",
                str(size[0]),
                "-scale-to-y",
                str(size[1]),
                path,
                os.path.join(folder, "page"),
            ]
            popplered = timed(lambda: subprocess.run(command, check=True), 5)
        rows.append([f"pdftoppm -png at the same size, {PAGES} pages", f"{popplered:.2f} s"])
        baseline = f"pdftoppm -png {popplered:.2f} s"
    met = render <= GOAL_PDF_S
    print(
        "RESULT "
        + json.dumps(
            {
                "row": f"rasterise a {PAGES}-page PDF at the default budget",
                "measured": f"{render:.2f} s render ({whole:.2f} s with encoding)",
                "baseline": baseline,
                "goal": f"<= {GOAL_PDF_S:.0f} s",
                "met": met,
            }
        )
    )
    return rows


def main() -> None:
    print(f"bench_vision: {machine()}")
    rows = overlay_rows() + pdf_rows()
    print(table(["what", "median"], rows))
    full_ms = float(rows[0][1].split()[0])
    render_s = float(rows[3][1].split()[0])
    print(
        f"[{verdict(full_ms <= GOAL_OVERLAY_MS)}] overlay of {BOXES} boxes on 12 MP <= "
        f"{GOAL_OVERLAY_MS:.0f} ms"
    )
    print(f"[{verdict(render_s <= GOAL_PDF_S)}] {PAGES}-page PDF rendered <= {GOAL_PDF_S:.0f} s")


if __name__ == "__main__":
    main()
