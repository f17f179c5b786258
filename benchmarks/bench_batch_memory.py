"""Benchmark: peak memory of a batch of 200 12-MP photos sent to the local server.

    python benchmarks/bench_batch_memory.py [--images 200] [--concurrency 4]

Each contender runs in a fresh process (so peaks do not mix), measured two ways: the
growth of the process's peak resident size (VmHWM: everything, Pillow's C buffers too)
and tracemalloc's peak (Python objects only). All prepare images with qwen_nb's own
`prepare_images`, so only the orchestration differs:

- qwen_nb.batch(concurrency=4);
- asyncio + httpx, each image prepared in its own task (the issue's baseline: a task
  prepares its image as soon as it starts, then waits for one of 4 sending slots);
- asyncio + httpx, prepared only once a slot is free (the leanest hand-written form).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

from _bench import local_server, machine, table, verdict

HERE = os.path.dirname(os.path.abspath(__file__))

_COMMON = """
import json, os, sys, time, tracemalloc
sys.path.insert(0, {root!r})
from qwen_nb.media.images import prepare_images
paths = json.loads({paths!r})
prepare_images(paths[0], label="warm-up")  # imports and Pillow's first buffers

def high_water_mb():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024

before = high_water_mb()
tracemalloc.start()
started = time.perf_counter()
"""

_REPORT = """
elapsed = time.perf_counter() - started
traced = tracemalloc.get_traced_memory()[1] / 1e6
print(json.dumps({"rss": high_water_mb() - before, "traced": traced, "seconds": elapsed,
                  "answers": answers}))
"""

QWEN_NB = """
import qwen_nb
result = qwen_nb.batch("Describe", images=paths, concurrency={concurrency}, progress=False)
answers = sum(item.ok for item in result)
"""

ASYNCIO = """
import asyncio, httpx

async def main():
    slots = asyncio.Semaphore({concurrency})
    headers = {{"Authorization": "Bearer bench"}}
    async with httpx.AsyncClient(base_url={base_url!r}, timeout=120) as client:
        async def one(path):
            if {lean}:
                async with slots:
                    image = await asyncio.to_thread(prepare_images, path, label=path)
                    return await send(client, image[0].url)
            image = prepare_images(path, label=path)  # in its own task, as it starts
            async with slots:
                return await send(client, image[0].url)

        async def send(client, url):
            body = {{"model": "qwen3-vl-32b-thinking", "stream": False, "messages": [
                {{"role": "user", "content": [{{"type": "image_url", "image_url": {{"url": url}}}},
                                              {{"type": "text", "text": "Describe"}}]}}]}}
            response = await client.post("/chat/completions", json=body, headers=headers)
            response.raise_for_status()
            return response.json()["choices"][0]["message"]["content"]

        return await asyncio.gather(*(one(p) for p in paths))

answers = sum(bool(a) for a in asyncio.run(main()))
"""


def run_child(body: str, paths: list[str], base_url: str) -> dict:
    code = (_COMMON.format(root=os.path.dirname(HERE), paths=json.dumps(paths)) + body
            + _REPORT)
    env = {**os.environ, "QWEN_NB_BASE_URL": base_url, "QWEN_NB_API_KEY": "bench",
           "QWEN_NB_MODEL": "qwen3-vl-32b-thinking"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, timeout=1800)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    sys.path.insert(0, HERE)
    from bench_images import make_photo

    photo = make_photo()
    print(f"# {args.images} x 12-MP JPEG ({len(photo) / 1e6:.1f} MB each) to the local server, "
          f"concurrency {args.concurrency} ({machine()})")
    with tempfile.TemporaryDirectory() as folder, local_server({"answer": "A photo."}) as url:
        paths = []
        for n in range(args.images):
            path = os.path.join(folder, f"photo{n:04d}.jpg")
            with open(path, "wb") as handle:
                handle.write(photo)
            paths.append(path)
        contenders = {
            "qwen_nb.batch": QWEN_NB.format(concurrency=args.concurrency),
            "asyncio + httpx, prepared in each task": ASYNCIO.format(
                concurrency=args.concurrency, base_url=url, lean=False),
            "asyncio + httpx, prepared when a slot frees": ASYNCIO.format(
                concurrency=args.concurrency, base_url=url, lean=True),
        }
        measured = {name: run_child(body, paths, url) for name, body in contenders.items()}
    rows = []
    for name, m in measured.items():
        assert m["answers"] == args.images, (name, m)
        rows.append([name, f"{m['rss']:.0f}", f"{m['traced']:.0f}", f"{m['seconds']:.1f}"])
    print(table(["how", "peak RSS growth MB", "tracemalloc peak MB", "seconds"], rows))
    ours = measured["qwen_nb.batch"]
    baseline = measured["asyncio + httpx, prepared in each task"]
    lean = measured["asyncio + httpx, prepared when a slot frees"]
    met = ours["rss"] <= baseline["rss"]
    print(f"[{verdict(met)}] qwen_nb.batch peak RSS {ours['rss']:.0f} MB <= asyncio baseline "
          f"{baseline['rss']:.0f} MB")
    print("RESULT " + json.dumps({
        "row": f"batch of {args.images} 12-MP photos: peak memory",
        "measured": f"+{ours['rss']:.0f} MB RSS, {ours['traced']:.0f} MB traced, "
                    f"{ours['seconds']:.0f} s",
        "baseline": f"asyncio+httpx per-task prep +{baseline['rss']:.0f} MB RSS, "
                    f"{baseline['traced']:.0f} MB traced; prep-in-slot +{lean['rss']:.0f} MB",
        "goal": "<= the asyncio + httpx baseline", "met": met}))


if __name__ == "__main__":
    main()
