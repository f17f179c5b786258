"""Benchmark: what drawing grounding boxes live costs a `%%qwen --ground` cell, in a real kernel.

The same grounding reply (`--boxes` boxes on a 1600 x 1200 photo, 4-character chunks at
`--pace` chunks a second, as a model streams) runs through one `%%qwen -i photo --ground`
cell twice per run: with the live overlay, and with it turned off in the kernel (the
baseline: everything else, the final static output included, is the same). Reported:
kernel CPU of the cell (psutil), IOPub bytes, and the overlay messages (count, bytes),
medians over --runs. A plain `%%qwen` cell's cost is bench_live_kernel.py's.

    python benchmarks/bench_live_overlay.py [--runs 3] [--boxes 40] [--pace 100]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from _bench import ROOT, machine, median, table

sys.path.insert(0, os.path.join(ROOT, "tests"))

SETUP = """\
%load_ext qwen_nb
import numpy as np
from PIL import Image
_y, _x = np.mgrid[0:1200, 0:1600]
_noise = np.random.default_rng(0).integers(0, 40, (1200, 1600, 3))
photo = Image.fromarray((np.dstack([_x % 256, _y % 256, (_x + _y) % 256]) // 2
                         + _noise).astype('uint8'))
from qwen_nb.frontend import live_overlay as _live_overlay
_wanted = _live_overlay.LiveOverlay.wanted
"""
CELL = '%%qwen --cache off -i photo --ground "cat"\nFind every cat.'
OVERLAY_OFF = "_live_overlay.LiveOverlay.wanted = staticmethod(lambda request: False)"
OVERLAY_ON = "_live_overlay.LiveOverlay.wanted = _wanted"


def grounding_answer(boxes: int) -> str:
    items = ",\n".join(
        f'  {{"bbox_2d": [{(37 * i) % 900}, {(53 * i) % 900}, {(37 * i) % 900 + 90}, '
        f'{(53 * i) % 900 + 80}], "label": "cat {i % 6}"}}' for i in range(boxes))
    return f"Here are the cats.\n\n```json\n[\n{items}\n]\n```\n\nThat is every one I see."


def one_cell(kernel: Any, server: Any, answer: str, pace: float) -> dict[str, float]:
    from bench_live_kernel import run_measured
    from fake_server import Reply

    server.queue(Reply(thinking="I look for cats. " * 20, answer=answer, chunk_chars=4,
                       chunk_delay=1 / pace))
    started = time.time()
    cpu, traffic = run_measured(kernel, CELL)
    overlays = [m for m in traffic if m[2] == "comm_msg"
                and "overlay" in (m[3].get("data", {}).get("content") or {})]
    return {"cpu": cpu, "bytes": sum(m[1] for m in traffic), "overlays": len(overlays),
            "overlay_bytes": sum(m[1] for m in overlays), "seconds": time.time() - started}


def main() -> None:
    from bench_live_kernel import Kernel
    from fake_server import FakeServer

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--boxes", type=int, default=40)
    parser.add_argument("--pace", type=float, default=100.0, help="chunks a second")
    args = parser.parse_args()
    answer = grounding_answer(args.boxes)
    with FakeServer(lifetime=1800) as server:
        env = {"QWEN_NB_BASE_URL": server.base_url, "QWEN_NB_API_KEY": "bench",
               "QWEN_NB_MODEL": "qwen3-vl-32b-thinking", "PYTHONPATH": ROOT}
        kernel = Kernel(env)
        try:
            kernel.run(SETUP)
            one_cell(kernel, server, answer, args.pace * 10)  # warm-up: imports, caches
            results: dict[str, list[dict]] = {"on": [], "off": []}
            for _ in range(args.runs):
                for name, switch in (("on", OVERLAY_ON), ("off", OVERLAY_OFF)):
                    kernel.run(switch)
                    results[name].append(one_cell(kernel, server, answer, args.pace))
            kernel.run(OVERLAY_ON)
        finally:
            kernel.close()
    on, off = ({key: median([r[key] for r in runs]) for key in runs[0]}
               for runs in (results["on"], results["off"]))
    chunks = len(answer) // 4
    print(f"# live grounding overlay in a real kernel ({machine()})")
    print(f"{args.boxes} boxes, {len(answer):,}-character answer in {chunks} chunks at "
          f"{args.pace:g} chunks/s, 1600 x 1200 photo; median of {args.runs} runs")
    rows = [[label, f"{r['cpu'] * 1000:,.0f} ms", f"{r['bytes'] / 1024:,.0f} KB",
             f"{r['overlays']:.0f}", f"{r['overlay_bytes'] / 1024:,.0f} KB",
             f"{r['seconds']:.1f} s"]
            for label, r in (("live overlay", on), ("overlay off (baseline)", off))]
    print(table(["cell", "kernel CPU", "IOPub bytes", "overlay messages", "overlay bytes",
                 "wall time"], rows))
    extra_cpu = on["cpu"] - off["cpu"]
    per_update = extra_cpu / on["overlays"] if on["overlays"] else float("nan")
    print(f"\noverlay cost: +{extra_cpu * 1000:,.0f} ms kernel CPU "
          f"({on['cpu'] / off['cpu']:.2f}x the cell without it; {per_update * 1000:.0f} ms "
          f"per update), +{(on['bytes'] - off['bytes']) / 1024:,.0f} KB IOPub "
          f"({on['bytes'] / off['bytes']:.2f}x)")
    print("RESULT " + json.dumps({
        "row": f"live grounding overlay, {args.boxes} boxes at {args.pace:g} chunks/s",
        "measured": f"+{extra_cpu * 1000:,.0f} ms CPU, {on['overlays']:.0f} updates, "
                    f"+{(on['bytes'] - off['bytes']) / 1024:,.0f} KB",
        "baseline": f"overlay off: {off['cpu'] * 1000:,.0f} ms, {off['bytes'] / 1024:,.0f} KB",
        "goal": "reported (no goal)", "met": True}))


if __name__ == "__main__":
    main()
