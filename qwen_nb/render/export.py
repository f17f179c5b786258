"""qwen_nb replies as Markdown in `jupyter nbconvert --to markdown`.

nbconvert's Markdown exporter prefers `text/html` to `text/markdown`
(`display_data_priority`), which is right for most outputs and wrong for ours: the tabs
need their stylesheet, and a Markdown file should hold Markdown. `RepliesAsMarkdown` drops
the HTML of outputs that carry qwen_nb's metadata and a `text/markdown` (answer, then the
thinking folded), so nbconvert takes that; every other output is left as it is.

The package installs `etc/jupyter/jupyter_nbconvert_config.json` naming this preprocessor
for the Markdown exporter, so plain `jupyter nbconvert --to markdown` uses it. Where that
config is not read (a user config that sets `MarkdownExporter.preprocessors`, another
environment), `--to qwen-markdown` does the same.
"""

from __future__ import annotations

from typing import Any

from nbconvert.exporters import MarkdownExporter as _MarkdownExporter
from nbconvert.preprocessors import Preprocessor


def prefer_markdown(cell: Any) -> Any:
    """`cell` with the HTML of its qwen_nb outputs dropped where they hold Markdown."""
    for output in cell.get("outputs", []):
        data = output.get("data", {})
        if "qwen_nb" in output.get("metadata", {}) and "text/markdown" in data:
            data.pop("text/html", None)
    return cell


class RepliesAsMarkdown(Preprocessor):
    """nbconvert preprocessor: qwen_nb replies keep their Markdown, not their HTML tabs."""

    def preprocess_cell(self, cell: Any, resources: Any, index: int) -> tuple[Any, Any]:
        return prefer_markdown(cell), resources


class MarkdownExporter(_MarkdownExporter):
    """nbconvert's Markdown exporter with `RepliesAsMarkdown` always on (`qwen-markdown`)."""

    export_from_notebook = "Markdown (qwen_nb replies as Markdown)"

    def _init_preprocessors(self) -> None:
        super()._init_preprocessors()
        if not any(isinstance(p, RepliesAsMarkdown) for p in self._preprocessors):
            self.register_preprocessor(RepliesAsMarkdown, enabled=True)
