"""The chat panel on qwen_nb's front end, in JupyterLab: a chat with an uploaded image,
every per-turn action (copy, insert the code as a new cell, regenerate, edit and resend),
the dark theme's contrast measured from computed styles, nothing fetched from the
network, and the transcript still there after save, kernel shutdown and reload."""

from __future__ import annotations

import pytest
from browser_support import show_export_offline
from fake_server import Reply
from test_panel_lab import panel_notebook

from qwen_nb.frontend.chat import TRANSCRIPT_SLOTS

pytestmark = pytest.mark.browser

CODE_ONE = "print('chat block one')"
CODE_TWO = "total = 1 + 2"
ANSWER = (
    "CHAT-ANSWER-ONE with code:\n\n"
    f"```python\n{CODE_ONE}\n```\n\n```python\n{CODE_TWO}\n```\n\n"
    "and a [bad link](javascript:window.__pwned=1) <script>window.__pwned=2</script> "
    "and a remote image ![pixel](http://203.0.113.9/pixel.png)"
)
# Luminance contrast (WCAG 2) of each text element against the background it sits on.
CONTRAST = """(root) => {
  const parse = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = (node) => {
    for (; node; node = node.parentElement) {
      const c = parse(getComputedStyle(node).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0.5)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const results = [];
  for (const node of root.querySelectorAll('*')) {
    const text = [...node.childNodes].filter((n) => n.nodeType === 3)
      .map((n) => n.textContent.trim()).join('');
    if (!text || node.closest('[hidden]') || node.disabled) continue;
    const style = getComputedStyle(node);
    if (style.display === 'none' || style.visibility === 'hidden') continue;
    const a = lum(parse(style.color).slice(0, 3)), b = lum(background(node));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    results.push({text: text.slice(0, 40), cls: node.className, ratio});
  }
  return results;
}"""
NEW_CELLS = """(path) => {
  const app = window.jupyterapp;
  for (const widget of app.shell.widgets('main')) {
    if (widget.context && widget.context.path === path) {
      return widget.context.model.sharedModel.cells.map((c) => c.getSource());
    }
  }
  return null;
}"""


def expect():
    from playwright.sync_api import expect

    return expect


@pytest.fixture
def clipboard(browser_context, lab):
    browser_context.grant_permissions(["clipboard-read", "clipboard-write"], origin=lab.url)
    yield lambda page: page.evaluate("() => navigator.clipboard.readText()")
    browser_context.clear_permissions()


