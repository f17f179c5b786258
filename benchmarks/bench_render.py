"""Benchmark: finishing a 1 MB Markdown answer, and what the saved output stores.

- time: `static_bundle()` on a fresh reply (the work done when a reply ends: Markdown
  parsed once, math as MathML, code highlighted, the Markdown fallback checked), against
  one plain markdown-it-py render of the same text in the same run (goal <= 1.5x);
- size: the bytes of the saved output (every mimetype and the metadata) against the
  answer + thinking text (goal <= 2.5x + 12 KB); also, for information, what the output
  adds to the .ipynb file (nbformat splits strings into JSON lines and escapes quotes)
  against the same text saved there as one plain-text output;
- math: latex2mathml against the KaTeX-less alternative at hand, matplotlib's mathtext
  drawn to SVG, per formula (why the renderer uses MathML).

    python benchmarks/bench_render.py [--runs 5] [--mb 1]
"""

from __future__ import annotations

import argparse
import io
import json
import time

from _bench import machine, median, report, table

MAX_TIME_RATIO = 1.5
MAX_SIZE_RATIO = 2.5
SIZE_ALLOWANCE = 12 * 1024

# One section of a typical long answer: mostly prose, some math, a code block, a list and
# a table (about 2 KB; repeated to the size asked for).
SECTION = """## Step {n}: the energy of a system

Before any formula, it helps to say what is being compared. A body that does not move
still carries energy, and that energy is proportional to its mass; the constant of
proportionality is the square of the speed of light, which is why a small mass stands for
a very large amount of energy. Nothing in the argument below depends on the units chosen,
but SI units keep the numbers familiar, so they are used throughout this answer.

The second point is that the relation is not only about bodies at rest. When the body
moves, its energy grows with its momentum, and the rest energy becomes the lower bound of
the total. Each of the following steps makes one of these ideas precise, and the code at
the end computes the total energy for any mass and momentum you give it.

The total energy is $E = mc^2$ and, for a moving body, $E^2 = (pc)^2 + (mc^2)^2$.
Each term is **positive**, so the sum bounds the rest energy from below; see
[the derivation](https://en.wikipedia.org/wiki/Mass%E2%80%93energy_equivalence) for
details, and note that `E` is measured in joules.

\\[
\\int_0^\\infty e^{{-x^2}}\\,dx = \\frac{{\\sqrt{{\\pi}}}}{{2}}
\\]

1. Compute the momentum \\(p = \\gamma m v\\).
2. Square both sides and add the rest energy.
3. Take the positive root.

```python
def energy(mass: float, momentum: float, c: float = 299_792_458.0) -> float:
    # relativistic energy-momentum relation
    return ((momentum * c) ** 2 + (mass * c**2) ** 2) ** 0.5
```

| quantity | symbol | unit |
| --- | --- | --- |
| energy | E | J |
| momentum | p | kg m/s |

> A body at rest still has energy: that is the point of the equation.

"""


def answer_text(megabytes: float) -> str:
    parts, size, n = [], 0, 0
    while size < megabytes * 1_000_000:
        n += 1
        part = SECTION.format(n=n)
        parts.append(part)
        size += len(part)
    return "".join(parts)


