"""Benchmark: the live `%%qwen` view in a real kernel, side by side with a plain print loop.

A real IPython kernel (jupyter_client) runs, in turn, a `%%qwen` cell and a cell that
prints the same stream's text chunk by chunk (`for e in qwen_nb.stream(...): print(...)`).
The local model server runs in this process, so the moment it writes the first content
byte is known exactly; a raw ZeroMQ subscriber on the kernel's IOPub socket timestamps
every message and counts its bytes (all frames: header, signature, content).

- first visible text: server's first content byte -> first IOPub message carrying it
  (median over --runs; the thinking starts after a 0.3 s pause, like a model's TTFT);
- IOPub bytes of the cell for a 2,000-chunk reply, against the print loop's;
- fixed cost: bytes the cell sends before the first message carrying text;
- kernel CPU per chunk (psutil) at 2,000 and at 100,000 chunks.

    python benchmarks/bench_live_kernel.py [--runs 20] [--big 100000]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

from _bench import ROOT, machine, median, table, verdict

sys.path.insert(0, os.path.join(ROOT, "tests"))

MARK = "MARK"  # the first thinking chunk (chunk_chars=4): found in the first message
FIRST_TOKEN_GOAL_S = 0.100
BYTES_RATIO_GOAL = 2.0
FIXED_COST_GOAL = 8 * 1024
FLAT_GOAL = 1.3


class FirstByteClock:
    """Records when the local server writes the first chunk carrying MARK."""

    def __init__(self) -> None:
        self.at: float | None = None

    def install(self) -> None:
        import fake_server

        original = fake_server._Handler._write_chunk
        clock = self

        def write_chunk(handler: Any, data: bytes) -> None:
            original(handler, data)
            if clock.at is None and MARK.encode() in data:
                clock.at = time.time()

        fake_server._Handler._write_chunk = write_chunk


class IOPubRecorder:
    """Every IOPub message of the kernel: (arrival time, total bytes, type, content)."""

    def __init__(self, connection: dict[str, Any]) -> None:
        import zmq
        from jupyter_client.session import Session

        key = connection["key"]
        self.session = Session(key=key if isinstance(key, bytes) else key.encode(),
                               signature_scheme=connection["signature_scheme"])
        self.context = zmq.Context()
        self.socket = self.context.socket(zmq.SUB)
        self.socket.setsockopt(zmq.SUBSCRIBE, b"")
        self.socket.connect(f"tcp://{connection['ip']}:{connection['iopub_port']}")
        self.messages: list[tuple[float, int, str, dict]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import zmq

        poller = zmq.Poller()
        poller.register(self.socket, zmq.POLLIN)
        while not self._stop.is_set():
            if not poller.poll(50):
                continue
            frames = self.socket.recv_multipart()
            at = time.time()
            _, rest = self.session.feed_identities(frames)
            message = self.session.deserialize(rest, content=True)
            self.messages.append((at, sum(map(len, frames)), message["msg_type"],
                                  message["content"]))

    def take(self) -> list[tuple[float, int, str, dict]]:
        time.sleep(0.3)  # the idle status and stragglers
        taken, self.messages = self.messages, []
        return taken

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.socket.close(0)
        self.context.term()


def run_measured(kernel, code: str) -> tuple[float, list]:
    """Run one cell: the kernel's CPU seconds (user + system) and the cell's IOPub traffic."""
    import psutil

    kernel.iopub.take()
    process = psutil.Process(kernel.pid())
    cpu_before = sum(process.cpu_times()[:2])
    started = time.time()
    kernel.run(code)
    cpu = sum(process.cpu_times()[:2]) - cpu_before
    return cpu, cell_traffic(kernel.iopub.take(), since=started)


def cell_traffic(messages: list, *, since: float) -> list:
    """The messages of one cell: after its execute_input, up to the idle status."""
    out, started = [], False
    for entry in messages:
        at, size, kind, content = entry
        if kind == "execute_input":
            started = True
            continue
        if not started or at < since:
            continue
        if kind == "status" and content.get("execution_state") == "idle":
            break
        if kind != "status":
            out.append(entry)
    return out


def carries(content: dict, text: str) -> bool:
    return text in json.dumps(content, ensure_ascii=False)


class Kernel:
    def __init__(self, env: dict[str, str]) -> None:
        from jupyter_client import KernelManager

        self.manager = KernelManager(kernel_name="python3")
        self.manager.start_kernel(env={**os.environ, **env})
        self.client = self.manager.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=60)
        self.iopub = IOPubRecorder(self.manager.get_connection_info(session=False))
        time.sleep(0.5)  # the subscriber connects

    def run(self, code: str, timeout: float = 600) -> None:
        reply = self.client.execute_interactive(code, timeout=timeout, output_hook=lambda m: None)
        if reply["content"]["status"] != "ok":
            raise RuntimeError(f"cell failed: {reply['content']}")

    def pid(self) -> int:
        return self.manager.provisioner.process.pid

    def close(self) -> None:
        self.iopub.close()
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)


QWEN_CELL = "%%qwen --cache off\nDescribe the chart."
PRINT_CELL = """\
for _event in qwen_nb.stream("Describe the chart.", cache="off"):
    _text = getattr(_event, "text", None)
    if _text:
        print(_text, end="")