def test_chat_with_an_image_every_turn_action_dark_theme_and_reload(
        open_notebook, model, tmp_path, screenshot, clipboard, lab):
    from PIL import Image

    check = expect()
    image_path = tmp_path / "blue-square.png"
    Image.new("RGB", (64, 48), (30, 60, 220)).save(image_path)
    model.queue(Reply(thinking="CHAT-THINKING about the square.", answer=ANSWER,
                      chunk_chars=16, chunk_delay=0.01),
                Reply(thinking="Again.", answer="CHAT-ANSWER-REGENERATED"),
                Reply(thinking="Edited.", answer="CHAT-ANSWER-EDITED"))
    nb = open_notebook(panel_notebook(tmp_path))
    requests: list[str] = []
    nb.page.on("request", lambda request: requests.append(request.url))
    nb.run_all()
    chat = nb.cell_output(0).locator(".qwen-nb-chat")
    check(chat).to_be_visible()
    check(chat.locator(".qwen-nb-head")).to_contain_text("qwen3-vl-32b-thinking")
    # The static copy of the transcript is in the output, hidden while the chat shows.
    check(nb.cell_output(0).locator(".qwen-nb-transcript")).to_have_count(TRANSCRIPT_SLOTS)
    check(nb.cell_output(0).locator(".qwen-nb-transcript").filter(visible=True)
          ).to_have_count(0)

    chat.locator("input.qwen-nb-upload").set_input_files(str(image_path))
    check(chat.locator(".qwen-nb-attachments")).to_contain_text("blue-square.png")
    check(chat.locator(".qwen-nb-attachments img")).to_be_visible()
    prompt = chat.locator("textarea.qwen-nb-prompt")
    prompt.click()
    prompt.type("What is PROMPT-ONE?")
    prompt.press("Control+Enter")
    turn = chat.locator(".qwen-nb-turn").last
    check(turn.locator(".qwen-nb-you")).to_contain_text("What is PROMPT-ONE?")
    check(turn.locator(".qwen-nb-you img.qwen-nb-thumb")).to_be_visible()
    check(turn.locator(".qwen-nb-answer")).to_contain_text("CHAT-ANSWER-ONE")
    check(turn.locator(".qwen-nb-actions")).to_be_visible()
    check(turn.locator("label").nth(1)).to_contain_text("Thinking · ")
    check(prompt).to_have_value("")
    sent = model.requests[0].json["messages"][-1]["content"]
    assert [part["type"] for part in sent] == ["image_url", "text"]
    assert nb.page.evaluate("() => window.__pwned") is None
    answer = turn.locator(".qwen-nb-answer")
    assert answer.locator("a[href^='javascript'], script, img").count() == 0
    check(turn.locator(".qwen-nb-answer a.qwen-nb-image-link")).to_contain_text("203.0.113.9")
    screenshot("panel-chat-first-turn")

    # Copy the answer; insert its code as a new cell below the panel's cell.
    turn.locator(".qwen-nb-actions .qwen-nb-copy").click()
    assert "CHAT-ANSWER-ONE" in clipboard(nb.page)
    turn.locator("button.qwen-nb-insert").click()
    nb.page.wait_for_function(f"(path) => ({NEW_CELLS})(path).length === 2", arg=nb.path)
    cells = nb.page.evaluate(NEW_CELLS, nb.path)
    assert cells[1] == f"{CODE_ONE}\n\n{CODE_TWO}", cells
    check(nb.page.locator(".jp-Notebook .jp-Cell")).to_have_count(2)
    check(nb.page.locator(".jp-Notebook .jp-Cell").nth(1)).to_contain_text("chat block one")

    # Regenerate: the last turn is replaced by a new reply to the same prompt and image.
    turn.locator("button.qwen-nb-regenerate").click()
    check(chat.locator(".qwen-nb-turn").last.locator(".qwen-nb-answer")).to_contain_text(
        "CHAT-ANSWER-REGENERATED")
    check(chat.locator(".qwen-nb-turn")).to_have_count(1)
    again = model.requests[1].json["messages"]
    assert len(again) == 1 and [p["type"] for p in again[0]["content"]] == ["image_url", "text"]

    # Edit the last prompt and resend: the turn is replaced, the server gets the new text.
    chat.locator(".qwen-nb-turn").last.locator("button.qwen-nb-edit").click()
    check(prompt).to_have_value("What is PROMPT-ONE?")
    prompt.fill("What is PROMPT-EDITED?")
    chat.locator("button.qwen-nb-send").click()
    check(chat.locator(".qwen-nb-turn").last.locator(".qwen-nb-answer")).to_contain_text(
        "CHAT-ANSWER-EDITED")
    check(chat.locator(".qwen-nb-turn")).to_have_count(1)
    edited = model.requests[2].json["messages"][-1]["content"]
    assert edited[-1]["text"] == "What is PROMPT-EDITED?" and edited[0]["type"] == "image_url"

    # The dark theme: every text in the chat reads at >= 4.5:1.
    check_dark_contrast(nb, chat)
    screenshot("panel-chat-dark")
    set_theme(nb, "JupyterLab Light")

    # Only the Lab server itself (and anywidget's in-page blob: modules) were asked.
    outside = [url for url in requests if not url.startswith((lab.url, "blob:", "data:"))]
    assert outside == [], outside

    # Saved, kernel gone, reloaded: the whole transcript is there, without a kernel.
    transcript = reopened_transcript(nb, "What is PROMPT-EDITED?", "CHAT-ANSWER-EDITED")
    check(transcript.locator("img")).to_have_count(1)
    check(transcript.locator(".qwen-nb-thumbs img")).to_be_visible()
    transcript.locator("label", has_text="Thinking").click()
    check(transcript.locator(".qwen-nb-thinking")).to_contain_text("Edited.")
    screenshot("panel-chat-reloaded")

    # nbconvert HTML from file://, offline: the transcript, and no word from the widget.
    blocked = show_export_offline(nb.page, nb.lab.root / nb.path, tmp_path)
    # Only nbconvert's own template asks for something (require.js, MathJax from a CDN).
    assert all(url.startswith("https://cdnjs.cloudflare.com/") for url in blocked), blocked
    exported = nb.page.locator(".jp-Cell").first.locator(".jp-OutputArea")
    # One turn: its slot shows, the empty slots and the widget's output do not.
    check(exported.locator(".qwen-nb-transcript:not(:empty)")).to_contain_text(
        "CHAT-ANSWER-EDITED")
    check(exported.locator(".qwen-nb-transcript")).to_have_count(TRANSCRIPT_SLOTS)
    check(exported.locator(".jp-OutputArea-child:visible")).to_have_count(1)
    screenshot("panel-chat-nbconvert")


