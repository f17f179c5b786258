"""Benchmark: showing a 2,000-chunk reply live: updates, kernel CPU, bytes to the frontend.

The reply (1,000 thinking chunks, then 1,000 Markdown answer chunks) is fed as events into
three views, with a simulated clock so a 40-second stream takes well under a second:

- naive: one widget update per chunk, re-sending the whole text (answer re-rendered);
- throttled whole text: at most 12 updates a second, each re-sending both whole texts
  (what qwen_nb did before append-only pieces);
- qwen_nb: `display.LiveView` (throttled, append-only pieces, status at most 1/s).

Bytes are counted where ipywidgets hands messages to the comm layer (the JSON of each
comm message's data), plus the display messages (the static bundle at the end). Each
Jupyter message also carries an envelope (header, parent header, signature) of about
540 bytes (measured with ipykernel 7), added as an estimate. CPU is the process time
spent inside the view.
Finally the view runs on a real local-server stream at full speed, where the display's
CPU is compared with the stream's wall time.

    python benchmarks/bench_display.py [--rate 50] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from _bench import ROOT, local_server, machine, median, table, verdict

sys.path.insert(0, ROOT + "/tests")

MAX_UPDATES_PER_S = 20.0
MAX_CPU_SHARE = 0.10
MAX_BYTES_RATIO = 20.0
ENVELOPE_BYTES = 540  # header, parent header, HMAC of one message (ipykernel 7, measured)


# --- the reply --------------------------------------------------------------------------


def reply_texts(chunks_per_part: int = 1000, chunk_chars: int = 4) -> tuple[str, str]:
    """A thinking trace and a Markdown answer of `chunks_per_part * chunk_chars` chars."""
    size = chunks_per_part * chunk_chars
    sentence = ("The image shows a chart with two series; the blue one rises after 2019 "
                "while the red one stays flat, so I compare their slopes. ")
    thinking, n = [], 0
    while n < size:
        paragraph = sentence * (1 + n % 3) + "\n\n"
        thinking.append(paragraph)
        n += len(paragraph)
    blocks = [
        "## What the chart shows\n\n",
        "The **blue** series grows by about $x_1 = 12\\%$ a year, the *red* one is flat.\n\n",
        "- first, the trend since 2019\n- then, the outliers in 2021\n- finally, the scale\n\n",
        "```python\nimport numpy as np\nslope = np.polyfit(years, values, 1)[0]\n```\n\n",
        "| year | blue | red |\n| --- | --- | --- |\n| 2019 | 10 | 9 |\n| 2023 | 16 | 9 |\n\n",
        "$$\\frac{16 - 10}{4} = 1.5$$\n\n",
    ]
    answer, n, i = [], 0, 0
    while n < size:
        block = blocks[i % len(blocks)]
        answer.append(block)
        n += len(block)
        i += 1
    return "".join(thinking)[:size], "".join(answer)[:size]


def reply_events(thinking: str, answer: str, chunk_chars: int = 4) -> list:
    """The events qwen_nb's client yields for that reply, chunk by chunk."""
    from fake_server import Reply, completion_chunks

    from qwen_nb._protocol import ChatAccumulator
    from qwen_nb._types import Finished

    accumulator = ChatAccumulator(assume_thinking=True)
    events = []
    for chunk in completion_chunks(Reply(thinking=thinking, answer=answer,
                                         chunk_chars=chunk_chars), "qwen3-vl-32b-thinking"):
        events.extend(accumulator.handle_chunk(chunk))
    events.extend(accumulator.finish())
    events.append(Finished(accumulator.snapshot()))
    return events


# --- counting what goes to the frontend ------------------------------------------------


class Meter:
    """Counts comm and display messages and their bytes while installed."""

    def __init__(self) -> None:
        self.messages = 0
        self.bytes = 0

    def add(self, payload: Any, buffers: Any = None) -> None:
        self.messages += 1
        self.bytes += len(json.dumps(payload, default=str, ensure_ascii=False).encode())
        self.bytes += sum(len(b) for b in buffers or ())

    def reset(self) -> None:
        self.messages = self.bytes = 0


