"""The four wrapt wrappers: sync or async, plain function or generator.

Each moves arguments and values between the caller and the pipeline; the policy is
:class:`~cachekit._pipeline.Pipeline`'s.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import wrapt

from ._call import CachedCall
from ._streams import AsyncRecorder, AsyncReplay, SyncRecorder, SyncReplay
from ._ticket import Hit

Args = tuple[Any, ...]
Kwargs = dict[str, Any]


def make_async_wrapper(call: CachedCall) -> Any:
    pipe = call.pipeline

    @wrapt.decorator
    async def wrapper(wrapped: Callable[..., Any], instance: Any, args: Args, kw: Kwargs) -> Any:
        ticket, stream, bypass = call.start(wrapped, instance, args, kw)
        if bypass is not None:
            overhead = time.perf_counter() - ticket.started
            value = await wrapped(*args, **kw)
            call.bypass(ticket, bypass, overhead)
            return value
        got = await pipe.begin(ticket)
        if isinstance(got, Hit):
            return AsyncReplay(got.value) if stream else got.value
        try:
            value = await wrapped(*args, **kw)
        except BaseException:
            pipe.abort(got)
            raise
        if not stream:
            await pipe.complete(got, value)
            return value
        # stream=True SDK call: stored when the caller has read the stream to its end.
        pipe.report(got)
        return AsyncRecorder(
            value, lambda items: pipe.complete(got, items), lambda: pipe.abort(got)
        )

    return wrapper


def make_sync_wrapper(call: CachedCall) -> Any:
    pipe = call.pipeline

    @wrapt.decorator
    def wrapper(wrapped: Callable[..., Any], instance: Any, args: Args, kw: Kwargs) -> Any:
        ticket, stream, bypass = call.start(wrapped, instance, args, kw)
        if bypass is not None:
            overhead = time.perf_counter() - ticket.started
            value = wrapped(*args, **kw)
            call.bypass(ticket, bypass, overhead)
            return value
        got = pipe.begin_sync(ticket)
        if isinstance(got, Hit):
            return SyncReplay(got.value) if stream else got.value
        try:
            value = wrapped(*args, **kw)
        except BaseException:
            pipe.abort(got)
            raise
        if not stream:
            pipe.complete_sync(got, value)
            return value
        pipe.report(got)
        return SyncRecorder(
            value, lambda items: pipe.complete_sync(got, items), lambda: pipe.abort(got)
        )

    return wrapper


def make_async_gen_wrapper(call: CachedCall) -> Any:
    pipe = call.pipeline

    @wrapt.decorator
    async def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: Args, kw: Kwargs
    ) -> AsyncIterator[Any]:
        ticket, _, bypass = call.start(wrapped, instance, args, kw)
        if bypass is not None:
            call.bypass(ticket, bypass, time.perf_counter() - ticket.started)
            async for item in wrapped(*args, **kw):
                yield item
            return
        got = await pipe.begin(ticket)
        if isinstance(got, Hit):
            for item in got.value:
                yield item
            return
        pipe.report(got)
        items: list[Any] = []
        complete = False
        agen = wrapped(*args, **kw)
        try:
            async for item in agen:
                items.append(item)
                yield item
            complete = True
        finally:
            if not complete:
                pipe.abort(got)
            await agen.aclose()
        # Reached only when the producer finished and the consumer read to the end.
        await pipe.complete(got, items)

    return wrapper


def make_sync_gen_wrapper(call: CachedCall) -> Any:
    pipe = call.pipeline

    @wrapt.decorator
    def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: Args, kw: Kwargs
    ) -> Iterator[Any]:
        ticket, _, bypass = call.start(wrapped, instance, args, kw)
        if bypass is not None:
            call.bypass(ticket, bypass, time.perf_counter() - ticket.started)
            yield from wrapped(*args, **kw)
            return
        got = pipe.begin_sync(ticket)
        if isinstance(got, Hit):
            yield from got.value
            return
        pipe.report(got)
        items: list[Any] = []
        complete = False
        gen = wrapped(*args, **kw)
        try:
            for item in gen:
                items.append(item)
                yield item
            complete = True
        finally:
            if not complete:
                pipe.abort(got)
            gen.close()
        pipe.complete_sync(got, items)

    return wrapper
