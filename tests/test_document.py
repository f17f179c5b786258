"""Document parsing answers: QwenVL HTML and Markdown -> clean document, regions, tables."""

from __future__ import annotations

import re

import pytest
from fake_server import Reply
from PIL import Image
from support import run_cell

import qwen_nb
from qwen_nb._types import PreparedImage
from qwen_nb.vision.document import parse_document

PAGE = PreparedImage(url="data:,", source="page", original_size=(1000, 2000),
                     sent_size=(992, 1984))

QWENVL_HTML = """```html
<html><body>
<h1 data-bbox="100 50 900 100">Annual <b>report</b></h1>
<p data-bbox="100 120 900 300" style="color:red" onclick="alert(1)">Sales rose &amp; costs fell.
<script>alert("x")</script><a href="javascript:alert(1)">click</a></p>
<div class="image" data-bbox="100 320 500 600"><img src="http://evil.example/x.png"></div>
<table data-bbox="100 620 900 900"><tr><th>Year</th><th>Sales</th></tr>
<tr><td>2024</td><td colspan="2" onmouseover="x">10</td></tr></table>
<div class="formula" data-bbox="200 910 800 950">E = mc^2</div>
</body></html>
```"""


def test_qwenvl_html_is_cleaned_and_its_regions_mapped():
    document = parse_document(QWENVL_HTML, "html", [PAGE], coords="relative")
    clean = document.html
    assert "data-bbox" not in clean and "style" not in clean and "onclick" not in clean
    assert "<script" not in clean and "alert(\"x\")" not in clean
    assert "<img" not in clean and "evil.example" not in clean and "href" not in clean
    assert "<h1>Annual <b>report</b></h1>" in clean
    assert "Sales rose &amp; costs fell." in clean and "click" in clean
    assert '<td colspan="2">10</td>' in clean
    labels = [region.label for region in document.regions]
    assert labels == ["title", "paragraph", "image", "table", "formula"]
    title = document.regions[0]
    assert title.xyxy == (100.0, 100.0, 900.0, 200.0)  # 0-1000 of a 1000x2000 page
    assert title.attributes["text"] == "Annual report"
    assert document.regions[4].attributes["text"] == "E = mc^2"
    frame = document.tables()[0]
    assert list(frame.columns) == ["Year", "Sales"] and frame.iloc[0].tolist() == ["2024", "10"]


def test_qwen25_html_coordinates_are_absolute():
    document = parse_document('<p data-bbox="0 0 496 992">x</p>', "html", [PAGE],
                              model="qwen2.5-vl-72b-instruct")
    assert document.regions[0].xyxy == (0.0, 0.0, 500.0, 1000.0)


def test_qwenvl_markdown_placeholders_become_regions():
    answer = ("# Title\n\nSome text.\n\n<!-- Image (100, 200, 500, 400) -->\n\n"
              "<!-- Table (50, 500, 950, 700) -->\n| a | b |\n|---|---|\n| 1 | 2 |\n")
    document = parse_document(answer, "markdown", [PAGE], coords="relative")
    assert [(r.label, r.xyxy) for r in document.regions] == [
        ("image", (100.0, 400.0, 500.0, 800.0)), ("table", (50.0, 1000.0, 950.0, 1400.0))]
    assert "<!--" not in document.markdown and "# Title" in document.markdown
    assert document.tables()[0].to_dict("records") == [{"a": "1", "b": "2"}]


@pytest.mark.parametrize("answer", ["", "no html at all", "<p data-bbox='1 2'>x", "<<<>>>",
                                    "<div data-bbox=\"a b c d\">", "</p></div>" * 50])
def test_odd_documents_never_crash(answer):
    document = parse_document(answer, "html", [PAGE])
    assert "<" not in re.sub(r"</?(p|div)>", "", document.text)


def test_doc_option_sends_the_prompt_and_shows_the_page_with_regions(ip, server):
    ip.user_ns["page"] = Image.new("RGB", (800, 1100), "white")
    server.queue(Reply(answer=QWENVL_HTML))
    result = run_cell(ip, "%qwen -i page --doc html")
    assert result.error_in_exec is None, result.error_in_exec
    assert server.requests[-1].json["messages"][-1]["content"][-1]["text"] == "qwenvl html"
    response = ip.user_ns["_qwen"]
    assert [r.label for r in response.document.regions][:2] == ["title", "paragraph"]
    html = response._repr_mimebundle_()[0]["text/html"]
    shown = html.split('class="qwen-nb-document"', 1)[1].split("</div></div>", 1)[0]
    assert "<h1>Annual <b>report</b></h1>" in shown and "data-bbox" not in shown
    assert "<script" not in html and "evil.example" not in html.split("<details", 1)[0]
    assert re.search(r'<img [^>]*src="data:image/', html)


def test_markdown_document_through_ask(server):
    server.queue(Reply(answer="# Menu\n\n<!-- Table (0, 0, 1000, 500) -->\n| dish | price |\n"
                              "|---|---|\n| soup | 4 |\n"))
    response = qwen_nb.ask("", Image.new("RGB", (640, 640), "white"), doc="markdown")
    assert server.requests[-1].json["messages"][-1]["content"][-1]["text"] == "qwenvl markdown"
    assert response.document.tables()[0].loc[0, "price"] == "4"
    assert response.document.regions[0].xyxy == (0.0, 0.0, 640.0, 320.0)
