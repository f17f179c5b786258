"""What every event stream shares (HTTP, offline simulator, cache replay and recording)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

from ._types import QwenResponse, StreamEvent


class EventStream(Protocol):
    """What `api.open_stream` returns: iterate for events (last: Finished); close() stops."""

    def __iter__(self) -> Iterator[StreamEvent]: ...
    def close(self) -> None: ...
    @property
    def response(self) -> QwenResponse: ...


class EventStreamBase:
    """Iterable once (a second `iter()` continues where the first stopped) and a context
    manager that closes the stream. Subclasses implement `_events()` and `close()`."""

    _iterator: Iterator[StreamEvent] | None = None

    def __iter__(self) -> Iterator[StreamEvent]:
        if self._iterator is None:
            self._iterator = self._events()
        return self._iterator

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _events(self) -> Iterator[StreamEvent]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError
