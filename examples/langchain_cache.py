"""LangChain's LLM cache in Redis: cachekit's CachekitCache under a ChatOpenAI model.

    pip install -e ".[langchain]" langchain-openai
    python examples/langchain_cache.py

The LLM is OpenAI when OPENAI_API_KEY is set, else the offline OpenAI-wire stand-in from
tests/llm_server.py (answers "echo: <your question>"). Redis is CACHEKIT_REDIS_URL, else
REDIS_URL, else a throwaway Redis 8 started for the run. With sentence-transformers
installed (``cachekit[local]``) paraphrases of the last human message are served from
the semantic layer too; the system message and earlier turns must match exactly.
"""

from __future__ import annotations

import asyncio

from _backends import backends, make_cache
from langchain_core.globals import set_llm_cache
from langchain_core.messages import HumanMessage, SystemMessage
from langchain_openai import ChatOpenAI

from cachekit import CacheResult, use_tenant
from cachekit.langchain import CachekitCache
from cachekit.result import current_tenant


def show(result: CacheResult) -> None:
    line = f"{result.tenant or '-':>5} {result.status:8}"
    if result.similarity is not None and result.status == "semantic":
        line += f" similarity {result.similarity:.2f} to {result.matched_prompt!r}"
    print(line)


def demo(llm: ChatOpenAI) -> None:
    system = SystemMessage("You are a terse geography tutor.")

    def ask(question: str, tenant: str = "acme") -> None:
        with use_tenant(tenant):
            reply = llm.invoke([system, HumanMessage(question)])
        print(f"      {question!r:42} -> {reply.content!r}")

    ask("What is the capital of France?")  # miss: the model answers
    ask("What is the capital of France?")  # exact hit: a real AIMessage from Redis
    ask("What is the capital city of France?")  # semantic, when an embedder is installed
    ask("What is the capital of France?", tenant="globex")  # another tenant: never shared

    async def ask_async() -> None:
        with use_tenant("acme"):
            reply = await llm.ainvoke([system, HumanMessage("What is the capital of France?")])
        print(f"      async: {reply.content!r}")

    asyncio.run(ask_async())


def main() -> None:
    with backends() as (redis_url, base_url, api_key):
        cache = make_cache(redis_url)
        cache.warmup_sync()  # a cold embedding model would skip the semantic layer
        # The tenant is the one each request sets with use_tenant(); none: no caching.
        lc = CachekitCache(
            cache, namespace="langchain-example", ttl=24 * 3600, tenant=current_tenant,
            on_result=show,
        )  # fmt: skip
        set_llm_cache(lc)
        try:
            demo(ChatOpenAI(base_url=base_url, api_key=api_key, model="gpt-4o-mini"))
            lc.clear()  # every worker misses the namespace's entries from now on
        finally:
            set_llm_cache(None)
            cache.close()


if __name__ == "__main__":
    main()