def thinking_text(characters: int) -> str:
    line = ("The user asks about mass and energy; recall E = mc^2, then check the units "
            "and whether the momentum term matters here.\n")
    return line * (characters // len(line))


def plain_render(text: str) -> float:
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark").enable(["table", "strikethrough"])
    started = time.perf_counter()
    md.render(text)
    return time.perf_counter() - started


def finish(text: str, thinking: str) -> tuple[float, dict[str, str], dict]:
    from qwen_nb._types import QwenResponse, Usage
    from qwen_nb.render import static_bundle

    response = QwenResponse(answer=text, thinking=thinking, model="qwen3-vl-32b-thinking",
                            usage=Usage(prompt_tokens=50, completion_tokens=300_000,
                                        reasoning_tokens=60_000), thinking_seconds=42.0)
    started = time.perf_counter()
    data, metadata = static_bundle(response)
    elapsed = time.perf_counter() - started
    return elapsed, data, metadata


def in_notebook_file(data: dict[str, str], metadata: dict, text: str) -> tuple[int, int]:
    """(bytes the output adds to an .ipynb, bytes `text` alone adds as a text/plain
    output): the file pays each line and each quote of every mimetype again."""
    import nbformat

    def added(outputs: list) -> int:
        notebook = nbformat.v4.new_notebook()
        notebook.cells = [nbformat.v4.new_code_cell("%%qwen", outputs=outputs)]
        return len(nbformat.writes(notebook).encode())

    empty = added([])
    ours = added([nbformat.v4.new_output("display_data", data=data, metadata=metadata)])
    plain = added([nbformat.v4.new_output("display_data", data={"text/plain": text})])
    return ours - empty, plain - empty


def where_bytes_go(data: dict[str, str], metadata: dict) -> list[list[str]]:
    """Bytes per mimetype, and inside the HTML per kind of markup (why the ratio is what
    it is)."""
    import re

    html = data["text/html"]
    inside = {
        "MathML": sum(map(len, re.findall(r"<math[ >].*?</math>", html, re.S))),
        "code blocks (Pygments spans included)": sum(map(len, re.findall(
            r'<div class="qwen-nb-code".*?</pre></div>', html, re.S))),
        "Pygments spans' tags": sum(map(len, re.findall(r'<span class="\w+">|</span>',
                                                         html))),
        "thinking": sum(map(len, re.findall(r'<pre class="qwen-nb-trace">.*?</pre>',
                                            html, re.S))),
        "stylesheet": sum(map(len, re.findall(r"<style>.*?</style>", html, re.S))),
        "thumbnails": sum(map(len, re.findall(r'<div class="qwen-nb-thumbs">.*?</div>',
                                              html, re.S))),
    }
    rows = [[name, f"{len(value.encode()):,}"] for name, value in data.items()]
    rows.append(["metadata (JSON)", f"{len(json.dumps(metadata)):,}"])
    rows.extend([f"  text/html: {name}", f"{size:,}"] for name, size in inside.items())
    return rows


def math_alternatives(runs: int) -> list[list[str]]:
    """Per formula: latex2mathml (sanitised MathML) vs matplotlib mathtext -> SVG."""
    from qwen_nb.render.math import _to_mathml

    formulas = [r"E = mc^2", r"\int_0^\infty e^{-x^2}\,dx = \frac{\sqrt{\pi}}{2}",
                r"\sum_{i=1}^{n} x_i^2", r"\mathbf{A}\mathbf{x} = \mathbf{b}"]
    rows = []
    mathml_times, mathml_sizes = [], []
    for _ in range(runs):
        started = time.perf_counter()
        sizes = [len(_to_mathml(f, False) or "") for f in formulas]
        mathml_times.append((time.perf_counter() - started) / len(formulas))
        mathml_sizes = sizes
    rows.append(["latex2mathml (used)", f"{median(mathml_times) * 1e3:.2f} ms",
                 f"{sum(mathml_sizes) / len(formulas) / 1024:.1f} KB",
                 "text, selectable, scales, theme colour (TeX in text/markdown)"])
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib.figure import Figure
    except ImportError:
        rows.append(["matplotlib mathtext -> SVG", "not installed", "", ""])
        return rows
    svg_times, svg_sizes = [], []
    for _ in range(runs):
        started = time.perf_counter()
        sizes = []
        for formula in formulas:
            figure = Figure(figsize=(0.01, 0.01))
            figure.text(0, 0, f"${formula}$", fontsize=12)
            out = io.BytesIO()
            figure.savefig(out, format="svg", bbox_inches="tight", transparent=True)
            sizes.append(len(out.getvalue()))
        svg_times.append((time.perf_counter() - started) / len(formulas))
        svg_sizes = sizes
    rows.append(["matplotlib mathtext -> SVG (alternative)", f"{median(svg_times) * 1e3:.1f} ms",
                 f"{sum(svg_sizes) / len(formulas) / 1024:.1f} KB",
                 "a picture: fixed colour (unreadable in dark), subset of TeX"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--mb", type=float, default=1.0)
    args = parser.parse_args()
    base = answer_text(args.mb)
    thinking = thinking_text(200_000)
    print(f"# finishing a {len(base) / 1e6:.2f} MB Markdown answer + "
          f"{len(thinking) / 1e3:.0f} KB thinking ({machine()}), median of {args.runs}")
    plain_times, ours, data, metadata = [], [], {}, {}
    for run in range(args.runs):
        text = base + f"\n\nrun {run}\n"  # a new text each run: no cached render helps
        plain_times.append(plain_render(text))
        elapsed, data, metadata = finish(text, thinking)
        ours.append(elapsed)
    stored = sum(len(v.encode()) for v in data.values()) + len(json.dumps(metadata))
    plain, mine = median(plain_times), median(ours)
    ratio = mine / plain
    text_bytes = len(base.encode()) + len(thinking.encode())
    size_ratio = (stored - SIZE_ALLOWANCE) / text_bytes
    print(table(["what", "median", "ratio"], [
        ["one markdown-it-py render (baseline)", f"{plain:.2f} s", "1.00x"],
        ["qwen_nb static_bundle (whole finish)", f"{mine:.2f} s", f"{ratio:.2f}x"],
        ["saved output", f"{stored / 1e6:.2f} MB",
         f"{stored / text_bytes:.2f}x the text ({size_ratio:.2f}x + 12 KB)"],
    ]))
    print("\n# where the saved bytes go")
    print(table(["part", "bytes"], where_bytes_go(data, metadata)))
    in_file, plain_in_file = in_notebook_file(data, metadata, base + thinking)
    print(f"in the .ipynb file: {in_file / 1e6:.2f} MB, {in_file / plain_in_file:.2f}x the "
          f"same text saved as one plain-text output ({plain_in_file / 1e6:.2f} MB)\n")
    report(f"finishing <= {MAX_TIME_RATIO}x one markdown-it render", ratio <= MAX_TIME_RATIO,
           row=f"finish a {len(base) / 1e6:.1f} MB Markdown answer",
           measured=f"{mine:.2f} s, {ratio:.2f}x",
           baseline=f"one markdown-it-py render {plain:.2f} s", goal=f"<= {MAX_TIME_RATIO}x")
    report(f"saved output <= {MAX_SIZE_RATIO}x the text + 12 KB", size_ratio <= MAX_SIZE_RATIO,
           row="saved output per reply",
           measured=f"{stored / 1e6:.2f} MB, {stored / text_bytes:.2f}x the text "
                    f"({size_ratio:.2f}x + 12 KB)",
           baseline=f"answer + thinking {text_bytes / 1e6:.2f} MB",
           goal=f"<= {MAX_SIZE_RATIO}x + 12 KB")
    print("\n# one formula, two ways to show math without MathJax or KaTeX")
    print(table(["renderer", "time per formula", "size per formula", "result"],
                math_alternatives(args.runs)))


if __name__ == "__main__":
    main()
