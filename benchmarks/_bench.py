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
import time
from collections.abc import Callable, Iterator, Sequence
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


def timed_runs(actions: dict[str, Callable[[], object]], runs: int, *,
               at_most: dict[str, int] | None = None
               ) -> dict[str, tuple[list[float], list[float]]]:
    """Each action's wall and CPU seconds per run, the actions interleaved run by run so
    load from elsewhere hits them alike (CPU time is the steadier figure on a shared
    machine; wall time also counts waiting for the server, and CPU counts every thread).
    `at_most`: fewer runs for slow actions (a slow baseline)."""
    times: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in actions}
    limits = at_most or {}
    for run in range(runs):
        for name, action in actions.items():
            if run >= limits.get(name, runs):
                continue
            started, started_cpu = time.perf_counter(), time.process_time()
            action()
            times[name][0].append(time.perf_counter() - started)
            times[name][1].append(time.process_time() - started_cpu)
    return times


def timed(action: Callable[[], object], runs: int) -> tuple[float, float]:
    """Median wall and CPU seconds of `runs` calls of one action."""
    wall, cpu = timed_runs({"action": action}, runs)["action"]
    return median(wall), median(cpu)


def report(claim: str, met: bool, *, row: str, measured: str, baseline: str, goal: str
           ) -> None:
    """The verdict line for a reader and the RESULT line run_all.py collects."""
    print(f"[{verdict(met)}] {claim}")
    print("RESULT " + json.dumps({"row": row, "measured": measured, "baseline": baseline,
                                  "goal": goal, "met": met}))


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
