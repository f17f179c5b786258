"""Many requests at once: `qwen_nb.batch(prompt, images=[...])` with bounded concurrency.

Worker threads share the one request path (`api.open_stream` / `api.run`, so the cache and
the offline simulator work as for `ask()`), and one rate-limit backoff: a 429 pauses every
worker once, for as long as the server's Retry-After says. Results come back in input
order; a failed item keeps its error and the rest go on. An interrupt (Ctrl-C, the
notebook's stop button) stops promptly and returns what finished.
"""

from __future__ import annotations

import dataclasses
import json
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, overload

from ._batch_inputs import Job, plan_jobs
from ._errors import InputError, Interrupted, QwenError
from ._types import QwenResponse

__all__ = ["BatchItem", "BatchResult", "BatchStream", "SharedBackoff", "batch"]


class SharedBackoff:
    """One pause for every worker: `pause(s)` on a 429, `wait(stop)` before each attempt."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._until = 0.0
        self.pauses = 0

    def pause(self, seconds: float) -> None:
        with self._lock:
            until = time.monotonic() + max(0.0, seconds)
            if until > self._until:
                self._until = until
                self.pauses += 1

    @property
    def remaining(self) -> float:
        with self._lock:
            return max(0.0, self._until - time.monotonic())

    def wait(self, stop: threading.Event) -> bool:
        """Block while a pause lasts; False if `stop` was set meanwhile."""
        while True:
            remaining = self.remaining
            if remaining <= 0:
                return not stop.is_set()
            if stop.wait(remaining):
                return False


@dataclass(frozen=True)
class BatchItem:
    """One input of a batch and how it went: `response` (possibly partial) and/or `error`.

    `status` is "ok", "failed", "interrupted" or "not run" (the batch stopped first).
    """

    index: int
    prompt: str
    image_names: tuple[str, ...] = ()
    response: QwenResponse | None = None
    error: QwenError | None = None
    status: str = "not run"

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def answer(self) -> str:
        return self.response.answer if self.response is not None else ""

    @property
    def thinking(self) -> str:
        return self.response.thinking if self.response is not None else ""

    def row(self) -> dict[str, Any]:
        """This item as one table row (to_pandas, to_jsonl, to_parquet)."""
        response = self.response
        usage = response.usage if response is not None else None
        return {
            "prompt": self.prompt,
            "image": ", ".join(self.image_names),
            "answer": self.answer,
            "thinking": self.thinking,
            "prompt_tokens": usage.prompt_tokens if usage else None,
            "completion_tokens": usage.completion_tokens if usage else None,
            "reasoning_tokens": usage.reasoning_tokens if usage else None,
            "total_tokens": usage.total_tokens if usage else None,
            "elapsed": response.elapsed if response is not None else None,
            "status": self.status,
            "error": self.error.message if self.error is not None else None,
            **_vision_columns(response),
        }

    def __repr__(self) -> str:
        images = f", images={list(self.image_names)!r}" if self.image_names else ""
        outcome = (
            f"answer={_clip(self.answer)!r}"
            if self.ok
            else f"error={_clip(self.error.message) if self.error else None!r}"
        )
        return (
            f"BatchItem({self.index}, {self.status}, prompt={_clip(self.prompt)!r}{images}, "
            f"{outcome})"
        )


class BatchResult(Sequence[BatchItem]):
    """The items in input order, plus how the batch went. `.to_pandas()` for a table."""

    def __init__(
        self,
        items: Sequence[BatchItem],
        *,
        elapsed: float,
        interrupted: bool,
        rate_limit_pauses: int = 0,
    ) -> None:
        self.items = list(items)
        self.elapsed = elapsed
        self.interrupted = interrupted
        self.rate_limit_pauses = rate_limit_pauses

    @overload
    def __getitem__(self, index: int) -> BatchItem: ...
    @overload
    def __getitem__(self, index: slice) -> list[BatchItem]: ...

    def __getitem__(self, index: int | slice) -> BatchItem | list[BatchItem]:
        return self.items[index]

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[BatchItem]:
        return iter(self.items)

    @property
    def responses(self) -> list[QwenResponse | None]:
        return [item.response if item.ok else None for item in self.items]

    @property
    def answers(self) -> list[str | None]:
        return [item.answer if item.ok else None for item in self.items]

    @property
    def failed(self) -> list[BatchItem]:
        return [item for item in self.items if item.status in ("failed", "interrupted")]

    @property
    def tokens(self) -> int:
        return sum(_tokens(item.response) for item in self.items)

    def counts(self) -> dict[str, int]:
        counts = {"ok": 0, "failed": 0, "interrupted": 0, "not run": 0}
        for item in self.items:
            counts[item.status] += 1
        return counts

    def summary(self) -> str:
        counts = self.counts()
        parts = [f"{counts['ok']} ok", f"{counts['failed']} failed"]
        parts += [f"{counts[k]} {k}" for k in ("interrupted", "not run") if counts[k]]
        stopped = ", interrupted" if self.interrupted else ""
        return (
            f"{len(self)} items: {', '.join(parts)}; {self.elapsed:.1f} s, "
            f"{self.tokens:,} tokens{stopped}"
        )

    def __repr__(self) -> str:
        return f"BatchResult({self.summary()})"

    def to_pandas(self) -> Any:
        """One row per item: prompt, image, answer, thinking, tokens, status, error."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError(
                "BatchResult.to_pandas() needs pandas, which qwen_nb does not "
                "install: run `pip install pandas` (or %pip install pandas in "
                "the notebook)."
            ) from None
        rows = [item.row() for item in self.items]
        columns = list(dict.fromkeys(name for row in rows for name in row))
        return pd.DataFrame(rows, columns=columns or None)

    def to_jsonl(self, path: str | os.PathLike[str]) -> int:
        """Write one JSON object per item (its index first) to `path`; returns the count."""
        return write_jsonl(self.items, path)

    def to_parquet(self, path: str | os.PathLike[str]) -> None:
        """Write the table of `to_pandas()` (plus the index) as Parquet; needs pyarrow."""
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise ImportError(
                "BatchResult.to_parquet() needs pyarrow, which qwen_nb does not install: run "
                "`pip install pyarrow` (or %pip install pyarrow in the notebook)."
            ) from None
        rows = [{"index": item.index, **item.row()} for item in self.items]
        pq.write_table(pa.Table.from_pylist(rows), os.fspath(path))


