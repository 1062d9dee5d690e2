"""Shared plumbing of the ``cachekit`` commands: Redis connection, errors, embedders.

Error policy (what a person at a terminal sees): a problem of the environment (Redis
unreachable, a Redis error) is one line and exit code 1; a bad input (a malformed file,
a bad option) is one line naming the problem (and line) and exit code 2; never a
traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, TypeVar, cast

import click
from redis.exceptions import RedisClusterException

from .._clients import redact
from .._defaults import DEFAULT_REDIS_URL, resolve_redis_url
from ..cache import CACHE_ERRORS, LLMCache
from ..errors import CacheBackendError, CacheConfigError

if TYPE_CHECKING:
    from ..embedders import Embedder

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
async def open_cache(url: str, **options: Any) -> AsyncIterator[LLMCache]:
    """An :class:`LLMCache` on ``url`` (``LLMCache`` options as keywords), pinged; Redis
    failures become one-line errors."""
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
        cache = LLMCache.from_client(client, **options)
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

    Any registered name (``cachekit.register_embedder``), as ``<name>`` or
    ``<name>:<argument>``. The built-ins: ``minilm``/``local`` (the bundled local model),
    ``openai[:<model>]``, ``st:<name or path>``, or ``py:<module>:<attribute>`` for your
    own embedder: an Embedder object, or a function with no arguments that returns one
    (the same object your application passes to ``LLMCache``, so ``explain`` and ``tune``
    measure what production measures).
    """
    from ..embedders import embedder_from_spec

    try:
        return embedder_from_spec(spec)
    except CacheConfigError as exc:
        raise click.BadParameter(str(exc), param_hint="--embedder") from None


def embedder_for_model_id(model_id: str) -> str | None:
    """The ``--embedder`` spec that rebuilds the embedder an index was built with."""
    from ..embedders import DEFAULT_LOCAL_MODEL_ID

    if model_id == DEFAULT_LOCAL_MODEL_ID:
        return "minilm"
    if model_id.startswith("openai/"):
        return "openai:" + model_id[len("openai/") :].split("@", 1)[0]
    return None


# ------------------------------------------------------------------ scope options

_TOKEN_RE = re.compile(r"^(?:_|b[A-Za-z0-9_-]+|h[0-9a-f]{64})$")
NAMESPACE_HELP = "Namespace (as given to @cached_llm / the middleware)."
TENANT_HELP = "Tenant id as your code passes it (it is encoded before it reaches a key)."
TOKEN_HELP = "Encoded tenant token as shown by `stats --json` (`_` = calls without a tenant)."


def check_namespace(namespace: str | None) -> None:
    from .._layout import NAMESPACE_RE

    if namespace is not None and not NAMESPACE_RE.match(namespace):
        raise click.BadParameter(
            f"{namespace!r}: 1-64 characters of A-Z a-z 0-9 _ . -", param_hint="namespace"
        )


def resolve_token(tenant: str | None, tenant_token: str | None) -> str | None:
    from .._layout import encode_tenant

    if tenant is not None and tenant_token is not None:
        raise click.UsageError("give --tenant or --tenant-token, not both")
    if tenant is not None:
        return encode_tenant(tenant)
    if tenant_token is not None and not _TOKEN_RE.match(tenant_token):
        raise click.BadParameter(
            f"{tenant_token!r} is not a tenant token (`_`, `b<base64url>` or `h<sha256 hex>`)",
            param_hint="--tenant-token",
        )
    return tenant_token


def scope_hint(namespace: str | None, tenant: str | None, tenant_token: str | None) -> str:
    parts = []
    if namespace:
        parts.append(f"namespace {namespace!r}")
    if tenant is not None:
        parts.append(f"tenant {tenant!r}")
    if tenant_token is not None:
        parts.append(f"tenant token {tenant_token!r}")
    return " and ".join(parts) if parts else "this Redis"


@dataclass(frozen=True, slots=True)
class ScopeArgs:
    """``--namespace``/``--tenant``/``--tenant-token`` as given, checked; ``token`` is the
    encoded tenant to read (None: every tenant)."""

    namespace: str | None
    tenant: str | None
    tenant_token: str | None
    token: str | None

    @property
    def hint(self) -> str:
        """What was asked for, for a "nothing found for ..." line."""
        return scope_hint(self.namespace, self.tenant, self.tenant_token)


def scope_options(namespace_help: str = NAMESPACE_HELP) -> Callable[[F], F]:
    """Add ``--namespace/-n``, ``--tenant/-t`` and ``--tenant-token`` to a command, checked
    before it runs; the command receives them as one ``scope: ScopeArgs`` argument."""

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def command(
            *args: Any,
            namespace: str | None,
            tenant: str | None,
            tenant_token: str | None,
            **kwargs: Any,
        ) -> Any:
            check_namespace(namespace)
            token = resolve_token(tenant, tenant_token)
            return func(*args, scope=ScopeArgs(namespace, tenant, tenant_token, token), **kwargs)

        # Applied last, listed first in --help (click reverses the decorator order).
        options = [
            click.option("--namespace", "-n", help=namespace_help),
            click.option("--tenant", "-t", help=TENANT_HELP),
            click.option("--tenant-token", help=TOKEN_HELP),
        ]
        for option in reversed(options):
            command = option(command)
        return cast(F, command)

    return decorate
