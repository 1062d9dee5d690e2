"""What every example needs: a Redis and an LLM, real ones from the environment, else
local ones (a throwaway Redis 8 and the offline wire-format server of tests/llm_server.py).

Redis is CACHEKIT_REDIS_URL, else REDIS_URL, else a throwaway Redis 8 started for the run.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from cachekit import LLMCache
from cachekit._defaults import configured_redis_url

#: provider -> (API key variable, base URL variable, default base URL, offline key)
_PROVIDERS = {
    "openai": ("OPENAI_API_KEY", "OPENAI_BASE_URL", "https://api.openai.com/v1", "sk-offline"),
    "anthropic": ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", None, "ak-offline"),
}


@contextlib.contextmanager
def backends(provider: str = "openai") -> Iterator[tuple[str, str | None, str]]:
    """(redis_url, LLM base URL (None: the SDK's own), API key) for ``provider``."""
    key_var, base_var, default_base, offline_key = _PROVIDERS[provider]
    with contextlib.ExitStack() as stack:
        redis_url = configured_redis_url()
        if not redis_url:
            from cachekit._server import RedisServer

            redis_url = stack.enter_context(RedisServer()).url
        key = os.environ.get(key_var)
        if key:
            yield redis_url, os.environ.get(base_var, default_base), key
            return
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        from tests.llm_server import LocalOpenAIServer

        server = stack.enter_context(LocalOpenAIServer())
        # OpenAI's SDK wants the /v1 base; Anthropic's adds /v1 itself.
        yield redis_url, server.base_url if provider == "openai" else server.url, offline_key


def make_cache(redis_url: str) -> LLMCache:
    """A cache with the semantic layer when sentence-transformers is installed."""
    try:
        import sentence_transformers  # noqa: F401 - only checks that the extra is installed

        from cachekit.embedders import SentenceTransformerEmbedder

        return LLMCache.from_url(redis_url, embedder=SentenceTransformerEmbedder())
    except ImportError:
        return LLMCache.from_url(redis_url)