_BASE_COLUMNS = ("prompt", "image", "answer", "thinking", "prompt_tokens", "completion_tokens",
                 "reasoning_tokens", "total_tokens", "elapsed", "status", "error")


def _vision_columns(response: QwenResponse | None) -> dict[str, Any]:
    """A boxes column for grounding, and a column per field of a JSON answer."""
    if response is None:
        return {}
    columns: dict[str, Any] = {}
    if response.reading.ground is not None or response.boxes:
        columns["boxes"] = response.boxes.to_list()
    if response.reading.json:
        data = response.data
        if hasattr(data, "model_dump"):
            data = data.model_dump()
        fields = dict.fromkeys(_schema_fields(response.reading.schema))
        if isinstance(data, dict):
            fields.update(data)
        elif not fields:
            fields = {"data": data}
        for name, value in fields.items():
            columns[f"data.{name}" if name in _BASE_COLUMNS else name] = value
    return columns


def _schema_fields(schema: Any) -> list[str]:
    """The top-level field names of a pydantic model or a JSON schema (a column each)."""
    if schema is None:
        return []
    if hasattr(schema, "model_fields"):
        return list(schema.model_fields)
    properties = schema.get("properties") if isinstance(schema, dict) else None
    return list(properties) if isinstance(properties, dict) else []


