"""Helpers the browser tests share that are not fixtures."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def show_export_offline(page: Any, notebook: Path, folder: Path) -> list[str]:
    """Convert `notebook` with nbconvert's HTML exporter and open the page from file://
    with the network off; return the URLs the page tried to fetch (all refused)."""
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_filename(str(notebook))
    exported = folder / (notebook.stem + ".html")
    exported.write_text(body, encoding="utf-8")
    blocked: list[str] = []

    def network_off(route: Any) -> None:
        if route.request.url.startswith(("file:", "data:")):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    page.route("**/*", network_off)
    page.goto(exported.as_uri(), wait_until="load")
    return blocked
