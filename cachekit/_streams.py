"""Record streams while they are forwarded, and replay them on a hit.

A stream is stored only when its consumer read it to the end and the producer finished
without error: a consumer that stops early (``break``, ``close()``, a disconnect) or a
producer that raises leaves nothing in the cache, because a partial answer served later
as if it were whole is worse than a miss.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

__all__ = ["AsyncRecorder", "AsyncReplay", "SyncRecorder", "SyncReplay"]

log = logging.getLogger("cachekit")


class SyncReplay:
    """A finished stream served from the cache: iterate it like the SDK's ``Stream``."""

    def __init__(self, items: list[Any]) -> None:
        self._items = iter(items)

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        return next(self._items)

    def __enter__(self) -> SyncReplay:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._items = iter(())


class AsyncReplay:
    """Async twin of :class:`SyncReplay` (``async for``, ``async with``, ``await close()``)."""

    def __init__(self, items: list[Any]) -> None:
        self._items = iter(items)

    def __aiter__(self) -> AsyncIterator[Any]:
        return self

    async def __anext__(self) -> Any:
        try:
            return next(self._items)
        except StopIteration:
            raise StopAsyncIteration from None

    async def __aenter__(self) -> AsyncReplay:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        self._items = iter(())


class _Recorder:
    """What both recorders share: the items so far, and releasing waiters once."""

    def __init__(
        self,
        stream: Any,
        on_complete: Callable[[list[Any]], Any],
        on_abandon: Callable[[], None] | None,
    ) -> None:
        self._stream = stream
        self._items: list[Any] = []
        self._on_complete: Callable[[list[Any]], Any] | None = on_complete
        self._on_abandon = on_abandon

    def _abandon(self) -> None:
        self._on_complete = None
        abandon, self._on_abandon = self._on_abandon, None
        if abandon is not None:
            abandon()

    def _finished(self) -> Callable[[list[Any]], Any] | None:
        """The end was reached: the completion callback to run (once), if any."""
        done, self._on_complete = self._on_complete, None
        self._on_abandon = None
        return done

    def __del__(self) -> None:
        # A stream dropped without being read to the end must still release waiters.
        if self._on_complete is not None:
            self._abandon()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)  # response, etc. of the SDK's Stream


class SyncRecorder(_Recorder):
    """Forward a live sync stream item by item; call ``on_complete(items)`` at its end."""

    def __init__(
        self,
        stream: Any,
        on_complete: Callable[[list[Any]], None],
        on_abandon: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(stream, on_complete, on_abandon)
        self._it = iter(stream)

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        try:
            item = next(self._it)
        except StopIteration:
            done = self._finished()
            if done is not None:
                done(self._items)
            raise
        except BaseException:
            self._abandon()  # an upstream error mid-stream: store nothing
            raise
        self._items.append(item)
        return item

    def __enter__(self) -> SyncRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._on_complete is not None:
            self._abandon()
        close = getattr(self._stream, "close", None)
        if callable(close):
            close()


class AsyncRecorder(_Recorder):
    """Async twin of :class:`SyncRecorder`; ``on_complete`` is awaited at the end."""

    def __init__(
        self,
        stream: Any,
        on_complete: Callable[[list[Any]], Awaitable[None]],
        on_abandon: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(stream, on_complete, on_abandon)
        self._it = stream.__aiter__()

    def __aiter__(self) -> AsyncIterator[Any]:
        return self

    async def __anext__(self) -> Any:
        try:
            item = await self._it.__anext__()
        except StopAsyncIteration:
            done = self._finished()
            if done is not None:
                await done(self._items)
            raise
        except BaseException:
            self._abandon()
            raise
        self._items.append(item)
        return item

    async def __aenter__(self) -> AsyncRecorder:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._on_complete is not None:
            self._abandon()
        close = getattr(self._stream, "close", None) or getattr(self._stream, "aclose", None)
        if callable(close):
            result = close()
            if hasattr(result, "__await__"):
                await result
