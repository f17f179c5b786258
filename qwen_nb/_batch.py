"""Many requests at once: `qwen_nb.batch(prompt, images=[...])` with bounded concurrency.

Worker threads share the one request path (`api.open_stream` / `api.run`, so the cache and
the offline simulator work as for `ask()`), and one rate-limit backoff: a 429 pauses every
worker once, for as long as the server's Retry-After says. Results come back in input
order; a failed item keeps its error and the rest go on. An interrupt (Ctrl-C, the
notebook's stop button) stops promptly and returns what finished.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, overload

from ._errors import InputError, Interrupted, QwenError
from ._types import QwenResponse

__all__ = ["BatchItem", "BatchResult", "SharedBackoff", "batch"]


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
        rows = []
        for item in self.items:
            response = item.response
            usage = response.usage if response is not None else None
            rows.append(
                {
                    "prompt": item.prompt,
                    "image": ", ".join(item.image_names),
                    "answer": item.answer,
                    "thinking": item.thinking,
                    "prompt_tokens": usage.prompt_tokens if usage else None,
                    "completion_tokens": usage.completion_tokens if usage else None,
                    "reasoning_tokens": usage.reasoning_tokens if usage else None,
                    "total_tokens": usage.total_tokens if usage else None,
                    "elapsed": response.elapsed if response is not None else None,
                    "status": item.status,
                    "error": item.error.message if item.error is not None else None,
                    **_vision_columns(response),
                }
            )
        columns = list(dict.fromkeys(name for row in rows for name in row))
        return pd.DataFrame(rows, columns=columns or None)


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


def batch(
    prompts: str | Sequence[Any],
    images: Sequence[Any] | None = None,
    *,
    concurrency: int = 4,
    progress: bool = True,
    cache: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    **options: Any,
) -> BatchResult:
    """Run many requests concurrently; results in input order.

    - `batch("Describe this.", images=[a, b, c])`: one request per image (an element may
      itself be a list of images for one request);
    - `batch(["q1", "q2"])`, or `batch(["q1", "q2"], images=[a, b])` paired one to one;
    - `batch([("q1", a), ("q2", [b, c])])`: pairs of prompt and image(s).

    `options` are those of `ask()` (model, system, temperature, max_tokens, ...).
    `concurrency` requests run at once (default 4). A failed item holds its error; an
    interrupt returns what finished. Cached replies are served from the cache (`cache`,
    `cache_dir` as for `ask()`).
    """
    from . import api
    from .client import shared_backoff

    jobs = _jobs(prompts, images)
    if not isinstance(concurrency, int) or concurrency < 1:
        raise InputError(
            f"concurrency = {concurrency!r} is not allowed: use a whole number of 1 or more."
        )
    # The keywords of ask(), split and checked before anything is sent.
    settings, request_options, generation = api.split_keywords(dict(options))
    api.vision_plan(request_options, 1)  # a bad ground=/schema=/doc= fails here, not per item
    from .cache import resolve_mode

    if resolve_mode(cache) in ("off", "record"):
        # One clear error, not one per item. With a cache that can replay, recorded items
        # need no key, so a missing one fails only the items that are not recorded.
        settings.require_key()
    stream_kwargs: dict[str, Any] = {}
    if cache is not None:
        stream_kwargs["cache"] = cache
    if cache_dir is not None:
        stream_kwargs["cache_dir"] = cache_dir

    items: list[BatchItem] = [
        BatchItem(i, prompt, names) for i, (prompt, _, names) in enumerate(jobs)
    ]
    backoff = SharedBackoff()
    stop = threading.Event()
    lock = threading.Lock()
    active: dict[int, Any] = {}
    pending = iter(range(len(jobs)))
    finished = threading.Event()
    running = [0]

    def run_one(index: int) -> BatchItem:
        prompt, values, names = jobs[index]
        try:
            prepared = api.prepare_images(
                values,
                max_pixels=request_options.get("max_pixels"),
                inline_urls=request_options.get("inline_urls", False),
                settings=settings,
                labels=names,
            )
            plan = api.vision_plan(request_options, len(prepared))  # ground=, schema=, ...
            parts, item_options = api.with_vision([*prepared, prompt], generation, plan)
            request = api.build_request(
                parts,
                model=settings.model,
                system=request_options.get("system"),
                history=request_options.get("history", ()),
                options=item_options,
                reading=plan.reading,
            )
            stream = api.open_stream(request, settings, **stream_kwargs)
            with lock:
                active[index] = stream
            if stop.is_set():
                stream.close()
            response = api.run(request, settings, stream=stream)
            return BatchItem(index, prompt, names, response, None, "ok")
        except QwenError as error:
            status = "interrupted" if isinstance(error, Interrupted) else "failed"
            return BatchItem(index, prompt, names, error.response, error, status)
        except Exception as error:  # a bug or an odd input must not sink the other items
            wrapped = QwenError(f"{type(error).__name__}: {error}")
            return BatchItem(index, prompt, names, None, wrapped, "failed")
        finally:
            with lock:
                active.pop(index, None)

    def worker() -> None:
        shared_backoff.set(backoff)
        try:
            while not stop.is_set():
                with lock:
                    index = next(pending, None)
                if index is None:
                    break
                items[index] = run_one(index)
                view.item_done(items[index])
        finally:
            with lock:
                running[0] -= 1
                if running[0] == 0:
                    finished.set()

    view = _make_progress(len(jobs)) if progress else _Progress(len(jobs))
    started = time.monotonic()
    workers = [
        threading.Thread(target=worker, name=f"qwen-batch-{n}", daemon=True)
        for n in range(min(concurrency, len(jobs)))
    ]
    running[0] = len(workers)
    interrupted = False
    try:
        for thread in workers:
            thread.start()
        if not workers:
            finished.set()
        # Waiting in short steps keeps the main thread responsive to Ctrl-C / the
        # notebook's interrupt, and lets the progress bar show the elapsed time.
        while not finished.wait(0.1):
            view.tick(backoff.remaining)
    except KeyboardInterrupt:
        interrupted = True
        stop.set()
        with lock:
            streams = list(active.values())
        for stream in streams:
            stream.close()
        deadline = time.monotonic() + 5.0  # closed streams end at once; this is a backstop
        for thread in workers:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
    result = BatchResult(
        items,
        elapsed=time.monotonic() - started,
        interrupted=interrupted,
        rate_limit_pauses=backoff.pauses,
    )
    view.close(result)
    return result


# --- inputs ------------------------------------------------------------------------------


def _jobs(
    prompts: str | Sequence[Any], images: Sequence[Any] | None
) -> list[tuple[str, list[Any], tuple[str, ...]]]:
    """(prompt, image values, image names) per item, from any of the accepted shapes."""
    if images is not None and (isinstance(images, (str, bytes)) or not _is_sequence(images)):
        raise InputError(
            "images= takes a list (one entry per request), e.g. batch(prompt, images=[a, b])."
        )
    if isinstance(prompts, str):
        if images is None:
            pairs: list[tuple[Any, Any]] = [(prompts, None)]
        else:
            pairs = [(prompts, value) for value in images]
    elif _is_sequence(prompts):
        prompts = list(prompts)
        if images is None:
            pairs = [tuple(p) if isinstance(p, tuple) else (p, None) for p in prompts]
        elif len(images) != len(prompts):
            raise InputError(
                f"{len(prompts)} prompts but {len(images)} images: give one "
                "image (or list of images) per prompt, or pass pairs "
                "[(prompt, image), ...]."
            )
        else:
            pairs = list(zip(prompts, images, strict=True))
    else:
        raise InputError(
            f"batch() takes a prompt or a list of prompts, not {type(prompts).__name__}."
        )
    jobs = []
    position = 0
    for number, pair in enumerate(pairs):
        if len(pair) != 2 or not isinstance(pair[0], str):
            raise InputError(
                f"Item {number}: expected a prompt (text) or a (prompt, image) "
                f"pair, got {_clip(repr(pair))}."
            )
        prompt, value = pair
        values = [] if value is None else (
            list(value) if isinstance(value, (list, tuple)) else [value])
        names = []
        for value in values:
            position += 1
            names.append(_image_name(value, position))
        jobs.append((prompt, values, tuple(names)))
    return jobs


def _is_sequence(value: Any) -> bool:
    return isinstance(value, (list, tuple)) or (
        isinstance(value, Sequence) and not isinstance(value, (str, bytes))
    )


def _image_name(value: Any, position: int) -> str:
    """A short name for tables: a file or URL's last part, else "image N"."""
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if isinstance(value, str) and not value.startswith("data:"):
        name = value.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0]
        return name or value
    filename = getattr(value, "filename", None)  # PIL images opened from a file
    if isinstance(filename, str) and filename:
        return os.path.basename(filename)
    return f"image {position}"


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

    def __init__(self, total: int) -> None:
        self.total = total
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
        return (
            f"{self.done}/{self.total} done{failed}, {elapsed:.1f} s, {self.tokens:,} tokens{wait}"
        )

    def tick(self, waiting: float) -> None:
        pass

    def close(self, result: BatchResult) -> None:
        pass