class BatchStream(Iterator[BatchItem]):
    """`batch(..., ordered=False)`: items in the order they finish, none kept in memory.

    Iterate it, or `.to_jsonl(path)` to write each item as it arrives. `close()` (or
    leaving a `with` block, or an interrupt) stops the batch; what finished is kept.
    """

    def __init__(self, items: Iterator[BatchItem]) -> None:
        self._items = items

    def __next__(self) -> BatchItem:
        return next(self._items)

    def to_jsonl(self, path: str | os.PathLike[str]) -> int:
        """Write one JSON line per item as it finishes; returns how many were written."""
        try:
            return write_jsonl(self, path)
        finally:
            self.close()

    def close(self) -> None:
        close = getattr(self._items, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> BatchStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_jsonl(items: Iterable[BatchItem], path: str | os.PathLike[str]) -> int:
    """One JSON line per item, flushed as it comes, so an interrupted run keeps its lines."""
    count = 0
    with open(path, "w", encoding="utf-8") as handle:
        for item in items:
            handle.write(json.dumps({"index": item.index, **item.row()}, ensure_ascii=False,
                                    default=str))
            handle.write("\n")
            handle.flush()
            count += 1
    return count


def batch(
    prompts: Any,
    images: Any = None,
    *,
    videos: Sequence[Any] | None = None,
    concurrency: int = 4,
    progress: bool = True,
    ordered: bool = True,
    cache: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    **options: Any,
) -> BatchResult | BatchStream:
    """Run many requests concurrently; results in input order (or as they finish).

    - `batch("Describe this.", images=[a, b, c])`: one request per image (an element may
      itself be a list of images for one request); `images=` also takes a folder, a glob
      (`"photos/*.jpg"`), a pandas Series (`df["path"]`) or any iterable, read lazily;
    - `batch(["q1", "q2"])`, or `batch(["q1", "q2"], images=[a, b])` paired one to one;
    - `batch([("q1", a), ("q2", [b, c])])`: pairs of prompt and image(s);
    - `batch("What happens?", videos=[clip1, clip2])`: one request per video (as `video=`
      of `ask()`), also beside images= or a list of prompts, one entry per request.

    `options` are those of `ask()` (model, system, temperature, max_tokens, ...).
    `concurrency` requests run at once (default 4). A failed item holds its error; an
    interrupt returns what finished. Cached replies are served from the cache (`cache`,
    `cache_dir` as for `ask()`). `ordered=False` returns an iterator of BatchItems in the
    order they finish, keeping none of them: for writing thousands of results to a file.
    """
    from .cache import resolve_mode

    if not isinstance(concurrency, int) or isinstance(concurrency, bool) or concurrency < 1:
        raise InputError(
            f"concurrency = {concurrency!r} is not allowed: use a whole number of 1 or more."
        )
    if videos is not None:
        if isinstance(videos, (str, bytes)) or not isinstance(videos, (list, tuple)):
            raise InputError("videos= takes a list (one entry per request), e.g. "
                             "batch(prompt, videos=[clip1, clip2]).")
        if isinstance(prompts, str) and images is None:
            images = [None] * len(videos)  # one request per video
    jobs, total = plan_jobs(prompts, images)
    if videos is not None:
        if total != len(videos):
            raise InputError(f"{total if total is not None else 'An unknown number of'} "
                             f"requests but {len(videos)} videos: give one video (or None) "
                             "per request.")
        jobs = (dataclasses.replace(job, video=videos[job.index]) for job in jobs)
    from . import api

    # The keywords of ask(), split and checked before anything is sent.
    settings, request_options, generation = api.split_keywords(dict(options))
    api.vision_plan(request_options, 1)  # a bad ground=/schema=/doc= fails here, not per item
    if resolve_mode(cache) in ("off", "record"):
        # One clear error, not one per item. With a cache that can replay, recorded items
        # need no key, so a missing one fails only the items that are not recorded.
        settings.require_key()
    stream_kwargs: dict[str, Any] = {}
    if cache is not None:
        stream_kwargs["cache"] = cache
    if cache_dir is not None:
        stream_kwargs["cache_dir"] = cache_dir
    runner = _Runner(jobs, total, concurrency, progress,
                     _Sender(settings, request_options, generation, stream_kwargs))
    if not ordered:
        return BatchStream(runner.as_finished())
    return runner.collect()


# Items whose images are being decoded and encoded at once, across all batches.
_PREPARING = threading.BoundedSemaphore(max(1, os.cpu_count() or 1))


@dataclass(frozen=True)
class _Sender:
    """How one job becomes a request on the shared path, and a lean result."""

    settings: Any
    request_options: dict[str, Any]
    generation: Any
    stream_kwargs: dict[str, Any]

    def send(self, job: Job, started: Callable[[Any], None]) -> BatchItem:
        from . import api

        try:
            # Prepared here, by the worker that sends them, and dropped once the request is
            # out. Decoding is CPU work: more at once than cores only holds more pixels.
            with _PREPARING:
                prepared = api.prepare_images(
                    job.values,
                    max_pixels=self.request_options.get("max_pixels"),
                    inline_urls=self.request_options.get("inline_urls", False),
                    settings=self.settings,
                    labels=job.names,
                )
                video_list = api.video_values(job.video)
                videos = api.prepare_videos(
                    video_list,
                    settings=self.settings,
                    video_as=self.request_options.get("video_as"),
                    max_video_tokens=self.request_options.get("max_video_tokens"),
                    labels=[f"videos[{job.index}]" + (f"[{k}]" if len(video_list) > 1 else "")
                            for k in range(len(video_list))],
                )
            plan = api.vision_plan(self.request_options, len(prepared))  # ground=, schema=...
            parts, item_options = api.with_vision(
                [*prepared, *videos, job.prompt], self.generation, plan)
            request = api.build_request(
                parts,
                model=self.settings.model,
                system=self.request_options.get("system"),
                history=self.request_options.get("history", ()),
                options=item_options,
                reading=plan.reading,
            )
            del prepared, videos
            stream = api.open_stream(request, self.settings, **self.stream_kwargs)
            started(stream)
            response = api.run(request, self.settings, stream=stream)
            return BatchItem(job.index, job.prompt, job.names, _lean(response), None, "ok")
        except QwenError as error:
            status = "interrupted" if isinstance(error, Interrupted) else "failed"
            error.response = _lean(error.response)
            _drop_frames(error)
            return BatchItem(job.index, job.prompt, job.names, error.response, error, status)
        except Exception as error:  # a bug or an odd input must not sink the other items
            wrapped = QwenError(f"{type(error).__name__}: {error}")
            return BatchItem(job.index, job.prompt, job.names, None, wrapped, "failed")


def _lean(response: QwenResponse | None) -> QwenResponse | None:
    """The response without its images' data URLs (megabytes each): digests, sizes stay."""
    if response is None or not (response.images or response.videos):
        return response
    return response.replace(
        images=tuple(image.without_payload() for image in response.images),
        videos=tuple(video.without_payload() for video in response.videos),
    )


def _drop_frames(error: BaseException) -> None:
    """A kept error must not keep its traceback's frames: they hold the request's images."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        current.__traceback__ = None
        current = current.__cause__ or current.__context__


_FINISHED = object()


class _Runner:
    """Worker threads pulling jobs from one (possibly lazy) iterator, sharing one backoff.

    Jobs are read only when a worker is free, so the lookahead is `concurrency` items.
    Finished items go through a queue to the caller's thread, which keeps Ctrl-C working.
    """

    def __init__(self, jobs: Iterator[Job], total: int | None, concurrency: int,
                 progress: bool, sender: _Sender) -> None:
        self.jobs = jobs
        self.total = total
        self.concurrency = concurrency if total is None else min(concurrency, total)
        self.progress = progress
        self.sender = sender
        self.backoff = SharedBackoff()
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.active: dict[int, Any] = {}
        # Bounded: a slow reader of `ordered=False` holds the workers back instead of
        # letting finished items pile up (at most this many wait, plus one per worker).
        self.finished: queue.Queue[Any] = queue.Queue(maxsize=2 * max(1, self.concurrency))
        self.running = 0
        self.taken = 0  # jobs read from the input so far
        # Ordered results are filed by the workers: an interrupt landing in the main thread
        # between taking an item off a queue and storing it would lose it.
        self.keep = False
        self.kept: dict[int, BatchItem] = {}
        self.input_failed = False
        self.interrupted = False
        self.started = 0.0
        self.view: _Progress = _Progress(total)

    def collect(self) -> BatchResult:
        """Everything, in input order; on an interrupt, what finished plus "not run" items."""
        self.keep = True
        for _ in self._run():
            pass  # with `keep`, workers file their items in self.kept themselves
        done = self.kept
        if self.interrupted and self.total is not None and not self.input_failed:
            for job in self.jobs:  # names only: nothing is opened or sent
                done[job.index] = BatchItem(job.index, job.prompt, job.names)
        items = [done[index] for index in sorted(done)]
        result = BatchResult(items, elapsed=time.monotonic() - self.started,
                             interrupted=self.interrupted,
                             rate_limit_pauses=self.backoff.pauses)
        self.view.close(result)
        return result

    def as_finished(self) -> Iterator[BatchItem]:
        """Items as they finish; closing the iterator early stops the batch."""
        try:
            yield from self._run()
        finally:
            self._halt()
            self.view.close(_Summary(self.view.line(), self.interrupted))

    def _run(self) -> Iterator[BatchItem]:
        self.started = time.monotonic()
        self.view = _make_progress(self.total) if self.progress else _Progress(self.total)
        workers = [threading.Thread(target=self._work, name=f"qwen-batch-{n}", daemon=True)
                   for n in range(self.concurrency)]
        self.running = len(workers)
        if not workers:
            return
        pending: Any = None
        try:
            for thread in workers:
                thread.start()
            while True:
                try:
                    # Short waits keep the main thread responsive to Ctrl-C / the
                    # notebook's interrupt, and let the progress bar show the time.
                    pending = self.finished.get(timeout=0.1)
                except queue.Empty:
                    self.view.tick(self.backoff.remaining)
                    continue
                if pending is _FINISHED:
                    return
                item, pending = pending, None
                yield item
        except KeyboardInterrupt:
            self.interrupted = True
            self._halt(workers)
            if pending is not None and pending is not _FINISHED:
                yield pending  # taken off the queue just before the interrupt
            while True:  # what the stopped workers still hand back (interrupted items)
                try:
                    item = self.finished.get_nowait()
                except queue.Empty:
                    return
                if item is not _FINISHED:
                    yield item

    def _halt(self, workers: Sequence[threading.Thread] = ()) -> None:
        self.stop.set()
        with self.lock:
            streams = list(self.active.values())
        for stream in streams:
            stream.close()
        deadline = time.monotonic() + 5.0  # closed streams end at once; this is a backstop
        for thread in workers:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))

    def _next_job(self) -> Job | BatchItem | None:
        with self.lock:
            if self.stop.is_set() or self.input_failed:
                return None
            try:
                job = next(self.jobs, None)
            except Exception as error:  # the caller's iterator (or a bad item in it) failed
                self.input_failed = True
                wrapped = error if isinstance(error, QwenError) else QwenError(
                    f"Reading the batch's inputs failed at item {self.taken}: "
                    f"{type(error).__name__}: {error}; the items before it were sent.")
                return BatchItem(self.taken, "", (), None, wrapped, "failed")
            if job is not None:
                self.taken += 1
            return job

    def _work(self) -> None:
        from .client import shared_backoff

        shared_backoff.set(self.backoff)
        try:
            while not self.stop.is_set():
                job = self._next_job()
                if job is None:
                    break
                item = job if isinstance(job, BatchItem) else self.sender.send(
                    job, lambda stream, index=job.index: self._started(index, stream))
                with self.lock:
                    self.active.pop(item.index, None)
                    if self.keep:
                        self.kept[item.index] = item
                self.view.item_done(item)
                if not self.keep:
                    self._hand_over(item)
        finally:
            with self.lock:
                self.running -= 1
                last = self.running == 0
            if last:
                self._hand_over(_FINISHED)

    def _hand_over(self, item: Any) -> None:
        """Queue an item for the caller, waiting while the queue is full unless stopped."""
        while True:
            try:
                self.finished.put(item, timeout=0.1)
                return
            except queue.Full:
                if self.stop.is_set():
                    return  # nobody reads any more

    def _started(self, index: int, stream: Any) -> None:
        with self.lock:
            self.active[index] = stream
        if self.stop.is_set():
            stream.close()


@dataclass(frozen=True)
class _Summary:
    """What the progress view shows at the end of an unordered batch (no items kept)."""

    text: str
    interrupted: bool

    def summary(self) -> str:
        return self.text


def _tokens(response: QwenResponse | None) -> int:
    if response is None:
        return 0
    usage = response.usage
    if usage.total_tokens is not None:
        return usage.total_tokens
    return (usage.prompt_tokens or 0) + (usage.completion_tokens or 0)


def _clip(text: str, limit: int = 50) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- progress ----------------------------------------------------------------------------


class _Progress:
    """Counts items; subclasses show them. Called from worker threads and the main one."""

    def __init__(self, total: int | None) -> None:
        self.total = total  # None: a lazily read input of unknown length
        self.done = 0
        self.failed = 0
        self.tokens = 0
        self.started = time.monotonic()
        self._lock = threading.Lock()

    def item_done(self, item: BatchItem) -> None:
        with self._lock:
            self.done += 1
            self.failed += item.status != "ok"
            self.tokens += _tokens(item.response)

    def line(self, waiting: float = 0.0) -> str:
        elapsed = time.monotonic() - self.started
        failed = f", {self.failed} failed" if self.failed else ""
        wait = f", rate limited: waiting {waiting:.0f} s" if waiting > 0.5 else ""
        of = f"/{self.total}" if self.total is not None else ""
        return f"{self.done}{of} done{failed}, {elapsed:.1f} s, {self.tokens:,} tokens{wait}"

    def tick(self, waiting: float) -> None:
        pass

    def close(self, result: BatchResult | _Summary) -> None:
        pass


class _TextProgress(_Progress):
    """A one-line bar on stderr, redrawn at most twice a second."""

    WIDTH = 24

    def __init__(self, total: int | None, stream: Any = None) -> None:
        super().__init__(total)
        self.out = stream or sys.stderr
        self._shown = 0.0

    def tick(self, waiting: float) -> None:
        now = time.monotonic()
        if now - self._shown >= 0.5:
            self._shown = now
            self._draw(waiting)

    def _draw(self, waiting: float = 0.0, end: str = "") -> None:
        filled = self.WIDTH * self.done // max(1, self.total or self.done)
        bar = "#" * filled + "." * (self.WIDTH - filled)
        self.out.write(f"\r[{bar}] {self.line(waiting)}{end}")
        self.out.flush()

    def close(self, result: BatchResult | _Summary) -> None:
        self._draw(end="\n")
        if result.interrupted:
            self.out.write(f"interrupted: {result.summary()}\n")
            self.out.flush()


class _WidgetProgress(_Progress):
    """An ipywidgets bar and label; replaced by plain text at the end, so a saved notebook
    keeps the summary and no widget state."""

    def __init__(self, total: int | None) -> None:
        super().__init__(total)
        import ipywidgets as widgets
        from IPython.display import display

        self.bar = widgets.IntProgress(value=0, min=0, max=max(1, total or 1), bar_style="info")
        self.label = widgets.HTML(value=self.line())
        self.box = widgets.HBox([self.bar, self.label])
        self.handle = display(self.box, display_id=True)
        self._shown = (-1, "")

    def tick(self, waiting: float) -> None:
        line = self.line(waiting)
        if (self.done, line) != self._shown:
            self._shown = (self.done, line)
            self.bar.max = max(1, self.total or self.done)
            self.bar.value = self.done
            self.label.value = line

    def close(self, result: BatchResult | _Summary) -> None:
        import html

        text = ("Interrupted: " if result.interrupted else "Batch: ") + result.summary()
        if self.handle is not None:
            self.handle.update(
                {"text/plain": text, "text/html": f"<pre>{html.escape(text)}</pre>"}, raw=True
            )
        from .frontend.live import close_widgets  # with their Layout / Style models

        close_widgets((self.box,))


def _make_progress(total: int | None) -> _Progress:
    from .frontend.live import in_kernel

    return _WidgetProgress(total) if in_kernel() else _TextProgress(total)
