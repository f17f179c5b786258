"""Helpers shared by test modules (conftest.py is for fixtures; two conftest modules, here
and in tests/browser/, cannot both be imported by the name `conftest`)."""

from __future__ import annotations

import os
from pathlib import Path

# A distinctive fake key: tests search every byte produced for it.
FAKE_KEY = "sk-qwen-nb-TEST-KEY-3f9a1c7e5d"


def run_cell(shell, source: str):
    """Run a cell; return the ExecutionResult (errors are in .error_in_exec)."""
    return shell.run_cell(source, store_history=False)


def run_notebook_with_key(cells: list[str], directory: Path, base_url: str):
    """Run code cells in a real kernel (errors allowed) against `base_url`, with the fake
    key in its environment and this checkout first on its path; returns the notebook."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    client = NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(directory)}})
    saved_env = dict(os.environ)
    os.environ.update({"QWEN_NB_BASE_URL": base_url, "QWEN_NB_API_KEY": FAKE_KEY,
                       "PYTHONPATH": str(Path(__file__).parents[1])})
    try:
        client.execute()
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
    return nb
