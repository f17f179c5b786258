"""What a Dask worker runs in tests/test_dask.py: qwen_nb.batch over one partition.

A module of its own (not the test file) so workers import only this and qwen_nb. The key
is never an argument: each worker reads QWEN_NB_API_KEY from its own environment.
"""

from __future__ import annotations

from typing import Any


def answer_partition(frame: Any, prompt: str, concurrency: int, lease: str | None) -> Any:
    """Answer every image in this partition; at most `concurrency` requests at once here,
    and, with `lease`, only while holding one lease of the cluster-wide Semaphore."""
    import contextlib

    import qwen_nb

    guard = contextlib.nullcontext()
    if lease is not None:
        from distributed import Semaphore

        guard = Semaphore(name=lease)  # max_leases was fixed when the test created it
    from distributed import get_worker

    with guard:
        result = qwen_nb.batch(prompt, images=frame["path"], concurrency=concurrency,
                               progress=False)
    return frame.assign(
        answer=result.answers,
        status=[item.status for item in result],
        worker=get_worker().address,
    )
