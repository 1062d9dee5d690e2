"""Shared plumbing of the ``cachekit`` commands: Redis connection, errors, tables, embedders.

Error policy (what a person at a terminal sees): a problem of the environment (Redis
unreachable, a Redis error) is one line and exit code 1; a bad input (a malformed file,
a bad option) is one line naming the problem (and line) and exit code 2; never a
traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import math
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, Final, TypeVar

import click
from redis.exceptions import RedisClusterException

from ._clients import redact
from ._defaults import DEFAULT_REDIS_URL, resolve_redis_url
from .cache import CACHE_ERRORS, LLMCache
from .errors import CacheBackendError, CacheConfigError

if TYPE_CHECKING:
    from .embedders import Embedder

__all__ = [
    "DEFAULT_REDIS_URL",
    "CliError",
    "InputError",
    "echo_table",
    "fmt_age",
    "fmt_bytes",
    "fmt_count",
    "fmt_pct",
    "fmt_usd",
    "make_embedder",
    "open_cache",
    "redis_url_option",
    "run",
    "shorten",
]

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

#: The CLI is interactive, not a request path: generous timeouts, but never a hang.
_SOCKET_TIMEOUT_S: Final = 30.0
_CONNECT_TIMEOUT_S: Final = 5.0


#: Errors that mean "Redis is not there": the cache's own list, plus redis-py's cluster
#: bootstrap failure, which is not a RedisError.
_UNREACHABLE: tuple[type[BaseException], ...] = (*CACHE_ERRORS, RedisClusterException)


class CliError(click.ClickException):
    """The environment failed (Redis unreachable, a Redis error): exit code 1."""

    exit_code = 1


class InputError(click.ClickException):
    """The user's input is unusable (malformed file, bad value): exit code 2."""

    exit_code = 2


def _resolve_url(ctx: click.Context, param: click.Parameter, value: str | None) -> str:
    # Not click's envvar=: the library's one resolver decides, so the CLI reads the Redis
    # that @cached_llm, the proxy and the demo write.
    return resolve_redis_url(value)


