"""Speed goals for the offline simulator and record/replay (run: python benchmarks/bench_cache.py).

Goals: the simulator streams a reply in well under a second; a replay of a long recording
(30 s, 2,000 chunks) takes at most ~0.5 s; computing a cache key for a request with a
large image costs far less than a millisecond per call beyond hashing the text (images are
keyed by their precomputed digest, never re-encoded).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PIL import Image  # noqa: E402

from qwen_nb import api  # noqa: E402
from qwen_nb._config import resolve_settings  # noqa: E402
from qwen_nb._types import QwenResponse, Usage  # noqa: E402
from qwen_nb.cache import Cache, ReplayStream, Segment, cache_key, coalesce, make_entry  # noqa: E402
from qwen_nb.media.images import prepare_images  # noqa: E402


def timed(function, repeat: int = 5) -> float:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main() -> None:
    settings = resolve_settings(provider="offline", env={})
    image = Image.effect_noise((1600, 1200), 60).convert("RGB")
    parts = [*prepare_images(image, label="noise"), "Describe this image in detail."]
    request = api.build_request(parts, model=settings.model)

    offline = timed(lambda: list(api.open_stream(request, settings)))
    print(f"offline simulator, whole reply:        {offline * 1000:7.1f} ms  (goal < 1000)")

    key = timed(lambda: cache_key(request, settings.base_url), repeat=200)
    print(f"cache key, 1600x1200 image request:    {key * 1e6:7.1f} us")

    thinking, answer = "t" * 6000, "a" * 4000
    segments = [Segment(0.015, "thinking" if i < 1200 else "answer",
                        (thinking if i < 1200 else answer)[:5]) for i in range(2000)]
    response = QwenResponse(answer="".join(s.text for s in segments if s.kind == "answer"),
                            thinking="".join(s.text for s in segments if s.kind == "thinking"),
                            usage=Usage(10, 20, 5, 30), finish_reason="stop", model="m")
    with tempfile.TemporaryDirectory() as folder:
        cache = Cache(folder)
        entry = make_entry(request, settings.base_url, cache_key(request, settings.base_url),
                           response, coalesce(segments))
        path = cache.save(request, entry)
        print(f"entry for a 2,000-chunk 30 s reply:    {path.stat().st_size / 1024:7.1f} KiB, "
              f"{len(entry.data['timing'])} timing segments")
        loaded = cache.load(request, entry.key)
        assert loaded is not None
        replay = timed(lambda: list(ReplayStream(request, loaded)), repeat=3)
        print(f"replay of that 30 s recording:         {replay * 1000:7.1f} ms  (goal <= ~500)")


if __name__ == "__main__":
    main()
