"""The live `%%qwen` view (qwen_nb's anywidget front end) in JupyterLab and Notebook 7.

While the reply streams: the Thinking tab is shown and grows, its label says how long and
how much the model thought, the view switches to Answer when the answer starts, each code
block and the whole answer have a Copy button that really copies (read back from the
clipboard), and model output stays inert and fetches nothing. At the end the static
output replaces the widget.
"""

from __future__ import annotations

import re
import threading

import pytest
from fake_server import Reply

pytestmark = pytest.mark.browser

QWEN_CELL = 2
THINKING = "LIVE-THINKING step by step. " * 30
CODE_ONE = 'print("first block")'
CODE_TWO = "x = 1\ny = x + 1"
ANSWER = (
    "Here are two blocks.\n\n"
    f"```python\n{CODE_ONE}\n```\n\n"
    f"```python\n{CODE_TWO}\n```\n\n"
    "LIVE-ANSWER-END and a last line that arrives after the pause."
)


def expect():
    from playwright.sync_api import expect

    return expect


def live(nb):
    return nb.cell_output(QWEN_CELL).locator(".qwen-nb-live")


def _pause_before_end(reply: Reply) -> int:
    """The index of the first chunk after "LIVE-ANSWER-END": the server pauses there."""
    from fake_server import completion_chunks

    answer = ""
    for index, chunk in enumerate(completion_chunks(reply, "m")):
        if "LIVE-ANSWER-END" in answer:
            return index
        delta = chunk["choices"][0]["delta"] if chunk["choices"] else {}
        answer += delta.get("content") or ""
    raise AssertionError("no answer end found")


@pytest.fixture
def clipboard(browser_context, lab):
    browser_context.grant_permissions(["clipboard-read", "clipboard-write"], origin=lab.url)
    yield lambda page: page.evaluate("() => navigator.clipboard.readText()")
    browser_context.clear_permissions()


def test_live_view_streams_thinking_then_answer_with_copy(open_notebook, model, screenshot,
                                                         clipboard):
    check = expect()
    hold = threading.Event()
    reply = Reply(thinking=THINKING, answer=ANSWER, chunk_chars=12, chunk_delay=0.03,
                  hold_answer=hold)
    reply.stall_after = _pause_before_end(reply)
    reply.stall_seconds = 25.0
    model.queue(reply)
    nb = open_notebook("magic.ipynb", as_name="live.ipynb")
    try:
        nb.start_run_all()
        view = live(nb)
        check(view).to_be_visible()
        thinking = view.locator(".qwen-nb-panel.qwen-nb-thinking")
        answer = view.locator(".qwen-nb-panel.qwen-nb-answer")
        # Thinking is shown and grows while the model thinks.
        check(thinking).to_be_visible()
        check(thinking).to_contain_text("LIVE-THINKING")
        first = len(thinking.inner_text())
        check(view.locator("label").nth(1)).to_have_text(
            re.compile(r"^Thinking · [\d.]+ s · ~[\d,]+ tokens$"))
        nb.page.wait_for_function(
            "([n]) => document.querySelector('.qwen-nb-live .qwen-nb-thinking')"
            ".innerText.length > n", arg=[first])
        screenshot("live-thinking")
        hold.set()
        # The answer starts: the view switches to Answer, the code blocks get Copy buttons.
        check(answer).to_be_visible()
        check(thinking).to_be_hidden()
        blocks = answer.locator("pre")
        check(blocks).to_have_count(2)
        check(view).not_to_contain_text("arrives after the pause")  # still streaming
        buttons = answer.locator(".qwen-nb-copy")
        check(buttons).to_have_count(2)
        buttons.nth(0).click()
        check(buttons.nth(0)).to_have_text("Copied")
        assert clipboard(nb.page).strip() == CODE_ONE
        buttons.nth(1).click()
        assert clipboard(nb.page).strip() == CODE_TWO
        view.locator(".qwen-nb-tools .qwen-nb-copy").click()
        whole = clipboard(nb.page)
        assert "Here are two blocks." in whole and CODE_TWO.splitlines()[1] in whole
        assert "Copy" not in whole
        label = view.locator("label").nth(1).inner_text()
        screenshot("live-answer-copy")
    finally:
        hold.set()
    nb.wait_run_all()
    output = nb.cell_output(QWEN_CELL)
    check(output.locator(".qwen-nb-live")).to_have_count(0)
    check(output.locator("div.qwen-nb").first).to_contain_text("arrives after the pause")
    # The label stopped counting when the answer began.
    assert re.match(r"^Thinking · [\d.]+ s · ~[\d,]+ tokens$", label), label


