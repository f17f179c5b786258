"""PDFs as input: pages rendered within the budget, page selection, and a message for each
way a PDF can be unusable, before anything is sent."""

from __future__ import annotations

import base64
import io

import pytest
from fake_server import Reply
from PIL import Image, ImageDraw
from support import run_cell

import qwen_nb
from qwen_nb import ImageError, InputError
from qwen_nb._types import DEFAULT_MAX_PIXELS
from qwen_nb.media.pdf import parse_pages


def make_pdf(pages: int, size=(1240, 1754)) -> bytes:
    """An A4-ish PDF at 150 dpi made with Pillow's PDF writer, "Page N" on each page."""
    images = []
    for number in range(1, pages + 1):
        page = Image.new("RGB", size, "white")
        draw = ImageDraw.Draw(page)
        draw.rectangle((100, 100, 1100, 400), outline="black", width=8)
        draw.text((150, 200), f"Page {number}", fill="black")
        images.append(page)
    buffer = io.BytesIO()
    images[0].save(buffer, "PDF", save_all=True, append_images=images[1:], resolution=150)
    return buffer.getvalue()


def sent_images(body: dict) -> list[Image.Image]:
    parts = [p for p in body["messages"][-1]["content"] if p["type"] == "image_url"]
    return [Image.open(io.BytesIO(base64.b64decode(p["image_url"]["url"].partition(",")[2])))
            for p in parts]


def test_a_pdf_path_goes_as_one_image_per_page_within_the_budget(ip, server, tmp_path):
    path = tmp_path / "report.pdf"
    path.write_bytes(make_pdf(3))
    ip.user_ns["report"] = str(path)
    server.queue(Reply(answer="Three pages."))
    result = run_cell(ip, "%%qwen -i report\nSummarise.")
    assert result.error_in_exec is None, result.error_in_exec
    images = sent_images(server.requests[-1].json)
    assert len(images) == 3
    for image in images:
        assert image.width * image.height <= DEFAULT_MAX_PIXELS
        assert image.width % 32 == 0 and image.height % 32 == 0
        # the page's aspect ratio is kept (A4: 1.414)
        assert abs(image.height / image.width - 1754 / 1240) < 0.05
        assert image.width * image.height > 0.8 * DEFAULT_MAX_PIXELS  # the budget is used
    response = ip.user_ns["_qwen"]
    assert [image.page for image in response.images] == [1, 2, 3]
    assert "PDF: 3 of 3 pages" in response.images[0].notes[0]


def test_page_selection_bytes_and_interpolation(server, tmp_path, ip):
    data = make_pdf(5)
    server.queue(Reply(answer="ok"))
    response = qwen_nb.ask("Read", qwen_nb.pdf_pages(data, pages="2, 4-5"))
    assert [image.page for image in response.images] == [2, 4, 5]
    assert len(sent_images(server.requests[-1].json)) == 3

    path = tmp_path / "five.pdf"
    path.write_bytes(data)
    ip.user_ns["doc"] = qwen_nb.pdf_pages(path, pages="3")
    server.queue(Reply(answer="ok"))
    result = run_cell(ip, "%%qwen\nWhat is on {doc}?")
    assert result.error_in_exec is None, result.error_in_exec
    content = server.requests[-1].json["messages"][-1]["content"]
    assert [p["type"] for p in content] == ["text", "image_url", "text"]


def test_boxes_on_a_page_carry_their_page(server):
    server.queue(Reply(answer='[{"bbox_2d": [0, 0, 500, 500], "label": "title", "page": 3}]'))
    response = qwen_nb.ask("Find the title", qwen_nb.pdf_pages(make_pdf(3), pages="2-3"),
                           ground="title")
    box = response.boxes[0]
    assert box.page == 3 and box.image == 1
    width, height = response.images[1].sent_size
    assert box.xyxy == (0.0, 0.0, width / 2, height / 2)
    crop = box.crop()  # from a finer render of the page
    assert crop.width > width / 2


def encrypted_pdf() -> bytes:
    data = make_pdf(1, size=(200, 300))
    encrypt = (b"/Encrypt << /Filter /Standard /V 1 /R 2 /O <" + b"ab" * 32 + b"> /U <"
               + b"cd" * 32 + b"> /P -4 >>\n/ID [<" + b"01" * 16 + b"> <" + b"01" * 16 + b">]\n")
    return data.replace(b"/Root ", encrypt + b"/Root ", 1)


def empty_pdf() -> bytes:
    """A well-formed PDF whose page tree is empty."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [] /Count 0 >>"]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 3\n0000000000 65535 f \n"
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Root 1 0 R /Size 3 >>\nstartxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


@pytest.mark.parametrize("make, message", [
    (encrypted_pdf, r"is encrypted \(password-protected\)"),
    (lambda: make_pdf(1)[:300], "could not be read as a PDF"),
    (lambda: b"%PDF-1.4\nnot really", "could not be read as a PDF"),
    (empty_pdf, "has no pages"),
])
def test_unusable_pdfs_are_refused_before_sending(server, tmp_path, make, message):
    path = tmp_path / "bad.pdf"
    path.write_bytes(make())
    before = len(server.requests)
    with pytest.raises(ImageError, match=message):
        qwen_nb.ask("Read", str(path))
    with pytest.raises(ImageError, match=message):
        qwen_nb.ask("Read", path.read_bytes())
    assert len(server.requests) == before


def test_missing_and_zero_byte_pdf_files(server, tmp_path):
    with pytest.raises(ImageError, match="no such file"):
        qwen_nb.ask("Read", str(tmp_path / "nope.pdf"))
    (tmp_path / "zero.pdf").write_bytes(b"")
    with pytest.raises(ImageError, match="is empty"):
        qwen_nb.ask("Read", str(tmp_path / "zero.pdf"))


def test_the_page_cap_names_the_tokens_and_the_way_out(server):
    data = make_pdf(22, size=(300, 424))
    with pytest.raises(ImageError, match=r"22 pages to send \(about [\d,]+ visual tokens\), "
                                         r"over the cap of 20.*pdf_pages"):
        qwen_nb.ask("Read", data)
    server.queue(Reply(answer="ok"))
    response = qwen_nb.ask("Read", qwen_nb.pdf_pages(data, max_pages=25))
    assert len(response.images) == 22


@pytest.mark.parametrize("spec, count, pages", [
    (None, 3, [1, 2, 3]), ("1-3,7", 8, [1, 2, 3, 7]), ("5-", 6, [5, 6]), ("2,2,1", 3, [2, 1]),
    (" 3 ", 3, [3]),
])
def test_parse_pages(spec, count, pages):
    assert parse_pages(spec, count) == pages


@pytest.mark.parametrize("spec, message", [
    ("0", "outside"), ("4", "outside"), ("3-1", "outside"), ("a", "not a page"),
    ("1;2", "not a page"),
])
def test_parse_pages_refuses(spec, message):
    with pytest.raises(InputError, match=message):
        parse_pages(spec, 3)


def test_without_pypdfium2_the_message_names_the_extra(server, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pypdfium2", None)  # as if it were not installed
    with pytest.raises(ImageError, match=r"pip install qwen-nb\[pdf\]"):
        qwen_nb.ask("Read", make_pdf(1, size=(200, 300)))
