"""OpenTelemetry spans and priced savings for an OpenAI app cached by cachekit.

    python examples/tracing_and_prices.py

Needs the extras `otel` (opentelemetry-api; the example uses the SDK to collect spans)
and, for genai-prices' prices, `prices`. The LLM is OpenAI when OPENAI_API_KEY is set,
else the offline stand-in from tests/llm_server.py; Redis as in the other examples.
"""

from __future__ import annotations

import asyncio

import httpx
import openai
from _backends import backends
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from cachekit import LLMCache
from cachekit.transport import CacheTransport

MODEL = "gpt-4o-mini"


def main() -> None:
    # The application's tracing set-up: cachekit's spans join whatever provider it sets.
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    tracer = trace.get_tracer("example-app")

    with backends() as (redis_url, base_url, api_key):
        cache = LLMCache.from_url(redis_url)
        http = httpx.Client(transport=CacheTransport(cache=cache, namespace="traced"))
        client = openai.OpenAI(base_url=base_url, api_key=api_key, http_client=http)
        question = [{"role": "user", "content": "What is the capital of Spain?"}]
        try:
            for attempt in ("first", "again"):
                with tracer.start_as_current_span(f"handle request ({attempt})"):
                    client.chat.completions.create(model=MODEL, messages=question)
                cache.drain_sync()
            for span in exporter.get_finished_spans():
                attrs = {
                    k: v
                    for k, v in (span.attributes or {}).items()
                    if k.startswith(("cachekit.", "gen_ai."))
                }
                parent = "child" if span.parent is not None else "root"
                print(f"span {span.name:28} {parent:5} {attrs}")
            report = asyncio.run(cache.stats("traced"))
            for row in report.rows:
                priced = row.priced_by
                print(f"saved ${row.usd_saved:.6f} on {row.hits} hit(s); priced by {priced}")
        finally:
            client.close()
            cache.close()


if __name__ == "__main__":
    main()
