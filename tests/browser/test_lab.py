"""JupyterLab in headless Chromium: %%qwen output the way a person sees and clicks it."""

from __future__ import annotations

import pytest
from fake_server import Reply

pytestmark = pytest.mark.browser

THINKING = "THINKING-MARKER: recall Einstein's relation, then show how to compute it."
ANSWER = """# Mass and energy

The relation is **mass-energy equivalence**:

$$E = mc^2$$

Inline math works too: $x_1 + x_2$.

```python
print("c squared")
```

ANSWER-MARKER done."""
QWEN_CELL = 2  # index of the %%qwen cell in notebooks/magic.ipynb


def expect():
    from playwright.sync_api import expect

    return expect


def check_tabs(output, *, math: bool) -> None:
    """The static tabs: three labels, Answer shown as rendered Markdown, Thinking on click."""
    check = expect()
    box = output.locator("div.qwen-nb")
    check(box).to_have_count(1)
    check(box.locator("label")).to_have_text(["Answer", "Thinking", "Details"])
    answer = box.locator(".qwen-nb-panel.qwen-nb-answer")
    thinking = box.locator(".qwen-nb-panel.qwen-nb-thinking")
    check(answer).to_be_visible()
    check(thinking).to_be_hidden()
    check(answer).to_contain_text("ANSWER-MARKER")
    check(answer.locator("h1")).to_have_text("Mass and energy")
    check(answer.locator("strong")).to_have_text("mass-energy equivalence")
    check(answer.locator("pre code")).to_contain_text('print("c squared")')
    if math:
        check(answer.locator("mjx-container").first).to_be_visible()
        check(answer).not_to_contain_text("$$")
    box.locator("label", has_text="Thinking").click()
    check(thinking).to_be_visible()
    check(thinking).to_contain_text("THINKING-MARKER")
    check(answer).to_be_hidden()
    box.locator("label", has_text="Details").click()
    check(box.locator(".qwen-nb-panel.qwen-nb-details")).to_contain_text("Finish reason")
    box.locator("label", has_text="Answer").click()
    check(answer).to_be_visible()


def test_magic_tabs_survive_save_and_reload(open_notebook, model, screenshot):
    model.default_reply = Reply(thinking=THINKING, answer=ANSWER)
    nb = open_notebook("magic.ipynb")
    nb.run_all()
    output = nb.cell_output(QWEN_CELL)
    check_tabs(output, math=True)
    screenshot("magic-live")
    expect()(nb.cell_output(QWEN_CELL + 1)).to_contain_text("finished: stop True")
    assert len(model.requests) == 1

    nb.save()
    nb.shutdown_kernel()
    saved = nb.file_json()["cells"][QWEN_CELL]["outputs"]
    assert [o["output_type"] for o in saved] == ["display_data"]
    assert "application/vnd.jupyter.widget-view+json" not in saved[0]["data"]

    nb.reload()
    output = nb.cell_output(QWEN_CELL)
    check_tabs(output, math=True)
    for text in ("model not found", "Error displaying widget"):
        expect()(nb.page.locator(".jp-Notebook")).not_to_contain_text(text)
    screenshot("magic-reloaded")


XSS = (
    'Look: <script>window.__pwned=1</script> and <img src=x onerror="window.__pwned2=1">'
    " and [a link](javascript:window.__pwned3=1) XSS-MARKER"
)
# Records whether the live widget ever showed the payload (as text): the check then covers
# the streaming view as well as the static output that replaces it.
WATCH_LIVE_WIDGET = """() => {
  window.__qwenLiveSawPayload = false;
  window.__qwenLiveSawElement = false;
  new MutationObserver(() => {
    for (const node of document.querySelectorAll('.widget-html-content')) {
      if (node.textContent.includes('window.__pwned2=1')) window.__qwenLiveSawPayload = true;
      if (node.querySelector('script, img')) window.__qwenLiveSawElement = true;
    }
  }).observe(document.body, {subtree: true, childList: true, characterData: true});
}"""
PWNED = "() => [window.__pwned, window.__pwned2, window.__pwned3]"


def test_model_html_never_runs(open_notebook, model):
    model.default_reply = Reply(
        thinking="Thinking " + XSS, answer=XSS, chunk_chars=6, chunk_delay=0.05
    )
    nb = open_notebook("magic.ipynb", as_name="xss.ipynb")
    nb.page.evaluate(WATCH_LIVE_WIDGET)
    nb.run_all()
    assert nb.page.evaluate(PWNED) == [None, None, None]
    check = expect()
    answer = nb.cell_output(QWEN_CELL).locator(".qwen-nb-answer")
    check(answer).to_contain_text("<script>window.__pwned=1</script>")
    check(answer).to_contain_text('<img src=x onerror="window.__pwned2=1">')
    check(answer).to_contain_text("XSS-MARKER")
    assert nb.page.evaluate("() => window.__qwenLiveSawPayload") is True
    assert nb.page.evaluate("() => window.__qwenLiveSawElement") is False
    assert answer.locator("script, img, a[href^='javascript']").count() == 0
    nb.cell_output(QWEN_CELL).locator("label", has_text="Thinking").click()
    check(nb.cell_output(QWEN_CELL).locator(".qwen-nb-thinking")).to_contain_text("XSS-MARKER")
    assert nb.page.evaluate(PWNED) == [None, None, None]

    nb.save()  # reopened, the notebook is trusted (this session signed it): still inert
    nb.reload()
    check(nb.cell_output(QWEN_CELL).locator(".qwen-nb-answer")).to_contain_text("XSS-MARKER")
    assert nb.page.evaluate(PWNED) == [None, None, None]


def test_exported_html_works_offline(open_notebook, model, page, lab, tmp_path):
    from nbconvert import HTMLExporter

    model.default_reply = Reply(thinking=THINKING, answer=ANSWER)
    nb = open_notebook("magic.ipynb", as_name="export.ipynb")
    nb.run_all()
    nb.save()
    body, _ = HTMLExporter().from_filename(str(lab.root / nb.path))
    exported = tmp_path / "export.html"
    exported.write_text(body, encoding="utf-8")

    blocked: list[str] = []

    def network_off(route) -> None:
        if route.request.url.startswith("file:"):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    page.route("**/*", network_off)
    page.goto(exported.as_uri(), wait_until="load")
    check_tabs(page.locator("body"), math=False)
    print("requests blocked while viewing the export:", blocked)
