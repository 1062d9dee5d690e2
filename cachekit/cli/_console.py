"""``cachekit console``: the review console, served by uvicorn."""

from __future__ import annotations

import os
from typing import Any

import click

from ._common import CliError, InputError, check_namespace, embedder_for_model_id, redis_url_option


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8090, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--token",
    help="The token every request must carry (default: $CACHEKIT_CONSOLE_TOKEN, else a new "
    "one, printed at start).",
)
@click.option("--read-only", is_flag=True, help="No labels, invalidations or clears.")
@click.option("--namespace", "-n", help="Show (and act on) this namespace only.")
@click.option(
    "--tenant", "-t", help="Show (and act on) this tenant only (its id as your code passes it)."
)
@click.option("--tenant-token", help="The same by encoded token (`_` = calls without a tenant).")
@click.option(
    "--embedder",
    default="auto",
    show_default=True,
    help="For Explain: auto (the one the index was built with), none, minilm, openai:<model>, "
    "st:<model>, py:<module>:<attribute>.",
)
@click.option("--threshold", type=click.FloatRange(-1, 1), help="Your app's semantic threshold.")
@click.option(
    "--target-precision",
    default=0.95,
    show_default=True,
    type=click.FloatRange(0, 1, min_open=True),
    help="What the label calibration aims for.",
)
@click.option(
    "--history-interval",
    default=60.0,
    show_default=True,
    type=click.FloatRange(1),
    help="Seconds between snapshots of the counters (the traffic chart).",
)
@click.option(
    "--no-memory",
    is_flag=True,
    help="Do not measure each tenant's key memory (MEMORY USAGE over a SCAN) on the overview.",
)
@redis_url_option
def console(
    host: str,
    port: int,
    token: str | None,
    read_only: bool,
    namespace: str | None,
    tenant: str | None,
    tenant_token: str | None,
    embedder: str,
    threshold: float | None,
    target_precision: float,
    history_interval: float,
    no_memory: bool,
    redis_url: str,
) -> None:
    """Serve the review console: overview, quality, review queue, explain, actions.

    Listens on 127.0.0.1 unless --host says otherwise; every page needs the token
    (open the printed URL once: it sets a session cookie).
    """
    try:
        import uvicorn

        from ..console import TOKEN_ENV, create_app
        from ..console._auth import MIN_TOKEN_CHARS, new_token
    except ImportError as exc:
        raise CliError(
            f"the console needs its extra: pip install 'cachekit[console]' ({exc})"
        ) from None
    check_namespace(namespace)
    token = token or os.environ.get(TOKEN_ENV) or new_token()
    if len(token) < MIN_TOKEN_CHARS:
        raise InputError(f"--token must be at least {MIN_TOKEN_CHARS} characters")
    cache = _cache(redis_url, embedder)
    try:
        app = create_app(
            cache,
            token=token,
            read_only=read_only,
            namespace=namespace,
            tenant=tenant,
            tenant_token=tenant_token,
            history_interval=history_interval,
            threshold=threshold,
            target_precision=target_precision,
            measure_memory=not no_memory,
        )
    except ValueError as exc:
        raise InputError(str(exc)) from None
    shown = "[::1]" if host == "::1" else host
    click.echo(f"cachekit console on http://{shown}:{port}/?token={token}")
    if host not in ("127.0.0.1", "localhost", "::1"):
        click.echo(
            f"warning: listening on {host}: anyone who can reach it and has the token sees "
            "prompts and answers (put TLS in front of it)",
            err=True,
        )
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning")
    except SystemExit as exc:  # uvicorn exits when the port is taken
        raise CliError(f"the console could not start on {host}:{port}") from exc
    finally:
        cache.close()


def _cache(url: str, spec: str) -> Any:
    """A cache on ``url`` with the embedder Explain needs (``auto``: the index's)."""
    from .._clients import url_factory
    from .._policy import Budgets
    from ..cache import LLMCache
    from ._common import make_embedder

    try:
        url_factory(url, 1, Budgets())  # checks the URL, no I/O
    except ValueError as exc:
        raise InputError(f"bad --redis-url: {exc}") from None
    emb = None
    if spec == "auto":
        import asyncio

        async def meta() -> dict[str, str]:
            probe = LLMCache.from_url(url)
            try:
                return await probe.index_meta()
            finally:
                await probe.aclose()

        try:
            model_id = asyncio.run(meta()).get("model")
        except Exception as exc:  # noqa: BLE001 - reported, then the console starts without
            click.echo(f"warning: could not read the index metadata ({exc}); no embedder", err=True)
            model_id = None
        found = embedder_for_model_id(model_id) if model_id else None
        emb = make_embedder(found) if found else None
    else:
        emb = make_embedder(spec)
    return LLMCache.from_url(url, embedder=emb)