METER = Meter()


def install_meter() -> None:
    import comm
    from IPython.core.interactiveshell import InteractiveShell

    class CountingComm(comm.DummyComm):
        def publish_msg(self, msg_type: str, data: Any = None, metadata: Any = None,
                        buffers: Any = None, **keys: Any) -> None:
            METER.add({"data": data, "metadata": metadata}, buffers)

    comm.create_comm = CountingComm
    shell = InteractiveShell.instance()

    def publish(data: Any, metadata: Any = None, *args: Any, **kwargs: Any) -> None:
        METER.add({"data": data, "metadata": metadata})

    shell.display_pub.publish = publish


# --- the views ---------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class NaiveView:
    """One update per chunk, whole text each time."""

    def __init__(self) -> None:
        import ipywidgets as widgets

        self.thinking_widget = widgets.HTML()
        self.answer_widget = widgets.HTML()
        self.thinking: list[str] = []
        self.answer: list[str] = []
        self.updates = 0

    def update(self, event: Any) -> None:
        from qwen_nb._types import AnswerDelta, ThinkingDelta
        from qwen_nb.render import markdown_html, thinking_html

        if isinstance(event, ThinkingDelta):
            self.thinking.append(event.text)
            self.thinking_widget.value = thinking_html("".join(self.thinking))
            self.updates += 1
        elif isinstance(event, AnswerDelta):
            self.answer.append(event.text)
            self.answer_widget.value = markdown_html("".join(self.answer))
            self.updates += 1


class WholeTextView:
    """Throttled like qwen_nb, but every update re-sends both whole texts and the status."""

    def __init__(self, clock: FakeClock, max_rate: float = 12.0) -> None:
        import ipywidgets as widgets

        from qwen_nb.frontend.live import Throttle

        self.thinking_widget = widgets.HTML()
        self.answer_widget = widgets.HTML()
        self.status = widgets.HTML()
        self.throttle = Throttle(max_rate, clock=clock)
        self.clock = clock
        self.thinking: list[str] = []
        self.answer: list[str] = []
        self.updates = 0

    def update(self, event: Any) -> None:
        from qwen_nb._types import AnswerDelta, ThinkingDelta
        from qwen_nb.render import markdown_html, thinking_html

        if isinstance(event, ThinkingDelta):
            self.thinking.append(event.text)
        elif isinstance(event, AnswerDelta):
            self.answer.append(event.text)
        else:
            return
        if self.throttle.ready():
            self.updates += 1
            self.thinking_widget.value = thinking_html("".join(self.thinking))
            if self.answer:
                self.answer_widget.value = markdown_html("".join(self.answer))
            self.status.value = f"<em>{len(self.answer)} chunks, {self.clock():.1f} s</em>"


def feed(view: Any, events: list, clock: FakeClock, rate: float) -> dict:
    """Feed the events `rate` a second (simulated); CPU spent in the view, bytes sent."""
    from qwen_nb._types import AnswerDelta, ThinkingDelta

    METER.reset()
    clock.now = 0.0
    step = 1.0 / rate
    started = time.process_time()
    for event in events:
        if isinstance(event, (ThinkingDelta, AnswerDelta)):
            clock.now += step
        view.update(event)
    cpu = time.process_time() - started
    duration = clock.now
    return {"updates": view.updates, "updates_per_s": view.updates / duration, "cpu": cpu,
            "cpu_share": cpu / duration, "bytes": METER.bytes, "messages": METER.messages,
            "duration": duration}


