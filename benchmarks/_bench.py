"""Shared helpers for the benchmark scripts: a local server in a subprocess, timing, tables.

The server runs in its own process so its work never competes with the code under test
for the GIL (the machine has 2 cores; the server still takes one of them while streaming).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAKE_SERVER = os.path.join(ROOT, "tests", "fake_server.py")
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


@contextmanager
def local_server(reply: dict[str, Any] | None = None, *, lifetime: float = 600.0
                 ) -> Iterator[str]:
    """Start tests/fake_server.py in a subprocess on 127.0.0.1; yield its base URL."""
    process = subprocess.Popen(
        [sys.executable, FAKE_SERVER, "--port", "0", "--lifetime", str(lifetime),
         "--reply", json.dumps(reply or {})],
        # stderr: the stdlib server prints a traceback whenever a client drops a
        # keep-alive connection, which the benchmarks do on purpose.
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        if not base_url.startswith("http"):
            raise RuntimeError(f"the local server did not start: {base_url!r}")
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def machine() -> str:
    return (f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, "
            f"Python {platform.python_version()}")


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table (readable in a terminal, pasteable into the README)."""
    cells = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"
             for row in cells]
    lines.insert(1, "| " + " | ".join("-" * w for w in widths) + " |")
    return "\n".join(lines)


def verdict(met: bool) -> str:
    return "met" if met else "NOT met"
