"""`jupyter nbconvert --to qwen-markdown`: Markdown in which each qwen_nb reply is its
readable `text/markdown` (answer, then the thinking folded), not the HTML tabs.

nbconvert's own Markdown exporter prefers `text/html` to `text/markdown`
(`display_data_priority`), which is right for most outputs and wrong for ours: the tabs
need their stylesheet, and a Markdown file should hold Markdown. Only outputs that carry
qwen_nb's metadata are changed.
"""

from __future__ import annotations

import copy
from typing import Any

from nbconvert.exporters import MarkdownExporter as _MarkdownExporter


def prefer_markdown(notebook: Any) -> Any:
    """A copy of `notebook` whose qwen_nb outputs keep `text/markdown` and drop the HTML."""
    notebook = copy.deepcopy(notebook)
    for cell in notebook.get("cells", []):
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "qwen_nb" in output.get("metadata", {}) and "text/markdown" in data:
                data.pop("text/html", None)
    return notebook


class MarkdownExporter(_MarkdownExporter):
    """nbconvert's Markdown exporter, with qwen_nb replies as their own Markdown."""

    export_from_notebook = "Markdown (qwen_nb replies as Markdown)"

    def from_notebook_node(self, nb: Any, resources: Any = None, **kw: Any) -> Any:
        return super().from_notebook_node(prefer_markdown(nb), resources, **kw)