def set_theme(nb, theme: str) -> None:
    nb.page.evaluate("(theme) => window.jupyterapp.commands.execute("
                     "'apputils:change-theme', {theme})", theme)
    light = "false" if "Dark" in theme else "true"
    nb.page.wait_for_function(f"() => document.body.dataset.jpThemeLight === '{light}'")
    nb.page.wait_for_timeout(500)


def check_dark_contrast(nb, chat) -> None:
    """In the dark theme, every text of the chat (Settings open) reads at >= 4.5:1."""
    set_theme(nb, "JupyterLab Dark")
    chat.locator("summary", has_text="Settings").click()
    results = chat.evaluate(CONTRAST)
    assert len(results) > 10, results
    low = [r for r in results if r["ratio"] < 4.5]
    assert not low, low


def test_notebook7_chat_dark_theme_contrast_and_reload(open_notebook7, model, tmp_path,
                                                       screenshot):
    """Notebook 7: a turn with code, the dark theme's contrast, and after save, kernel
    shutdown and reload only the transcript's two turns (no widget error, no empty slot)."""
    check = expect()
    model.queue(Reply(thinking="NB7-THINKING.", answer=ANSWER),
                Reply(answer="NB7-SECOND-ANSWER"))
    nb = open_notebook7(panel_notebook(tmp_path))
    nb.run_all()
    chat = nb.cell_output(0).locator(".qwen-nb-chat")
    check(chat).to_be_visible()
    check(nb.cell_output(0).locator(".jp-OutputArea-child:visible")).to_have_count(1)
    prompt = chat.locator("textarea.qwen-nb-prompt")
    prompt.fill("What is NB7-PROMPT?")
    prompt.press("Control+Enter")
    turn = chat.locator(".qwen-nb-turn").last
    check(turn.locator(".qwen-nb-actions")).to_be_visible()
    check(turn.locator(".qwen-nb-answer pre")).to_have_count(2)
    check_dark_contrast(nb, chat)
    screenshot("notebook7-panel-dark")
    set_theme(nb, "JupyterLab Light")
    prompt.fill("NB7-SECOND-PROMPT")
    prompt.press("Control+Enter")
    check(chat.locator(".qwen-nb-turn")).to_have_count(2)
    check(chat.locator(".qwen-nb-turn").last).to_contain_text("NB7-SECOND-ANSWER")
    check(chat.locator(".qwen-nb-turn").last.locator(".qwen-nb-actions")).to_be_visible()

    shown = reopened_transcript(nb, "NB7-SECOND-PROMPT", "NB7-SECOND-ANSWER", turns=2)
    check(shown.first).to_contain_text("What is NB7-PROMPT?")
    check(shown.first.locator(".qwen-nb-answer")).to_contain_text("CHAT-ANSWER-ONE")
    screenshot("notebook7-panel-reloaded")


def reopened_transcript(nb, prompt: str, answer: str, *, turns: int = 1):
    """Save, shut the kernel down, reload: the cell shows the transcript and only it, one
    output per turn (its slot); the last turn has `prompt` and `answer`. Returns the slots
    that hold turns.

    ipywidgets' renderer has put its error text into the chat's output, and the
    transcript's stylesheet keeps it out of sight, and the slots without turns too."""
    check = expect()
    nb.save()
    nb.shutdown_kernel()
    nb.reload()
    output = nb.cell_output(0)
    check(output.locator(".qwen-nb-transcript")).to_have_count(TRANSCRIPT_SLOTS)
    shown = output.locator(".qwen-nb-transcript:not(:empty)")
    check(shown).to_have_count(turns)
    check(shown.last).to_be_visible()
    check(shown.last).to_contain_text(prompt)
    check(shown.last.locator(".qwen-nb-answer")).to_contain_text(answer)
    dead = output.locator(".jp-OutputArea-output", has_text="Error displaying widget")
    check(dead).to_be_attached()  # the condition this check is about did happen
    check(dead).to_be_hidden()
    # What shows is the turns' slots, each its own output; the empty slots leave no gap.
    check(output.locator(".jp-OutputArea-child:visible")).to_have_count(turns)
    check(output.locator(".jp-OutputArea-child:has(.qwen-nb-transcript:not(:empty))")
          .filter(visible=True)).to_have_count(turns)
    empty = output.locator(".jp-OutputArea-child:has(.qwen-nb-slot:empty)")
    check(empty).to_have_count(TRANSCRIPT_SLOTS - turns)
    check(empty.filter(visible=True)).to_have_count(0)
    return shown