"""


def reply_for(chunks: int, pace: float | None = None) -> Any:
    """A reply of `chunks` 4-character chunks, `pace` chunks a second (None: full speed),
    whose first text comes after a 0.3 s pause."""
    from bench_display import reply_texts
    from fake_server import Reply

    thinking, answer = reply_texts(chunks // 2, 4)
    return Reply(thinking=MARK + thinking[len(MARK):], answer=answer, chunk_chars=4,
                 stall_after=1, stall_seconds=0.3, chunk_delay=1 / pace if pace else 0.0)


def one_cell(kernel: Kernel, server: Any, clock: FirstByteClock, code: str, chunks: int,
             pace: float | None = None) -> dict[str, float]:
    server.queue(reply_for(chunks, pace))
    clock.at = None
    cpu, traffic = run_measured(kernel, code)
    first = next((i for i, m in enumerate(traffic) if carries(m[3], MARK)), None)
    assert first is not None and clock.at is not None, "no message carried the first text"
    return {"latency": traffic[first][0] - clock.at, "bytes": sum(m[1] for m in traffic),
            "fixed": sum(m[1] for m in traffic[:first]), "messages": len(traffic),
            "cpu": cpu}


@contextlib.contextmanager
def kernel_and_server() -> Iterator[tuple[Kernel, Any, FirstByteClock]]:
    """A real kernel with qwen_nb loaded, talking to a local model server whose first
    content byte is clocked; both stop on exit."""
    from fake_server import FakeServer

    clock = FirstByteClock()
    clock.install()
    with FakeServer(lifetime=1800) as server:
        env = {"QWEN_NB_BASE_URL": server.base_url, "QWEN_NB_API_KEY": "bench",
               "QWEN_NB_MODEL": "qwen3-vl-32b-thinking", "PYTHONPATH": ROOT}
        kernel = Kernel(env)
        try:
            kernel.run("%load_ext qwen_nb\nimport qwen_nb")
            yield kernel, server, clock
        finally:
            kernel.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--chunks", type=int, default=2000)
    parser.add_argument("--big", type=int, default=100_000)
    parser.add_argument("--pace", type=float, default=100.0,
                        help="chunks a second for the bytes comparison (default 100)")
    args = parser.parse_args()
    with kernel_and_server() as (kernel, server, clock):
        one_cell(kernel, server, clock, QWEN_CELL, 200)  # warm-up: imports, caches
        one_cell(kernel, server, clock, PRINT_CELL, 200)
        results: dict[str, list[dict]] = {"qwen": [], "print": []}
        for _ in range(args.runs):  # first text: short replies, full speed
            results["qwen"].append(one_cell(kernel, server, clock, QWEN_CELL, 200))
            results["print"].append(one_cell(kernel, server, clock, PRINT_CELL, 200))
        paced = {name: one_cell(kernel, server, clock, code, args.chunks, args.pace)
                 for name, code in (("qwen", QWEN_CELL), ("print", PRINT_CELL))}
        small = [one_cell(kernel, server, clock, QWEN_CELL, args.chunks) for _ in range(3)]
        big = [one_cell(kernel, server, clock, QWEN_CELL, args.big) for _ in range(2)]
    summary = {name: {key: median([r[key] for r in runs]) for key in runs[0]}
               for name, runs in results.items()}
    big_run = {key: median([r[key] for r in big]) for key in big[0]}
    small_run = {key: median([r[key] for r in small]) for key in small[0]}
    qwen, plain = summary["qwen"], summary["print"]
    print(f"# live %%qwen view vs a print loop in a real kernel ({machine()})")
    print(f"first text: median of {args.runs} 200-chunk replies; bytes: a {args.chunks:,}-chunk"
          f" reply at {args.pace:g} chunks/s")
    rows = [[label, f"{r['latency'] * 1000:.0f} ms", f"{p['bytes'] / 1024:,.1f} KB",
             f"{p['messages']:.0f}", f"{r['fixed'] / 1024:.1f} KB"]
            for label, r, p in (("%%qwen live view", qwen, paced["qwen"]),
                                ("print() loop", plain, paced["print"]))]
    print(table(["cell", "first text visible", "IOPub bytes", "messages",
                 "before the first text"], rows))
    per_small = small_run["cpu"] / args.chunks
    per_big = big_run["cpu"] / args.big
    flat = per_big / per_small
    ratio = paced["qwen"]["bytes"] / paced["print"]["bytes"]
    print(f"\n{args.big:,} chunks: kernel CPU {per_big * 1e6:.0f} µs per chunk "
          f"({flat:.2f}x that at {args.chunks:,}), {big_run['bytes'] / 1024:,.0f} KB IOPub")
    met_latency = qwen["latency"] <= FIRST_TOKEN_GOAL_S
    met_bytes = ratio <= BYTES_RATIO_GOAL
    met_fixed = qwen["fixed"] <= FIXED_COST_GOAL
    met_flat = flat <= FLAT_GOAL
    print(f"[{verdict(met_latency)}] first text visible {qwen['latency'] * 1000:.0f} ms after "
          f"its first byte (print loop {plain['latency'] * 1000:.0f} ms; goal <= 100 ms)")
    print(f"[{verdict(met_bytes)}] IOPub bytes {ratio:.2f}x the print loop's (goal <= 2x); "
          f"at full speed {small_run['bytes'] / 1024:,.0f} KB (the final static bundle "
          "holds the text as HTML, Markdown and plain text)")
    print(f"[{verdict(met_fixed)}] {qwen['fixed'] / 1024:.1f} KB before any text (goal <= 8 KB)")
    print(f"[{verdict(met_flat)}] per-chunk CPU at {args.big:,} chunks {flat:.2f}x that at "
          f"{args.chunks:,} (goal <= 1.3x)")
    for row, measured, baseline, goal, met in (
        ("first text visible after its first byte (real kernel)",
         f"{qwen['latency'] * 1000:.0f} ms", f"print loop {plain['latency'] * 1000:.0f} ms",
         "<= 100 ms", met_latency),
        (f"IOPub bytes, {args.chunks:,}-chunk %%qwen cell at {args.pace:g} chunks/s",
         f"{paced['qwen']['bytes'] / 1024:,.0f} KB ({ratio:.2f}x)",
         f"print loop {paced['print']['bytes'] / 1024:,.0f} KB", "<= 2x the print loop",
         met_bytes),
        ("fixed cost per %%qwen cell before any text", f"{qwen['fixed'] / 1024:.1f} KB",
         "before: 20 widget models, 49 KB", "<= 8 KB", met_fixed),
        (f"kernel CPU per chunk, {args.big:,} vs {args.chunks:,} chunks",
         f"{per_big * 1e6:.0f} vs {per_small * 1e6:.0f} µs ({flat:.2f}x)",
         "before: 53 -> 446 µs (8.4x)", "<= 1.3x", met_flat),
    ):
        print("RESULT " + json.dumps({"row": row, "measured": measured, "baseline": baseline,
                                      "goal": goal, "met": met}))


if __name__ == "__main__":
    main()