def test_notebook7_live_view_and_panel_insert_cell(open_notebook7, model, notebook7,
                                                    browser_context, screenshot, tmp_path):
    """Notebook 7: the live view streams and switches tabs, Copy copies, and the panel's
    Insert code as cell creates a real cell below the panel's."""
    import nbformat

    check = expect()
    browser_context.grant_permissions(["clipboard-read", "clipboard-write"],
                                      origin=notebook7.url)
    hold = threading.Event()
    reply = Reply(thinking=THINKING, answer=ANSWER, chunk_chars=12, chunk_delay=0.02,
                  hold_answer=hold)
    reply.stall_after = _pause_before_end(reply)
    reply.stall_seconds = 20.0
    model.queue(reply, Reply(answer=f"Code:\n\n```python\n{CODE_ONE}\n```"))
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell("%load_ext qwen_nb"),
                      nbformat.v4.new_code_cell("%%qwen\nTwo code blocks, please."),
                      nbformat.v4.new_code_cell("import qwen_nb\npanel = qwen_nb.Panel()\n"
                                                "panel")]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    nbformat.write(notebook, tmp_path / "nb7.ipynb")
    nb = open_notebook7(str(tmp_path / "nb7.ipynb"))
    try:
        nb.start_run_all()
        view = nb.cell_output(1).locator(".qwen-nb-live")
        check(view.locator(".qwen-nb-thinking")).to_contain_text("LIVE-THINKING")
        check(view.locator("label").nth(1)).to_have_text(
            re.compile(r"^Thinking · [\d.]+ s · ~[\d,]+ tokens$"))
        hold.set()
        check(view.locator(".qwen-nb-answer pre")).to_have_count(2)
        view.locator(".qwen-nb-answer .qwen-nb-copy").nth(1).click()
        assert nb.page.evaluate("() => navigator.clipboard.readText()").strip() == CODE_TWO
        screenshot("notebook7-live-view")
    finally:
        hold.set()
    nb.wait_run_all()
    check(nb.cell_output(1).locator("div.qwen-nb").first).to_contain_text("LIVE-ANSWER-END")
    chat = nb.cell_output(2).locator(".qwen-nb-chat")
    prompt = chat.locator("textarea.qwen-nb-prompt")
    prompt.fill("Code please")
    prompt.press("Control+Enter")
    turn = chat.locator(".qwen-nb-turn").last
    check(turn.locator(".qwen-nb-actions")).to_be_visible()
    turn.locator("button.qwen-nb-insert").click()
    cells = nb.page.locator(".jp-Notebook .jp-Cell")
    check(cells).to_have_count(4)
    check(cells.nth(3)).to_contain_text("first block")
    screenshot("notebook7-panel-inserted-cell")
    browser_context.clear_permissions()


HOSTILE_LABEL = "<img src=https://attacker.example/label.png onerror=window.__pwned=1>"
GROUNDING_BOXES = [(100 + 80 * i, 150, 150 + 80 * i, 450) for i in range(8)]
GROUNDING = (
    "Found them. ![](https://attacker.example/prose.png) [x](javascript:window.__pwned=2)"
    "\n\n```json\n[\n" + ",\n".join(
        f'  {{"bbox_2d": [{x1}, {y1}, {x2}, {y2}], "label": '
        f'"{HOSTILE_LABEL if i == 0 else f"cat {i}"}"}}'
        for i, (x1, y1, x2, y2) in enumerate(GROUNDING_BOXES)) + "\n]\n```\n"
)
SHOWN_BEFORE_PAUSE = 3  # boxes complete when the server pauses