class _TextProgress(_Progress):
    """A one-line bar on stderr, redrawn at most twice a second."""

    WIDTH = 24

    def __init__(self, total: int, stream: Any = None) -> None:
        super().__init__(total)
        self.out = stream or sys.stderr
        self._shown = 0.0

    def tick(self, waiting: float) -> None:
        now = time.monotonic()
        if now - self._shown >= 0.5:
            self._shown = now
            self._draw(waiting)

    def _draw(self, waiting: float = 0.0, end: str = "") -> None:
        filled = self.WIDTH * self.done // max(1, self.total)
        bar = "#" * filled + "." * (self.WIDTH - filled)
        self.out.write(f"\r[{bar}] {self.line(waiting)}{end}")
        self.out.flush()

    def close(self, result: BatchResult) -> None:
        self._draw(end="\n")
        if result.interrupted:
            self.out.write(f"interrupted: {result.summary()}\n")
            self.out.flush()


class _WidgetProgress(_Progress):
    """An ipywidgets bar and label; replaced by plain text at the end, so a saved notebook
    keeps the summary and no widget state."""

    def __init__(self, total: int) -> None:
        super().__init__(total)
        import ipywidgets as widgets
        from IPython.display import display

        self.bar = widgets.IntProgress(value=0, min=0, max=max(1, total), bar_style="info")
        self.label = widgets.HTML(value=self.line())
        self.box = widgets.HBox([self.bar, self.label])
        self.handle = display(self.box, display_id=True)
        self._shown = (-1, "")

    def tick(self, waiting: float) -> None:
        line = self.line(waiting)
        if (self.done, line) != self._shown:
            self._shown = (self.done, line)
            self.bar.value = self.done
            self.label.value = line

    def close(self, result: BatchResult) -> None:
        import html

        text = ("Interrupted: " if result.interrupted else "Batch: ") + result.summary()
        if self.handle is not None:
            self.handle.update(
                {"text/plain": text, "text/html": f"<pre>{html.escape(text)}</pre>"}, raw=True
            )
        from .frontend.live import close_widgets  # with their Layout / Style models

        close_widgets((self.box,))


def _make_progress(total: int) -> _Progress:
    from .frontend.live import in_kernel

    return _WidgetProgress(total) if in_kernel() else _TextProgress(total)
