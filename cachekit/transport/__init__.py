"""An httpx transport that caches LLM API calls, for every SDK that takes ``http_client=``.

    import httpx
    from openai import AsyncOpenAI
    from cachekit.transport import AsyncCacheTransport

    http = httpx.AsyncClient(transport=AsyncCacheTransport(cache=cache, namespace="chat"))
    client = AsyncOpenAI(http_client=http)

Hits come back as real HTTP responses (the SDK builds its own objects from them), streams
are recorded while the caller reads them and replayed event for event, and the API key's
digest is the default tenant, as in the proxy. The options are the middleware's.
"""

from __future__ import annotations

from ._async import AsyncCacheTransport
from ._sync import CacheTransport

__all__ = ["AsyncCacheTransport", "CacheTransport"]