def measure(rate: float, runs: int) -> dict:
    from qwen_nb.frontend.live import LiveView

    install_meter()
    thinking, answer = reply_texts()
    events = reply_events(thinking, answer)
    text_size = len((thinking + answer).encode())
    deltas = sum(1 for e in events if e.type in ("thinking", "answer"))
    clock = FakeClock()
    results: dict[str, list[dict]] = {"naive": [], "whole": [], "qwen_nb": []}
    # (The meter's publisher swallows all display output, so nothing is printed.)
    feed(LiveView(clock=clock), events, clock, rate)  # warm-up: imports, caches
    results["naive"].append(feed(NaiveView(), events, clock, rate))  # slow: once
    for _ in range(runs):
        results["whole"].append(feed(WholeTextView(clock), events, clock, rate))
        results["qwen_nb"].append(feed(LiveView(clock=clock), events, clock, rate))
    # The same view at a slower and a 10x faster pace.
    slow = [feed(LiveView(clock=clock), events, clock, rate / 2.5) for _ in range(runs)]
    fast = [feed(LiveView(clock=clock), events, clock, rate * 10) for _ in range(runs)]
    summary = {name: _median_run(runs_) for name, runs_ in results.items()}
    summary["qwen_nb_slow"] = _median_run(slow)
    summary["qwen_nb_fast"] = _median_run(fast)
    return {"views": summary, "text_size": text_size, "deltas": deltas,
            "real": measure_real_stream(thinking, answer, runs)}


def _median_run(runs: list[dict]) -> dict:
    return {key: median([r[key] for r in runs]) for key in runs[0]}


