"""How fast the panel responds: Send returning, Stop ending a stream, Stop during a stall.

    .venv/bin/python benchmarks/bench_panel.py [--runs 5]

Goals (issue 3): clicking Send returns at once; Stop ends the stream within a second,
also while the server is silent (a stalled read must wake up).
"""

from __future__ import annotations

import argparse
import os
import time

from _bench import local_server, machine, median, table, verdict

SLOW = {"answer": "word " * 2000, "chunk_chars": 4, "chunk_delay": 0.02}
STALL = {"answer": "word " * 200, "chunk_chars": 4, "stall_after": 5, "stall_seconds": 300}


def measure(reply: dict, runs: int) -> tuple[list[float], list[float]]:
    """(Send call durations, Stop-to-idle durations) over `runs` replies."""
    from qwen_nb.panel import Panel

    sends, stops = [], []
    with local_server(reply) as base_url:
        os.environ.update(QWEN_NB_BASE_URL=base_url, QWEN_NB_API_KEY="bench",
                          QWEN_NB_MODEL="qwen3-vl-32b-thinking")
        for _ in range(runs):
            panel = Panel(namespace={})
            panel.prompt.value = "Talk"
            started = time.perf_counter()
            panel.send_button.click()
            sends.append(time.perf_counter() - started)
            deadline = time.monotonic() + 30
            while "answering" not in panel.status.value and "thinking..." not in \
                    panel.status.value and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(0.3)  # mid-stream (or inside the stall)
            started = time.perf_counter()
            panel.stop_button.click()
            assert panel.wait(30)
            stops.append(time.perf_counter() - started)
            assert not panel.last_response.complete
            panel.close()
    return sends, stops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    rows = []
    met = True
    for label, reply in (("streaming", SLOW), ("stalled server", STALL)):
        sends, stops = measure(reply, args.runs)
        rows.append((label, f"{median(sends) * 1000:.1f} ms", f"{max(sends) * 1000:.1f} ms",
                     f"{median(stops) * 1000:.1f} ms", f"{max(stops) * 1000:.1f} ms"))
        met = met and max(stops) < 1.0 and max(sends) < 0.25
    print(f"Panel responsiveness, {args.runs} runs each ({machine()})\n")
    print(table(("case", "Send median", "Send max", "Stop median", "Stop max"), rows))
    print(f"\nGoal (Send returns at once, Stop within 1 s): {verdict(met)}")


if __name__ == "__main__":
    main()
