"""Long-running commands: ``cachekit proxy``, ``redis`` and ``demo``."""

from __future__ import annotations

import os
import signal
import sys
import time
from typing import Any

import click

from ._common import (
    NAMESPACE_HELP,
    CliError,
    InputError,
    check_namespace,
    make_embedder,
    redis_url_option,
)
from ._proxy_env import ProxyEnv


@click.command()
@click.option(
    "--upstream",
    default="https://api.openai.com/v1",
    show_default=True,
    help="The API base URL to forward to (as an OpenAI SDK's base_url).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
@click.option("--namespace", "-n", default="proxy", show_default=True, help=NAMESPACE_HELP)
@click.option(
    "--embedder",
    default="none",
    show_default=True,
    help="Semantic layer: none (exact only), minilm, openai:<model>, st:<model>, "
    "py:<module>:<attribute>.",
)
@click.option(
    "--threshold",
    type=click.FloatRange(-1, 1),
    help="Semantic threshold (cosine); default: the embedder's calibrated one.",
)
@click.option("--ttl", type=click.IntRange(1), help="Seconds an entry lives (default: forever).")
@click.option(
    "--timeout", default=600.0, show_default=True, type=click.FloatRange(0, min_open=True)
)
@click.option(
    "--allow-global", is_flag=True, help="Share answers between callers without an API key."
)
@click.option(
    "--only-if-cached",
    is_flag=True,
    help="Offline replay: answer from the cache only (a miss is a 504); nothing is forwarded.",
)
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
)
@redis_url_option
@click.pass_context
def proxy(ctx: click.Context, /, **_: Any) -> None:
    """Serve an OpenAI-compatible caching proxy (point base_url at http://HOST:PORT/v1).

    Every option can also come from the environment as CACHEKIT_PROXY_<OPTION>
    (CACHEKIT_PROXY_UPSTREAM, CACHEKIT_PROXY_REDIS_URL, CACHEKIT_PROXY_NAMESPACE,
    CACHEKIT_PROXY_THRESHOLD, CACHEKIT_PROXY_PORT, CACHEKIT_PROXY_ONLY_IF_CACHED=1, ...);
    an option on the command line wins. The proxy serves GET /healthz and GET /metrics.
    """
    from ..errors import CacheConfigError

    env = ProxyEnv(ctx, os.environ)
    with env.naming("namespace"):
        check_namespace(env["namespace"])
    try:
        from ..proxy import run_proxy
    except ImportError as exc:
        raise CliError(
            f"the proxy needs its extra: pip install 'cachekit[proxy]' ({exc})"
        ) from None
    _check_urls(env)
    with env.naming("embedder"):
        emb = make_embedder(env["embedder"])
    threshold = env["threshold"]
    if threshold is not None and emb is None:
        raise click.UsageError(
            "--threshold needs a semantic layer: pass --embedder minilm (or another)"
        )
    options: dict[str, Any] = {}
    if threshold is not None:
        options["threshold"] = threshold
    try:
        run_proxy(
            env["upstream"],
            host=env["host"],
            port=env["port"],
            redis_url=env["redis_url"],
            namespace=env["namespace"],
            ttl=env["ttl"],
            embedder=emb,
            timeout=env["timeout"],
            allow_global=env["allow_global"],
            log_level=env["log_level"],
            only_if_cached=env["only_if_cached"],
            **options,
        )
    except CacheConfigError as exc:
        raise InputError(str(exc)) from None


def _check_urls(env: ProxyEnv) -> None:
    """The upstream and Redis URLs, checked before anything starts (no I/O)."""
    from .._clients import url_factory
    from .._policy import Budgets
    from .._proxy_upstream import Upstream

    with env.naming("upstream"):
        Upstream(env["upstream"], 1.0)
    with env.naming("redis_url"):
        url_factory(env["redis_url"], 1, Budgets())


# ------------------------------------------------------------------- redis / demo


@click.command()
def demo() -> None:
    """Run the cache in front of an LLM: miss, semantic hit, exact hit, stats.

    Needs no API key: with neither CACHEKIT_REDIS_URL nor REDIS_URL set it starts a
    throwaway Redis 8, and with no
    OPENAI_API_KEY it calls a clearly labelled offline stand-in for the LLM.
    """
    from .._demo import run_demo

    sys.exit(run_demo())


@click.command()
@click.option("--port", default=6379, show_default=True, help="TCP port on 127.0.0.1.")
@click.option("--search/--no-search", default=False, help="Load the RediSearch module.")
def redis(port: int, search: bool) -> None:
    """Start a local Redis 8 for development (Ctrl-C stops it).

    Exits 1 when the port is already in use (by another Redis or any other program)
    or when redis-server cannot be started or stops on its own.
    """
    from .._server import RedisServer
    from ..errors import RedisPortInUseError, RedisServerNotFoundError

    try:
        server = RedisServer(port=port, search=search).start()
    except RedisPortInUseError as exc:
        hint = (
            f"use it (redis://127.0.0.1:{port}/0) or pick another --port"
            if exc.redis
            else "stop what holds it or pick another --port"
        )
        raise CliError(f"{exc}: {hint}") from None
    except RedisServerNotFoundError as exc:
        raise CliError(str(exc)) from None
    click.echo(f"Redis 8 listening on {server.url} (Ctrl-C to stop)")

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # `kill` stops the server too, not only Ctrl-C

    signal.signal(signal.SIGTERM, on_term)
    code: int | None = None
    try:
        while server.process is not None and (code := server.process.poll()) is None:
            time.sleep(0.5)
    except KeyboardInterrupt:
        code = None
    finally:
        server.stop()
    if code is not None:
        raise CliError(f"redis-server stopped on its own (exit code {code})")