def measure_real_stream(thinking: str, answer: str, runs: int) -> dict:
    """LiveView on a real 2,000-chunk stream from the local server, as fast as it comes."""
    from qwen_nb import api
    from qwen_nb._config import resolve_settings
    from qwen_nb.frontend.live import LiveView

    class Timed:
        """Delegates to the view, adding up the thread CPU spent in it."""

        def __init__(self, view: Any) -> None:
            self.view = view
            self.cpu = 0.0
            self.final_cpu = 0.0  # the Finished event: the static bundle replaces the widgets

        def update(self, event: Any) -> None:
            started = time.thread_time()
            self.view.update(event)
            spent = time.thread_time() - started
            self.cpu += spent
            if event.type == "done":
                self.final_cpu = spent

        def fail(self, error: Any) -> None:
            self.view.fail(error)

    walls, cpus, finals, updates = [], [], [], []
    with local_server({"thinking": thinking, "answer": answer, "chunk_chars": 4}) as base_url:
        settings = resolve_settings(provider="local", base_url=base_url, api_key="bench",
                                    model="qwen3-vl-32b-thinking", env={})
        request = api.build_request(["Describe the chart."], model=settings.model)
        api.run(request, settings, Timed(LiveView()))  # warm-up
        for _ in range(runs):
            timed = Timed(LiveView())
            started = time.perf_counter()
            response = api.run(request, settings, timed)
            walls.append(time.perf_counter() - started)
            cpus.append(timed.cpu)
            finals.append(timed.final_cpu)
            updates.append(timed.view.updates)
            assert response.answer == answer and response.thinking == thinking
    return {"wall": median(walls), "cpu": median(cpus), "final_cpu": median(finals),
            "updates": median(updates)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=50.0,
                        help="chunks a second of the simulated stream (default 50)")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    result = measure(args.rate, args.runs)
    views, size = result["views"], result["text_size"]
    print(f"# a {result['deltas']:,}-chunk reply ({size:,} bytes of text) shown live "
          f"({machine()}), median of {args.runs}")
    rows = []
    labels = {"naive": f"naive: update per chunk ({args.rate:g} chunks/s)",
              "whole": f"throttled 12/s, whole text ({args.rate:g} chunks/s)",
              "qwen_nb": f"qwen_nb LiveView ({args.rate:g} chunks/s)",
              "qwen_nb_slow": f"qwen_nb LiveView ({args.rate / 2.5:g} chunks/s)",
              "qwen_nb_fast": f"qwen_nb LiveView ({args.rate * 10:g} chunks/s)"}
    for name, label in labels.items():
        r = views[name]
        wire = r["bytes"] + ENVELOPE_BYTES * r["messages"]
        rows.append([label, f"{r['updates']:.0f}", f"{r['updates_per_s']:.1f}",
                     f"{r['cpu'] * 1000:.0f}", f"{r['cpu_share'] * 100:.1f}%",
                     f"{r['messages']:.0f}", f"{r['bytes'] / 1024:,.0f} KB",
                     f"{r['bytes'] / size:.1f}x", f"{wire / size:.1f}x"])
    print(table(["view", "updates", "updates/s", "display CPU ms", "CPU / stream time",
                 "messages", "bytes (payload)", "vs text", "with envelopes (est.)"], rows))
    real = result["real"]
    share = real["cpu"] / real["wall"]
    streaming_share = (real["cpu"] - real["final_cpu"]) / real["wall"]
    print(f"\nreal local-server stream at full speed ({result['deltas'] / real['wall']:,.0f} "
          f"chunks/s): {real['wall'] * 1000:.0f} ms wall, {real['cpu'] * 1000:.1f} ms in the "
          f"view ({share:.1%}): {real['final_cpu'] * 1000:.1f} ms for the final static "
          f"bundle, the rest ({streaming_share:.1%}) while streaming; "
          f"{real['updates']:.0f} updates")
    ours = views["qwen_nb"]
    met_rate = all(views[n]["updates_per_s"] <= MAX_UPDATES_PER_S
                   for n in ("qwen_nb", "qwen_nb_slow", "qwen_nb_fast"))
    # Judged at model-like paces; at the local server's full speed the one-off final
    # render dominates a 30-90 ms stream (reported above, not hidden).
    met_cpu = all(views[n]["cpu_share"] < MAX_CPU_SHARE
                  for n in ("qwen_nb", "qwen_nb_slow", "qwen_nb_fast"))
    ratio = ours["bytes"] / size
    wire_ratio = (ours["bytes"] + ENVELOPE_BYTES * ours["messages"]) / size
    met_bytes = ratio <= MAX_BYTES_RATIO
    print(f"[{verdict(met_rate)}] at most {MAX_UPDATES_PER_S:g} updates a second")
    fast = views["qwen_nb_fast"]
    print(f"[{verdict(met_cpu)}] display CPU under {MAX_CPU_SHARE:.0%} of the stream's wall "
          f"time at {args.rate / 2.5:g}-{args.rate * 10:g} chunks/s (at most "
          f"{max(ours['cpu_share'], fast['cpu_share']):.1%}; {share:.1%} at the local "
          f"server's full speed, of which {streaming_share:.1%} while streaming)")
    print(f"[{verdict(met_bytes)}] bytes at most {MAX_BYTES_RATIO:g}x the final text "
          f"({ratio:.1f}x payload, {wire_ratio:.1f}x with estimated envelopes)")
    naive = views["naive"]
    print("RESULT " + json.dumps({
        "row": "UI updates for a 2,000-chunk reply",
        "measured": f"{ours['updates_per_s']:.1f} updates/s; display CPU "
                    f"{ours['cpu_share']:.1%} of a {ours['duration']:.0f} s stream, "
                    f"{fast['cpu_share']:.1%} of a {fast['duration']:.0f} s one, "
                    f"{share:.0%} of a {real['wall'] * 1000:.0f} ms local one "
                    f"({real['final_cpu'] * 1000:.1f} ms final render)",
        "baseline": f"update per chunk: {naive['cpu'] * 1000:.0f} ms CPU, "
                    f"{naive['updates_per_s']:.0f} updates/s",
        "goal": "<= ~20 updates/s; display CPU < 10% of stream time",
        "met": met_rate and met_cpu}))
    print("RESULT " + json.dumps({
        "row": "bytes to the frontend, 2,000-chunk reply",
        "measured": f"{ratio:.1f}x final text ({wire_ratio:.1f}x with envelopes)",
        "baseline": f"update per chunk {naive['bytes'] / size:.0f}x; throttled whole text "
                    f"{views['whole']['bytes'] / size:.0f}x",
        "goal": f"<= {MAX_BYTES_RATIO:g}x the final text", "met": met_bytes}))


if __name__ == "__main__":
    main()
