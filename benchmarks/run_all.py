"""Run every benchmark and print one summary table.

    python benchmarks/run_all.py            # all of them (about 2 minutes on 2 cores)
    python benchmarks/run_all.py stream load  # only those whose name contains a word

Each script runs in its own process and prints its own detailed table; the summary at the
end collects their goal lines. Scripts report through lines starting with `RESULT ` (JSON)
or `[met]` / `[NOT met]`.
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
import time

from _bench import machine, table

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPTS = ["bench_load.py", "bench_stream.py", "bench_sse_lines.py", "bench_display.py",
           "bench_live_kernel.py", "bench_live_overlay.py", "bench_panel.py", "bench_batch.py",
           "bench_images.py", "bench_video.py", "bench_media.py", "bench_batch_memory.py",
           "bench_vision.py", "bench_render.py"]


def run(script: str) -> tuple[list[dict], int]:
    """Run one script, echoing its output; return its results and exit status."""
    print(f"\n===== {script} =====", flush=True)
    process = subprocess.Popen([sys.executable, os.path.join(HERE, script)], cwd=HERE,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    results: list[dict] = []
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("RESULT "):
            results.append(json.loads(line[len("RESULT "):]))
            continue
        print(line, end="", flush=True)
        goal = line.strip()
        if script not in _STRUCTURED and goal.startswith(("[met]", "[NOT met]")):
            met = goal.startswith("[met]")
            text = goal.split("]", 1)[1].strip()
            results.append({"row": text, "measured": "", "baseline": "", "goal": "",
                            "met": met})
    return results, process.wait()


_STRUCTURED = set(SCRIPTS)


def main() -> None:
    words = sys.argv[1:]
    chosen = [s for s in SCRIPTS if not words or any(w in s for w in words)]
    started = time.monotonic()
    rows, failures = [], []
    for script in chosen:
        results, status = run(script)
        if status != 0:
            failures.append(script)
        for r in results:
            rows.append([r["row"], r["measured"], r["baseline"], r["goal"],
                         "met" if r["met"] else "NOT met"])
    print(f"\n===== summary: {datetime.date.today().isoformat()}, {machine()}, "
          f"{time.monotonic() - started:.0f} s =====")
    print(table(["what", "qwen_nb", "baseline (same run)", "goal", ""], rows))
    if failures:
        print(f"\nfailed to run: {', '.join(failures)}")
        sys.exit(1)


if __name__ == "__main__":
    main()
