"""Benchmark: one very long SSE line, 8, 16 and 32 MB, fed in 64 KB reads as httpx reads.

The decoder keeps an unfinished line as a list of pieces and searches only new data for a
line end, so the time is linear in the line length (goal: 32 MB / 8 MB <= 5). The cap on
one line is raised for the measurement; with the default 16 MB cap, a 32 MB line is refused
after 16 MB instead of being decoded whole. The baseline in the same run is the decoder
qwen_nb had before (`tail + new` on every read: quadratic), on the 8 MB line only.

    python benchmarks/bench_sse_lines.py [--runs 5]
"""

from __future__ import annotations

import argparse
import codecs

from _bench import machine, report, table, timed

GOAL_RATIO = 5.0
READ = 65536
SIZES_MB = (8, 16, 32)


def reads(megabytes: int) -> list[bytes]:
    body = b"data: " + b"x" * (megabytes * 1_000_000) + b"\n\n"
    return [body[i:i + READ] for i in range(0, len(body), READ)]


def decode_new(pieces: list[bytes], max_line: int) -> int:
    from qwen_nb._sse import SSEDecoder

    decoder = SSEDecoder(max_line=max_line)
    events = []
    for piece in pieces:
        events.extend(decoder.decode(piece))
    return len(events[0])


def decode_quadratic(pieces: list[bytes]) -> int:
    """The old decoder's inner loop: the unfinished line joined with every new read."""
    utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
    tail = ""
    for piece in pieces:
        text = tail + utf8.decode(piece)
        lines = text.split("\n")
        tail = lines.pop()
    return len(text)


def refuse_at_default_cap(pieces: list[bytes]) -> None:
    from qwen_nb._sse import LineTooLongError, SSEDecoder

    decoder = SSEDecoder()
    try:
        for piece in pieces:
            decoder.decode(piece)
    except LineTooLongError:
        return
    raise AssertionError("a 32 MB line passed the default 16 MB cap")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(f"# one SSE line of 8 / 16 / 32 MB in 64 KB reads ({machine()}), median of "
          f"{args.runs}")
    decode_new(reads(8), max_line=10**9)  # warm-up: imports, the allocator's first arenas
    results = {}
    for size in SIZES_MB:
        pieces = reads(size)
        results[size] = timed(lambda p=pieces: decode_new(p, max_line=10**9), args.runs)
    big = reads(32)
    refused = timed(lambda: refuse_at_default_cap(big), args.runs)
    old = timed(lambda: decode_quadratic(reads(8)), 1)
    cpu8 = results[8][1]
    rows = [[f"{size} MB line", f"{results[size][0] * 1000:.0f}",
             f"{results[size][1] * 1000:.0f}", f"{results[size][1] / cpu8:.2f}x"]
            for size in SIZES_MB]
    rows.append(["32 MB line, default 16 MB cap (refused)", f"{refused[0] * 1000:.0f}",
                 f"{refused[1] * 1000:.0f}", "-"])
    rows.append(["8 MB line, previous decoder (tail + new)", f"{old[0] * 1000:.0f}",
                 f"{old[1] * 1000:.0f}", f"{old[1] / cpu8:.1f}x the new one"])
    print(table(["input", "median wall ms", "median CPU ms", "CPU vs 8 MB"], rows))
    ratio = results[32][1] / cpu8
    report(f"32 MB / 8 MB CPU time ratio at or under {GOAL_RATIO:g} (measured {ratio:.2f})",
           ratio <= GOAL_RATIO, row="one 32 MB SSE line vs one 8 MB line",
           measured=f"CPU {results[32][1] * 1000:.0f} ms / {cpu8 * 1000:.0f} ms = {ratio:.2f}x",
           baseline=f"previous decoder: 8 MB line {old[1] * 1000:.0f} ms CPU (same run)",
           goal=f"<= {GOAL_RATIO:g}x (linear)")


if __name__ == "__main__":
    main()