def _pause_after_box(reply: Reply, boxes: int) -> int:
    """The index of the first chunk after the one that completes `boxes` boxes."""
    from fake_server import completion_chunks

    answer = ""
    for index, chunk in enumerate(completion_chunks(reply, "m")):
        if answer.count("}") >= boxes:
            return index
        delta = chunk["choices"][0]["delta"] if chunk["choices"] else {}
        answer += delta.get("content") or ""
    raise AssertionError("the answer has fewer boxes")


def _marks(alt: str) -> int:
    found = re.search(r"with (\d+) marks drawn", alt)
    assert found, alt
    return int(found.group(1))


def test_live_view_draws_grounding_boxes_while_streaming(open_notebook, model, screenshot,
                                                         lab, tmp_path):
    """`%%qwen -i photo --ground`: the kernel-drawn overlay appears in the live view while
    the answer streams (the server pauses after three boxes), grows, then the static
    output with every box replaces it; nothing is fetched, nothing runs."""
    import nbformat

    check = expect()
    reply = Reply(thinking="Looking for the cats.", answer=GROUNDING, chunk_chars=10,
                  chunk_delay=0.02)
    reply.stall_after = _pause_after_box(reply, SHOWN_BEFORE_PAUSE)
    reply.stall_seconds = 12.0
    model.queue(reply)
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell("%load_ext qwen_nb"),
        nbformat.v4.new_code_cell("from PIL import Image\n"
                                  "photo = Image.new('RGB', (800, 600), (40, 120, 40))"),
        nbformat.v4.new_code_cell('%%qwen -i photo --ground "cat"\nFind the cats.'),
    ]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    nbformat.write(notebook, tmp_path / "grounding.ipynb")
    nb = open_notebook(str(tmp_path / "grounding.ipynb"))
    lab_origin = lab.url.rstrip("/")
    foreign: list[str] = []
    nb.page.on("request", lambda request: None if request.url.startswith(
        (lab_origin, "data:", "blob:")) else foreign.append(request.url))
    nb.start_run_all()
    view = live(nb)
    figure = view.locator(".qwen-nb-live-overlay .qwen-nb-overlay-base")
    layer = view.locator(".qwen-nb-live-overlay .qwen-nb-overlay-layer")
    check(figure).to_have_count(1)
    check(figure).to_be_visible()
    check(layer).to_be_visible()
    for img in (figure, layer):
        assert img.get_attribute("src").startswith("data:image/")
    during = _marks(figure.get_attribute("alt"))
    assert 1 <= during <= SHOWN_BEFORE_PAUSE  # boxes shown while the answer still streams
    assert nb.page.evaluate("() => document.querySelectorAll('.qwen-nb-live').length") == 1
    # Both pictures decoded, and the layer of marks lies exactly over the photo.
    boxes = nb.page.evaluate("""() => [...document.querySelectorAll(
        '.qwen-nb-live-overlay img')].map((img) => {
          const r = img.getBoundingClientRect();
          return [img.complete && img.naturalWidth, r.x, r.y, r.width, r.height]; })""")
    assert len(boxes) == 2 and boxes[0][0] == boxes[1][0] == 800
    assert all(abs(a - b) < 1 for a, b in zip(boxes[0][1:], boxes[1][1:], strict=True))
    if during < SHOWN_BEFORE_PAUSE:  # the quiet stream still gets its last boxes drawn
        check(figure).to_have_attribute("alt", re.compile(
            rf"with {SHOWN_BEFORE_PAUSE} marks drawn"))
    screenshot("live-grounding-overlay")
    nb.wait_run_all()
    output = nb.cell_output(2)
    check(output.locator(".qwen-nb-live")).to_have_count(0)
    final = output.locator("figure.qwen-nb-overlay img")
    check(final).to_have_count(1)
    assert _marks(final.get_attribute("alt")) == len(GROUNDING_BOXES)
    screenshot("live-grounding-final")
    assert nb.page.evaluate("() => window.__pwned") is None
    assert output.locator("script, a[href^='javascript'], img:not([src^='data:image/'])") \
        .count() == 0
    assert foreign == [], foreign
