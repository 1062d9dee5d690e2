"""The four wrapt wrappers: sync or async, plain function or generator."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import wrapt

from ._call import CachedCall
from ._call_base import on_home_thread
from ._call_flow import (
    async_lookup,
    follow_async,
    follow_sync,
    local_flight,
    serve_hit,
    sync_lookup,
    wait_for_flight_async,
    wait_for_flight_sync,
)
from ._streams import AsyncRecorder, AsyncReplay, SyncRecorder, SyncReplay


def make_async_wrapper(call: CachedCall) -> Any:
    @wrapt.decorator
    async def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        state, bypass = call.start(wrapped, instance, args, kwargs)
        assert state is not None
        if bypass is not None:
            value = await wrapped(*args, **kwargs)
            call.finish(state, "bypass", reason=bypass)
            return value
        cache = call.cache
        local = local_flight(cache, state)
        if local is None or not await follow_async(cache, state, local):
            await async_lookup(call, cache, state)
        if serve_hit(call, state) or (
            await wait_for_flight_async(call, cache, state) and serve_hit(call, state)
        ):
            return AsyncReplay(state.value) if state.stream else state.value
        spent = time.perf_counter() - state.started
        try:
            value = await wrapped(*args, **kwargs)
        except BaseException:
            call.abort(cache, state)
            raise
        if state.stream:
            # stream=True SDK call: store when the caller has read the stream to its end.
            call.finish(state, "error" if state.failed else "miss", overhead=spent)
            return AsyncRecorder(
                value,
                lambda items: call.land_async(cache, state, items),
                lambda: call.abort(cache, state),
            )
        resumed = time.perf_counter()
        await call.land_async(cache, state, value)
        overhead = spent + time.perf_counter() - resumed
        call.finish(state, "error" if state.failed else "miss", overhead=overhead)
        return value

    return wrapper


def make_sync_wrapper(call: CachedCall) -> Any:
    @wrapt.decorator
    def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        state, bypass = call.start(wrapped, instance, args, kwargs)
        assert state is not None
        cache = call.cache
        # On the home loop's own thread a sync call must not block the loop waiting for
        # a flight (the leader may need that loop); it bypasses below instead.
        local = None if bypass is not None or on_home_thread(cache) else local_flight(cache, state)
        served = local is not None and follow_sync(cache, state, local)
        if bypass is None and not served and not sync_lookup(call, cache, state):
            bypass = "would block the event loop"
        if bypass is not None:
            value = wrapped(*args, **kwargs)
            call.finish(state, "bypass", reason=bypass)
            return value
        if serve_hit(call, state) or (
            wait_for_flight_sync(call, cache, state) and serve_hit(call, state)
        ):
            return SyncReplay(state.value) if state.stream else state.value
        spent = time.perf_counter() - state.started
        try:
            value = wrapped(*args, **kwargs)
        except BaseException:
            call.abort(cache, state)
            raise
        if state.stream:
            call.finish(state, "error" if state.failed else "miss", overhead=spent)
            return SyncRecorder(
                value,
                lambda items: call.land(cache, state, items),
                lambda: call.abort(cache, state),
            )
        resumed = time.perf_counter()
        call.land(cache, state, value)
        overhead = spent + time.perf_counter() - resumed
        call.finish(state, "error" if state.failed else "miss", overhead=overhead)
        return value

    return wrapper


def make_async_gen_wrapper(call: CachedCall) -> Any:
    @wrapt.decorator
    async def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> AsyncIterator[Any]:
        state, bypass = call.start(wrapped, instance, args, kwargs)
        assert state is not None
        if bypass is not None:
            call.finish(state, "bypass", reason=bypass)
            async for item in wrapped(*args, **kwargs):
                yield item
            return
        cache = call.cache
        local = local_flight(cache, state)
        if local is None or not await follow_async(cache, state, local):
            await async_lookup(call, cache, state)
        if serve_hit(call, state) or (
            await wait_for_flight_async(call, cache, state) and serve_hit(call, state)
        ):
            for item in state.value:
                yield item
            return
        call.finish(state, "error" if state.failed else "miss")
        items: list[Any] = []
        complete = False
        agen = wrapped(*args, **kwargs)
        try:
            async for item in agen:
                items.append(item)
                yield item
            complete = True
        finally:
            if not complete:
                call.abort(cache, state)
            await agen.aclose()
        # Reached only when the producer finished and the consumer read to the end.
        await call.land_async(cache, state, items)

    return wrapper


def make_sync_gen_wrapper(call: CachedCall) -> Any:
    @wrapt.decorator
    def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Iterator[Any]:
        state, bypass = call.start(wrapped, instance, args, kwargs)
        assert state is not None
        cache = call.cache
        # On the home loop's own thread a sync call must not block the loop waiting for
        # a flight (the leader may need that loop); it bypasses below instead.
        local = None if bypass is not None or on_home_thread(cache) else local_flight(cache, state)
        served = local is not None and follow_sync(cache, state, local)
        if bypass is None and not served and not sync_lookup(call, cache, state):
            bypass = "would block the event loop"
        if bypass is not None:
            call.finish(state, "bypass", reason=bypass)
            yield from wrapped(*args, **kwargs)
            return
        if serve_hit(call, state) or (
            wait_for_flight_sync(call, cache, state) and serve_hit(call, state)
        ):
            yield from state.value
            return
        call.finish(state, "error" if state.failed else "miss")
        items: list[Any] = []
        complete = False
        gen = wrapped(*args, **kwargs)
        try:
            for item in gen:
                items.append(item)
                yield item
            complete = True
        finally:
            if not complete:
                call.abort(cache, state)
            gen.close()
        call.land(cache, state, items)

    return wrapper
