"""How the panel responds and what a panel turn costs on IOPub, in a real kernel.

    .venv/bin/python benchmarks/bench_panel.py [--runs 5] [--chunks 2000] [--pace 100]

Goals: clicking Send returns at once and Stop ends the stream within a second, also while
the server is silent (issue 3); IOPub bytes of a panel turn at 2,000 chunks <= 2x a plain
print loop of the same text, the first turn and a later one alike (the saved transcript is
cut into slots and a turn sends only its own), and <= 8 KB before its first text (issue 13).
The kernel, the IOPub recorder and the print-loop cell are bench_live_kernel's: the same
harness measures `%%qwen` and a panel turn.
"""

from __future__ import annotations

import argparse
import os
import time

from _bench import local_server, machine, median, report, table
from bench_live_kernel import (
    BYTES_RATIO_GOAL,
    FIXED_COST_GOAL,
    PRINT_CELL,
    kernel_and_server,
    one_cell,
)

SLOW = {"answer": "word " * 2000, "chunk_chars": 4, "chunk_delay": 0.02}
STALL = {"answer": "word " * 200, "chunk_chars": 4, "stall_after": 5, "stall_seconds": 300}
PANEL_CELL = "_panel = qwen_nb.Panel(namespace={}, cache='off')\n_panel"
# One turn, the same prompt as the print loop's; the cell lasts until the turn has ended.
TURN_CELL = "_panel.send('Describe the chart.')\nassert _panel.wait(600)"
EARLIER_TURNS = 4  # before the "later turn" row: the transcript holds them too


def responsiveness(reply: dict, runs: int) -> tuple[list[float], list[float]]:
    """(Send call durations, Stop-to-idle durations) over `runs` replies."""
    from qwen_nb.panel import Panel

    sends, stops = [], []
    with local_server(reply) as base_url:
        os.environ.update(QWEN_NB_BASE_URL=base_url, QWEN_NB_API_KEY="bench",
                          QWEN_NB_MODEL="qwen3-vl-32b-thinking")
        for _ in range(runs):
            panel = Panel(namespace={}, cache="off")
            started = time.perf_counter()
            assert panel.send("Talk")
            sends.append(time.perf_counter() - started)
            time.sleep(0.5)  # mid-stream (or inside the stall)
            started = time.perf_counter()
            panel.stop()
            assert panel.wait(30)
            stops.append(time.perf_counter() - started)
            assert not panel.last_response.complete
            panel.close()
    return sends, stops


def panel_turns(chunks: int, pace: float) -> dict[str, dict[str, float]]:
    """IOPub of a first panel turn, of a later one, and of the print loop, same stream."""
    with kernel_and_server() as (kernel, server, clock):
        kernel.run(PANEL_CELL)  # opens the models once; a turn opens none
        one_cell(kernel, server, clock, TURN_CELL, 200)  # warm-up: imports, caches
        kernel.run("_panel.new_chat()")
        first = one_cell(kernel, server, clock, TURN_CELL, chunks, pace)
        for _ in range(EARLIER_TURNS - 1):
            one_cell(kernel, server, clock, TURN_CELL, chunks)
        later = one_cell(kernel, server, clock, TURN_CELL, chunks, pace)
        plain = one_cell(kernel, server, clock, PRINT_CELL, chunks, pace)
    return {"first": first, "later": later, "print": plain}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--chunks", type=int, default=2000)
    parser.add_argument("--pace", type=float, default=100.0,
                        help="chunks a second for the bytes comparison (default 100)")
    args = parser.parse_args()
    rows = []
    met_response = True
    stop_max = 0.0
    for label, reply in (("streaming", SLOW), ("stalled server", STALL)):
        sends, stops = responsiveness(reply, args.runs)
        rows.append((label, f"{median(sends) * 1000:.1f} ms", f"{max(sends) * 1000:.1f} ms",
                     f"{median(stops) * 1000:.1f} ms", f"{max(stops) * 1000:.1f} ms"))
        met_response = met_response and max(stops) < 1.0 and max(sends) < 0.25
        stop_max = max(stop_max, *stops)
    print(f"Panel responsiveness, {args.runs} runs each ({machine()})\n")
    print(table(("case", "Send median", "Send max", "Stop median", "Stop max"), rows))

    turns = panel_turns(args.chunks, args.pace)
    plain, first, later = turns["print"], turns["first"], turns["later"]
    nth = f"{EARLIER_TURNS + 1}th"
    print(f"\nIOPub of one panel turn, a {args.chunks:,}-chunk reply at {args.pace:g} chunks/s"
          " (real kernel)\n")
    print(table(["cell", "IOPub bytes", "x print loop", "messages", "before the first text"],
                [[label, f"{r['bytes'] / 1024:,.1f} KB", f"{r['bytes'] / plain['bytes']:.2f}x",
                  f"{r['messages']:.0f}", f"{r['fixed'] / 1024:.1f} KB"]
                 for label, r in (("panel turn (first)", first),
                                  (f"panel turn ({nth})", later), ("print() loop", plain))]))
    print()
    ratio = first["bytes"] / plain["bytes"]
    later_ratio = later["bytes"] / plain["bytes"]
    report("Send returns at once, Stop ends the stream within 1 s", met_response,
           row="panel: Stop ends the stream (also while the server is silent)",
           measured=f"{stop_max * 1000:.1f} ms max", baseline="", goal="< 1 s")
    report(f"a panel turn's IOPub bytes {ratio:.2f}x the print loop's, the {nth} turn's "
           f"{later_ratio:.2f}x (goal <= 2x)",
           ratio <= BYTES_RATIO_GOAL and later_ratio <= BYTES_RATIO_GOAL,
           row=f"IOPub bytes of a {args.chunks:,}-chunk panel turn at {args.pace:g} chunks/s "
               "(saved transcript included)",
           measured=f"{first['bytes'] / 1024:,.0f} KB ({ratio:.2f}x); {nth} turn "
                    f"{later['bytes'] / 1024:,.0f} KB ({later_ratio:.2f}x)",
           baseline=f"print loop {plain['bytes'] / 1024:,.0f} KB", goal="<= 2x the print loop")
    report(f"{first['fixed'] / 1024:.1f} KB before any text ({nth} turn "
           f"{later['fixed'] / 1024:.1f} KB; goal <= 8 KB)",
           first["fixed"] <= FIXED_COST_GOAL and later["fixed"] <= FIXED_COST_GOAL,
           row="IOPub bytes per panel turn before any text",
           measured=f"{first['fixed'] / 1024:.1f} KB", baseline="", goal="<= 8 KB")

if __name__ == "__main__":
    main()
