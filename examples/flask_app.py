"""A Flask service that calls an LLM, with cachekit's WSGICacheMiddleware in front.

    python examples/flask_app.py            # demo: a few requests, prints X-Cache headers
    python examples/flask_app.py --serve    # serve on http://127.0.0.1:5000

The LLM is OpenAI when OPENAI_API_KEY is set, else the offline OpenAI-wire stand-in from
tests/llm_server.py. Redis is CACHEKIT_REDIS_URL, else REDIS_URL, else a throwaway Redis 8 started
for the run.
The middleware reaches the async cache core through the cache's one background event
loop thread, so any threaded WSGI server (werkzeug, gunicorn --threads, waitress) works.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from typing import Any

import openai
from _backends import backends
from flask import Flask, Response, jsonify, request

from cachekit import LLMCache
from cachekit.middleware import WSGICacheMiddleware, api_key_tenant


def build_app(cache: LLMCache, llm: openai.OpenAI) -> Flask:
    app = Flask("cachekit_flask_example")

    @app.post("/v1/chat/completions")
    def chat() -> Any:
        body = request.get_json(force=True)
        params = {"model": body.get("model", "gpt-4o-mini"), "messages": body["messages"]}
        if body.get("stream"):
            stream = llm.chat.completions.create(**params, stream=True)

            def events() -> Iterator[str]:
                for chunk in stream:
                    yield f"data: {chunk.model_dump_json()}\n\n"
                yield "data: [DONE]\n\n"

            return Response(events(), mimetype="text/event-stream")
        return jsonify(llm.chat.completions.create(**params).model_dump(mode="json"))

    # The WSGI middleware wraps Flask's wsgi_app so Flask's own features keep working.
    # Tenant: a digest of the caller's bearer token (the tenant callback gets the environ).
    app.wsgi_app = WSGICacheMiddleware(  # type: ignore[method-assign]
        app.wsgi_app,
        cache=cache,
        namespace="flask-example",
        ttl=24 * 3600,
        tenant=api_key_tenant,
    )
    return app


def demo(app: Flask) -> None:
    client = app.test_client()

    def ask(question: str, token: str = "team-a", **extra: Any) -> None:
        body = {"messages": [{"role": "user", "content": question}], **extra}
        # buffered=True closes the response like a real server does: that is when the
        # middleware stores it (the client never waits for Redis).
        reply = client.post(
            "/v1/chat/completions",
            data=json.dumps(body),
            content_type="application/json",
            headers={"Authorization": f"Bearer {token}"},
            buffered=True,
        )
        print(f"{token:>6} {question!r:40} -> {reply.headers['X-Cache']}")

    ask("What is the capital of France?")
    ask("What is the capital of France?")
    ask("What is the capital of France?", token="team-b")  # another key: never shared
    ask("Stream me a haiku", stream=True)
    ask("Stream me a haiku", stream=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--serve", action="store_true", help="serve instead of the demo")
    parser.add_argument("--port", type=int, default=5000)
    args = parser.parse_args()
    with backends() as (redis_url, base_url, api_key):
        cache = LLMCache.from_url(redis_url)
        app = build_app(cache, openai.OpenAI(base_url=base_url, api_key=api_key))
        try:
            if args.serve:
                app.run(port=args.port, threaded=True)
            else:
                demo(app)
        finally:
            cache.close()


if __name__ == "__main__":
    main()
