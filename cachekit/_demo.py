"""``cachekit demo``: the cache in front of an LLM, end to end, with no API key needed.

With neither ``CACHEKIT_REDIS_URL`` nor ``REDIS_URL`` set it starts a throwaway local
Redis 8 itself. With no
``OPENAI_API_KEY`` the "LLM" is a clearly labelled offline stand-in that sleeps like a
network call and answers from a tiny table. Local embeddings (all-MiniLM-L6-v2, shipped
offline) turn on the semantic layer when ``cachekit[local]`` is installed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TextIO

from ._defaults import configured_redis_url
from ._server import RedisServer
from .cache import LLMCache
from .decorator import cached_llm
from .result import last_result

__all__ = ["run_demo"]

STAND_IN_LATENCY_S = 0.6

_FACTS = {
    "france": "The capital of France is Paris.",
    "japan": "The capital of Japan is Tokyo.",
    "boil": "Water boils at 100 °C at sea level.",
}

PROMPTS = (
    "What is the capital of France?",
    "What is the capital of France?",  # exact hit
    "Which city is the capital of France?",  # paraphrase: semantic hit
    "Which city is the capital of France?",  # exact now (alias written on the hit)
    "Tell me the capital city of France.",  # paraphrase just under the threshold: a miss
    "What is the capital of Japan?",  # same shape, other answer: must miss
    "At what temperature does water boil?",
    "what is the capital of   FRANCE?",  # normalised whitespace and case: exact
)


def _stand_in_answer(prompt: str) -> str:
    low = prompt.lower()
    for word, answer in _FACTS.items():
        if word in low:
            return answer
    return "I am the offline stand-in LLM; I only know three facts."


@contextlib.contextmanager
def _redis_url(out: TextIO) -> Iterator[str]:
    url = configured_redis_url()
    if url:
        yield url
        return
    with RedisServer() as server:
        out.write(
            f"Started a throwaway Redis 8 on 127.0.0.1:{server.port} "
            "(no CACHEKIT_REDIS_URL or REDIS_URL set)\n"
        )
        yield server.url


def _make_embedder(out: TextIO) -> Any:
    try:
        from .embedders import SentenceTransformerEmbedder

        embedder = SentenceTransformerEmbedder()
        import sentence_transformers  # noqa: F401 - fail here, not mid-demo
    except ImportError:
        out.write("Semantic layer off: install cachekit[local] for local embeddings.\n")
        return None
    out.write(f"Semantic layer on: {embedder.model_id} (offline, CPU)\n")
    return embedder


def _make_llm(out: TextIO) -> Callable[[str], Any]:
    if os.environ.get("OPENAI_API_KEY"):
        from openai import AsyncOpenAI

        client = AsyncOpenAI()
        model = os.environ.get("CACHEKIT_DEMO_MODEL", "gpt-4o-mini")
        out.write(f"LLM: OpenAI {model} (OPENAI_API_KEY is set)\n")

        async def real(prompt: str) -> str:
            reply = await client.chat.completions.create(
                model=model, messages=[{"role": "user", "content": prompt}]
            )
            return reply.choices[0].message.content or ""

        return real
    out.write(
        f"LLM: OFFLINE STAND-IN (no OPENAI_API_KEY): answers from a table after "
        f"{STAND_IN_LATENCY_S:.1f}s, like a network call\n"
    )

    async def stand_in(prompt: str) -> str:
        await asyncio.sleep(STAND_IN_LATENCY_S)
        return _stand_in_answer(prompt)

    return stand_in


def _tiktoken_installed() -> bool:
    try:
        import tiktoken  # noqa: F401 - only asking whether it is there
    except ImportError:
        return False
    return True


def _estimate_note(before: Mapping[str, int], after: Mapping[str, int]) -> str:
    """What the demo's token estimates were really counted with (empty: no estimates)."""
    from .stats import CHARS_PER_TOKEN, TIKTOKEN

    with_tiktoken = after.get(TIKTOKEN, 0) - before.get(TIKTOKEN, 0)
    with_rule = after.get(CHARS_PER_TOKEN, 0) - before.get(CHARS_PER_TOKEN, 0)
    if not with_rule:
        return " (token counts estimated with tiktoken)" if with_tiktoken else ""
    if with_tiktoken:
        # tiktoken loads its encoding in the background: the first estimates miss it.
        return (
            f" (token counts estimated: {with_tiktoken} with tiktoken, {with_rule} at 4 "
            "characters per token while its encoding loaded)"
        )
    if not _tiktoken_installed():
        why = "tiktoken is not installed"
    else:
        why = "tiktoken is installed but its encoding could not be loaded (offline?)"
    return f" (token counts estimated at 4 characters per token: {why})"


async def _run(url: str, out: TextIO) -> None:
    from .stats import estimate_methods

    methods_before = estimate_methods()
    embedder = _make_embedder(out)
    llm = _make_llm(out)
    async with LLMCache.from_url(url, embedder=embedder) as cache:
        await cache.clear("demo")
        threshold = embedder.default_threshold if embedder is not None else None
        if threshold is not None:
            out.write(f"Threshold: cosine >= {threshold:.2f} (calibrated default)\n")

        @cached_llm(namespace="demo", cache=cache, ttl=3600)
        async def ask(
            prompt: str, system: str = "You are a concise assistant.", model: str = "gpt-4o-mini"
        ) -> str:
            return str(await llm(prompt))

        out.write("\n")
        for prompt in PROMPTS:
            started = time.perf_counter()
            answer = await ask(prompt)
            took = (time.perf_counter() - started) * 1000
            r = last_result()
            assert r is not None
            status = r.status.upper()
            extra = ""
            if r.status == "semantic":
                extra = f" similarity={r.similarity:.3f} matched={r.matched_prompt!r}"
            elif r.status == "miss" and r.similarity is not None:
                extra = f" (nearest cached prompt: similarity {r.similarity:.3f}, below threshold)"
            out.write(f"{status:<8} {took:8.1f} ms  {prompt!r} -> {answer!r}{extra}\n")
        await cache.drain()
        report = await cache.stats("demo")
        t = report.totals
        rate = f"{t.hit_rate:.0%}" if t.hit_rate is not None else "n/a"
        out.write(
            f"\nStats (shared by every worker, from Redis): {t.exact} exact, {t.semantic} "
            f"semantic, {t.miss} misses; hit rate {rate}\n"
        )
        est = _estimate_note(methods_before, estimate_methods()) if t.has_estimates else ""
        out.write(
            f"Saved so far: {t.tokens_in} input + {t.tokens_out} output tokens, "
            f"${t.usd_saved:.6f} at {report.pricing_as_of or 'list'} prices{est}\n"
        )
        if t.projected_monthly_usd is not None:
            out.write(f"Projected monthly saving: ${t.projected_monthly_usd:,.2f}\n")
        else:
            out.write(
                "Projected monthly saving: needs an hour of traffic to project; run "
                "`cachekit stats` against your own Redis later\n"
            )


def run_demo(out: TextIO = sys.stdout) -> int:
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    with _redis_url(out) as url:
        asyncio.run(_run(url, out))
    return 0
