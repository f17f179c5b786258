"""Benchmark: 40 requests to a local server that takes 200 ms per reply.

`qwen_nb.batch(..., concurrency=4)` against the same 40 requests made one after another
with `qwen_nb.ask()` (the sequential baseline), in the same run.

    python benchmarks/bench_batch.py [--requests 40] [--delay 0.2] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import time

from _bench import local_server, machine, median, table, verdict

CONCURRENCY = 4


def measure(requests: int, delay: float, runs: int) -> dict:
    import qwen_nb

    prompts = [f"Describe picture {i}." for i in range(requests)]
    reply = {"delay_first_byte": delay, "thinking": "Looking.", "answer": "A picture."}
    with local_server(reply) as base_url:
        os.environ.update(QWEN_NB_BASE_URL=base_url, QWEN_NB_API_KEY="bench",
                          QWEN_NB_MODEL="qwen3-vl-32b-thinking")
        qwen_nb.ask("warm-up")
        started = time.perf_counter()
        answers = [qwen_nb.ask(prompt).answer for prompt in prompts]
        sequential = time.perf_counter() - started
        assert answers == ["A picture."] * requests
        batched = []
        for _ in range(runs):
            started = time.perf_counter()
            result = qwen_nb.batch(prompts, concurrency=CONCURRENCY, progress=False)
            batched.append(time.perf_counter() - started)
            assert result.answers == answers, result
    return {"sequential": sequential, "batch": median(batched),
            "ideal": requests * delay / CONCURRENCY}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--delay", type=float, default=0.2)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"# {args.requests} requests, {args.delay * 1000:.0f} ms each ({machine()}); "
          f"batch: median of {args.runs}")
    r = measure(args.requests, args.delay, args.runs)
    print(table(["how", "seconds", "speed-up"], [
        ["one after another (ask() in a loop)", f"{r['sequential']:.2f}", "1.0x"],
        [f"qwen_nb.batch(concurrency={CONCURRENCY})", f"{r['batch']:.2f}",
         f"{r['sequential'] / r['batch']:.1f}x"],
        [f"ideal at concurrency {CONCURRENCY}", f"{r['ideal']:.2f}",
         f"{r['sequential'] / r['ideal']:.1f}x"],
    ]))
    met = r["batch"] <= r["ideal"] * 1.25
    print(f"[{verdict(met)}] about {r['ideal']:.0f} s at concurrency {CONCURRENCY} "
          f"(within 25% of ideal; measured {r['batch']:.2f} s)")
    print("RESULT " + json.dumps({
        "row": f"batch: {args.requests} x {args.delay * 1000:.0f} ms requests",
        "measured": f"{r['batch']:.2f} s at concurrency {CONCURRENCY}",
        "baseline": f"sequential {r['sequential']:.2f} s (same run)",
        "goal": f"about {r['ideal']:.0f} s, not {args.requests * args.delay:.0f} s",
        "met": met}))


if __name__ == "__main__":
    main()
