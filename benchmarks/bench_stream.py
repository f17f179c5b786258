"""Benchmark: consuming a 2,000-chunk stream, qwen_nb's client vs a plain httpx loop.

The local server (tests/fake_server.py, in a subprocess) streams 1,000 reasoning chunks
and 1,000 answer chunks. The baseline is the least a client can do: `iter_lines`,
`json.loads`, append the delta text. qwen_nb's figure is `api.open_stream(...)`
iterated to the end (SSE decoding, accumulation, typed events, the final response).
Runs alternate between the two so both see the same machine load.

    python benchmarks/bench_stream.py [--runs 41] [--profile]
"""

from __future__ import annotations

import argparse
import json

from _bench import local_server, machine, median, report, table, timed_runs

GOAL_RATIO = 1.15
CHUNKS_PER_PART = 1000
CHUNK_CHARS = 4
ANCHORS = (("openai SDK (issue anchor)", 174.0),
           ("jupyter-ai %%ai streaming (issue anchor)", 211.0))


def reply_spec() -> dict:
    text = "abcd efgh " * (CHUNKS_PER_PART * CHUNK_CHARS // 10)
    return {"thinking": text, "answer": text, "chunk_chars": CHUNK_CHARS}


def plain_httpx(http, base_url: str, payload: dict) -> tuple[str, str]:
    thinking: list[str] = []
    answer: list[str] = []
    with http.stream("POST", base_url + "/chat/completions", json=payload,
                     headers={"Authorization": "Bearer bench"}) as response:
        for line in response.iter_lines():
            if not line.startswith("data: "):
                continue
            data = line[6:]
            if data == "[DONE]":
                break
            chunk = json.loads(data)
            for choice in chunk.get("choices") or ():
                delta = choice.get("delta") or {}
                if delta.get("reasoning_content"):
                    thinking.append(delta["reasoning_content"])
                if delta.get("content"):
                    answer.append(delta["content"])
    return "".join(thinking), "".join(answer)


def qwen_nb_client(request, settings) -> tuple[str, str]:
    from qwen_nb import api

    response = api.run(request, settings)
    return response.thinking, response.answer


def measure(runs: int, profile: bool = False) -> dict:
    import httpx

    from qwen_nb import api
    from qwen_nb._config import resolve_settings
    from qwen_nb.client import shared_http

    spec = reply_spec()
    with local_server(spec) as base_url:
        settings = resolve_settings(provider="local", base_url=base_url, api_key="bench",
                                    model="qwen3-vl-32b-thinking", env={})
        request = api.build_request(["Describe the image."], model=settings.model)
        payload = {"model": settings.model, "stream": True,
                   "stream_options": {"include_usage": True},
                   "messages": [{"role": "user", "content": "Describe the image."}]}
        http = httpx.Client()
        shared_http()  # both sides start with a warm connection pool
        for _ in range(3):  # warm-up: connections, imports, caches
            expected = plain_httpx(http, base_url, payload)
            assert qwen_nb_client(request, settings) == expected
        assert expected == (spec["thinking"], spec["answer"])
        timings = timed_runs({"httpx": lambda: plain_httpx(http, base_url, payload),
                              "qwen_nb": lambda: qwen_nb_client(request, settings)}, runs)
        if profile:
            import cProfile
            import pstats

            profiler = cProfile.Profile()
            profiler.enable()
            for _ in range(5):
                qwen_nb_client(request, settings)
            profiler.disable()
            pstats.Stats(profiler).sort_stats("tottime").print_stats(18)
        http.close()
    # The ratio of medians, plus the median of per-pair ratios (robust to slow drifts).
    (httpx_wall, httpx_cpu), (qwen_wall, qwen_cpu) = timings["httpx"], timings["qwen_nb"]
    pairs = [q / h for q, h in zip(qwen_wall, httpx_wall, strict=True)]
    cpu_pairs = [q / h for q, h in zip(qwen_cpu, httpx_cpu, strict=True)]
    return {"httpx_ms": median(httpx_wall) * 1000, "qwen_ms": median(qwen_wall) * 1000,
            "httpx_cpu_ms": median(httpx_cpu) * 1000, "qwen_cpu_ms": median(qwen_cpu) * 1000,
            "pair_ratio": median(pairs), "cpu_pair_ratio": median(cpu_pairs), "runs": runs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=41)
    parser.add_argument("--profile", action="store_true", help="cProfile qwen_nb's side")
    args = parser.parse_args()
    print(f"# consume a {2 * CHUNKS_PER_PART:,}-chunk stream ({machine()}), "
          f"median of {args.runs}, interleaved")
    result = measure(args.runs, args.profile)
    ratio = result["qwen_ms"] / result["httpx_ms"]
    cpu_ratio = result["qwen_cpu_ms"] / result["httpx_cpu_ms"]
    rows = [["plain httpx loop (iter_lines + json.loads)", f"{result['httpx_ms']:.1f}",
             "1.00x", f"{result['httpx_cpu_ms']:.1f}"],
            ["qwen_nb (api.open_stream -> events -> response)", f"{result['qwen_ms']:.1f}",
             f"{ratio:.2f}x (paired median {result['pair_ratio']:.2f}x)",
             f"{result['qwen_cpu_ms']:.1f} ({cpu_ratio:.2f}x, paired median "
             f"{result['cpu_pair_ratio']:.2f}x)"]]
    rows += [[name, f"{ms:.0f}", f"{ms / result['httpx_ms']:.1f}x (other run)", "-"]
             for name, ms in ANCHORS]
    print(table(["client", "median wall ms", "vs plain httpx", "client CPU ms"], rows))
    report(f"qwen_nb at or under {GOAL_RATIO}x the plain httpx loop (measured {ratio:.2f}x)",
           ratio <= GOAL_RATIO, row="consume a 2,000-chunk stream",
           measured=(f"{result['qwen_ms']:.0f} ms = {ratio:.2f}x wall (paired median "
                     f"{result['pair_ratio']:.2f}x); client CPU {result['qwen_cpu_ms']:.1f} ms"
                     f" = {cpu_ratio:.2f}x (paired median {result['cpu_pair_ratio']:.2f}x)"),
           baseline=(f"plain httpx loop {result['httpx_ms']:.0f} ms wall, "
                     f"{result['httpx_cpu_ms']:.1f} ms CPU (same run)"),
           goal=f"<= {GOAL_RATIO}x plain httpx")


if __name__ == "__main__":
    main()
