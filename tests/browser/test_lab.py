"""JupyterLab in headless Chromium: %%qwen output the way a person sees and clicks it."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import pytest
from browser_support import show_export_offline
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
    # "Thinking · 0.4 s · 18 tokens": how long and how much the model thought.
    check(box.locator("label")).to_have_text(
        ["Answer", re.compile(r"^Thinking · [\d.]+ s · [\d,]+ tokens$"), "Details"])
    answer = box.locator(".qwen-nb-panel.qwen-nb-answer")
    thinking = box.locator(".qwen-nb-panel.qwen-nb-thinking")
    check(answer).to_be_visible()
    check(thinking).to_be_hidden()
    check(answer).to_contain_text("ANSWER-MARKER")
    check(answer.locator("h1")).to_have_text("Mass and energy")
    check(answer.locator("strong")).to_have_text("mass-energy equivalence")
    check(answer.locator("pre code")).to_contain_text('print("c squared")')
    if math:  # typeset as MathML by qwen_nb itself: no MathJax needed, offline too
        check(answer.locator("math").first).to_be_visible()
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
    for (const node of document.querySelectorAll('.qwen-nb-live')) {
      if (node.textContent.includes('window.__pwned2=1')) window.__qwenLiveSawPayload = true;
      if (node.querySelector('script, img, a[href^="javascript"]')) {
        window.__qwenLiveSawElement = true;
      }
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
    model.default_reply = Reply(thinking=THINKING, answer=ANSWER)
    nb = open_notebook("magic.ipynb", as_name="export.ipynb")
    nb.run_all()
    nb.save()
    blocked = show_export_offline(page, lab.root / nb.path, tmp_path)
    check_tabs(page.locator("body"), math=True)
    print("requests blocked while viewing the export:", blocked)


QUICKSTART = Path(__file__).resolve().parents[2] / "notebooks" / "01_quickstart.ipynb"


@pytest.mark.skipif(not QUICKSTART.exists(), reason="notebooks/01_quickstart.ipynb is missing")
def test_quickstart_runs_against_the_local_model(open_notebook, model, screenshot):
    model.default_reply = Reply(thinking=THINKING, answer=ANSWER)
    nb = open_notebook(str(QUICKSTART))
    nb.command("notebook:clear-all-cell-outputs")
    nb.run_all()
    check = expect()
    check(nb.page.locator(".jp-Notebook")).to_contain_text("Using the real API")
    outputs = nb.page.locator(".jp-Notebook div.qwen-nb")
    check(outputs).to_have_count(3)  # two %%qwen cells and a displayed ask() result
    for index in range(3):
        check(outputs.nth(index).locator(".qwen-nb-answer")).to_contain_text("ANSWER-MARKER")
    check(outputs.first.locator(".qwen-nb-answer math").first).to_be_visible()
    assert len(model.requests) == 3
    first = model.requests[0].json["messages"][-1]["content"]
    assert [part["type"] for part in first] == ["image_url", "text"]
    outputs.first.scroll_into_view_if_needed()
    screenshot("quickstart")


def wait_until(predicate, what: str, timeout: float = 120.0) -> None:
    """Poll a condition on this side (the model server); fail with `what` if it never holds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.1)


def test_panel_image_stream_other_cell_stop_and_second_turn(
    open_notebook, model, tmp_path, screenshot
):
    """Type, attach through the file chooser, Send, watch the thinking, run a cell meanwhile,
    then a second turn that is stopped mid-stream and keeps its partial text."""
    from PIL import Image

    check = expect()
    image_path = tmp_path / "red-square.png"
    Image.new("RGB", (64, 48), (220, 30, 30)).save(image_path)
    first_hold, second_hold = threading.Event(), threading.Event()
    # The views are throttled without a trailing update, so the thinking streams at a pace
    # the throttle lets through (0.1 s a chunk) before the server holds the answer back.
    slow = {"chunk_chars": 10, "chunk_delay": 0.1}
    model.queue(
        Reply(thinking="THINK-ONE " * 20, answer="FIRST-ANSWER", hold_answer=first_hold, **slow),
        Reply(thinking="THINK-TWO " * 20, answer="NEVER-SHOWN", hold_answer=second_hold, **slow),
    )
    try:
        nb = open_notebook("panel.ipynb")
        nb.run_cell(0)
        chat = nb.cell_output(0).locator(".qwen-nb-chat")
        check(chat).to_be_visible()
        prompt = chat.locator("textarea.qwen-nb-prompt")
        prompt.click()
        prompt.type("What colour is PROMPT-ONE?")
        chat.locator("input.qwen-nb-upload").set_input_files(str(image_path))
        check(chat).to_contain_text("red-square.png")  # the thumbnail's caption
        check(chat.locator("img").first).to_be_visible()
        chat.locator("button.qwen-nb-send").click()

        # Thinking streams (the answer is held back by the server), shown in Thinking.
        check(chat.locator("pre.qwen-nb-trace", has_text="THINK-ONE")).to_be_visible()
        check(chat.locator(".qwen-nb-turn label").nth(1)).to_contain_text("Thinking · ")
        nb.run_cell(2)
        check(nb.cell_output(2)).to_contain_text("OTHER-CELL ran; panel busy: True")
        first_hold.set()
        check(chat).to_contain_text("FIRST-ANSWER")
        check(chat).to_contain_text("done:")
        sent = model.requests[0].json["messages"][-1]["content"]
        assert [part["type"] for part in sent] == ["image_url", "text"]
        assert sent[1]["text"] == "What colour is PROMPT-ONE?"

        prompt.click()
        prompt.type("And SECOND-PROMPT?")
        chat.locator("button.qwen-nb-send").click()
        check(chat.locator("pre.qwen-nb-trace", has_text="THINK-TWO")).to_be_visible()
        chat.locator("button", has_text="Stop").click()
        check(chat).to_contain_text("stopped: partial reply kept")
        check(chat.locator("pre.qwen-nb-trace", has_text="THINK-TWO")).to_be_visible()
        check(chat).not_to_contain_text("NEVER-SHOWN")
        screenshot("panel-stopped-second-turn")

        messages = model.requests[1].json["messages"]
        assert [m["role"] for m in messages] == ["user", "assistant", "user"]
        assert messages[1]["content"] == "FIRST-ANSWER"  # no thinking sent back
        assert "THINK-ONE" not in str(messages)
        assert [p["type"] for p in messages[0]["content"]] == ["image_url", "text"]
    finally:
        first_hold.set()
        second_hold.set()
    wait_until(lambda: model.active_streams == 0, "the stopped stream is closed")