def redis_url_option(func: F) -> F:
    return click.option(
        "--redis-url",
        default=None,
        callback=_resolve_url,
        help="Redis to use: redis://, rediss://, unix:// or redis+cluster://. "
        f"Default: $CACHEKIT_REDIS_URL, else $REDIS_URL, else {DEFAULT_REDIS_URL}.",
    )(func)


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine; Ctrl-C is a plain exit, not a traceback."""
    try:
        return asyncio.run(coro)
    except KeyboardInterrupt:
        raise click.Abort() from None


@contextlib.asynccontextmanager
async def open_cache(url: str) -> AsyncIterator[LLMCache]:
    """An :class:`LLMCache` on ``url``, pinged; Redis failures become one-line errors."""
    import redis.asyncio as aioredis
    from redis.exceptions import RedisError

    client: Any
    scheme = url.split("://", 1)[0].lower()
    try:
        if scheme.endswith("+cluster"):
            from redis.asyncio.cluster import RedisCluster

            client = RedisCluster.from_url(
                url.replace("+cluster", "", 1),
                socket_timeout=_SOCKET_TIMEOUT_S,
                socket_connect_timeout=_CONNECT_TIMEOUT_S,
            )
        else:
            client = aioredis.Redis.from_url(
                url, socket_timeout=_SOCKET_TIMEOUT_S, socket_connect_timeout=_CONNECT_TIMEOUT_S
            )
        cache = LLMCache.from_client(client)
    except (ValueError, CacheConfigError) as exc:
        raise InputError(f"bad --redis-url {redact(url)!r}: {exc}") from None
    where = redact(url)
    try:
        try:
            await cache.run(_ping, cache)
        except _UNREACHABLE as exc:
            raise CliError(f"cannot reach Redis at {where}: {_reason(exc)}") from None
        try:
            yield cache
        except (RedisError, RedisClusterException, OSError, TimeoutError) as exc:
            raise CliError(f"Redis error at {where}: {_reason(exc)}") from None
        except CacheBackendError as exc:
            raise CliError(_reason(exc)) from None
    finally:
        with contextlib.suppress(Exception):
            await cache.aclose()
        with contextlib.suppress(Exception):
            await client.aclose()


async def _ping(cache: LLMCache) -> None:
    await cache.redis.ping()


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return " ".join(text.split())


def make_embedder(spec: str) -> Embedder | None:
    """An embedder from its CLI spelling; None for ``none``.

    ``minilm`` (the bundled local model), ``openai[:<model>]``, ``st:<name or path>``, or
    ``py:<module>:<attribute>`` for your own embedder: an Embedder object, or a function
    with no arguments that returns one (the same object your application passes to
    ``LLMCache``, so ``explain`` and ``tune`` measure what production measures).
    """
    from .embedders import OpenAIEmbedder, SentenceTransformerEmbedder

    kind, _, arg = spec.strip().partition(":")
    kind = kind.lower()
    try:
        if kind in ("none", ""):
            return None
        if kind in ("minilm", "local"):
            _require_sentence_transformers()
            return SentenceTransformerEmbedder()
        if kind == "st":
            _require_sentence_transformers()
            return SentenceTransformerEmbedder(arg or None)
        if kind == "openai":
            return OpenAIEmbedder(arg or "text-embedding-3-small")
        if kind == "py":
            return _import_embedder(arg)
    except CacheConfigError as exc:
        raise click.BadParameter(str(exc), param_hint="--embedder") from None
    raise click.BadParameter(
        f"{spec!r}: use none, minilm, openai:<model>, st:<model name or path> "
        "or py:<module>:<attribute>",
        param_hint="--embedder",
    )


def _import_embedder(target: str) -> Embedder:
    import importlib

    from .embedders import Embedder, as_embedder

    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise click.BadParameter(
            f"py:{target}: expected py:<module>:<attribute>", param_hint="--embedder"
        )
    try:
        obj: Any = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise click.BadParameter(f"py:{target}: {exc}", param_hint="--embedder") from None
    if callable(obj) and not isinstance(obj, Embedder):
        obj = obj()  # a factory
    return as_embedder(obj)


def embedder_for_model_id(model_id: str) -> str | None:
    """The ``--embedder`` spec that rebuilds the embedder an index was built with."""
    from .embedders import DEFAULT_LOCAL_MODEL_ID

    if model_id == DEFAULT_LOCAL_MODEL_ID:
        return "minilm"
    if model_id.startswith("openai/"):
        return "openai:" + model_id[len("openai/") :].split("@", 1)[0]
    return None


def _require_sentence_transformers() -> None:
    # find_spec, not import: importing sentence_transformers here would import
    # huggingface_hub before the embedder sets HF_HUB_OFFLINE, and every load would then
    # wait on network timeouts.
    if importlib.util.find_spec("sentence_transformers") is None:
        raise click.UsageError(
            "the local embedder needs sentence-transformers: pip install 'cachekit[local]'"
        )


# ------------------------------------------------------------------------ formatting


def shorten(text: str | None, width: int) -> str:
    """One line of at most ``width`` characters (newlines and runs of spaces collapsed)."""
    if text is None:
        return "-"
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: max(1, width - 1)] + "…"


def fmt_count(n: int | None) -> str:
    if n is None:
        return "-"
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size * 10:
            return f"{n / size:.1f}{unit}"
    return f"{n:,}"


def fmt_pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def fmt_usd(x: float | None) -> str:
    if x is None:
        return "-"
    if x == 0:
        return "$0"
    if abs(x) < 0.01:
        return f"${x:.4f}"
    return f"${x:,.2f}"


def fmt_age(seconds: float | None) -> str:
    if seconds is None or math.isnan(seconds):
        return "-"
    s = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= size:
            return f"{s / size:.1f}{unit}"
    return f"{s:.0f}s"


def fmt_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "KiB", "MiB"):
        if size < 1024:
            return f"{size:.0f}{unit}" if unit == "B" else f"{size:.1f}{unit}"
        size /= 1024
    return f"{size:.1f}GiB"


def echo_table(headers: Sequence[str], rows: Sequence[Sequence[str]], align: str) -> None:
    """A plain aligned text table (``align``: one ``l``/``r`` per column)."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))

    def line(cells: Sequence[str]) -> str:
        out = [
            c.rjust(widths[i]) if align[i] == "r" else c.ljust(widths[i])
            for i, c in enumerate(cells)
        ]
        return "  ".join(out).rstrip()

    click.echo(line(headers))
    click.echo("  ".join("-" * w for w in widths))
    for row in rows:
        click.echo(line(row))
