"""Helpers shared by test modules (conftest.py is for fixtures; two conftest modules, here
and in tests/browser/, cannot both be imported by the name `conftest`)."""

from __future__ import annotations

# A distinctive fake key: tests search every byte produced for it.
FAKE_KEY = "sk-qwen-nb-TEST-KEY-3f9a1c7e5d"


def run_cell(shell, source: str):
    """Run a cell; return the ExecutionResult (errors are in .error_in_exec)."""
    return shell.run_cell(source, store_history=False)
