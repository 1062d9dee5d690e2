"""The transports for ``httpx2`` clients: the Anthropic SDK (2.x) takes only those.

    import anthropic, httpx2
    from cachekit.transport.httpx2 import AsyncCacheTransport, CacheTransport

    client = anthropic.Anthropic(http_client=httpx2.Client(transport=CacheTransport(cache=cache)))

The same logic as :mod:`cachekit.transport` (``httpx``); only the HTTP objects differ,
because the two libraries' requests, responses and streams do not mix. Importing this
module needs ``httpx2`` installed (the Anthropic SDK depends on it).
"""

from __future__ import annotations

import httpx2

from ._async import AsyncCore, AsyncRecordingStream
from ._common import Wire
from ._sync import RecordingStream, SyncCore

__all__ = ["AsyncCacheTransport", "CacheTransport"]

WIRE = Wire(httpx2)


class _Recording(RecordingStream, httpx2.SyncByteStream):
    pass


class _AsyncRecording(AsyncRecordingStream, httpx2.AsyncByteStream):
    pass


class CacheTransport(SyncCore, httpx2.BaseTransport):
    """:class:`cachekit.transport.CacheTransport` for a sync ``httpx2.Client``."""

    wire = WIRE
    recording = _Recording


class AsyncCacheTransport(AsyncCore, httpx2.AsyncBaseTransport):
    """:class:`cachekit.transport.AsyncCacheTransport` for an ``httpx2.AsyncClient``."""

    wire = WIRE
    recording = _AsyncRecording
