"""The one exception tree of cachekit.

Everything cachekit raises on purpose derives from :class:`CacheKitError`. Lower-layer
errors (redis-py, the embedding client, JSON) are translated at the boundary with
``raise ... from`` so callers can catch one family. Note that the *cache* never raises
into a decorated call because Redis is down: that is fail-open and shows up as
``last_result().status == "error"``. The errors here are for misuse (bad options, bad
arguments) and for explicit management calls (``invalidate``, ``clear``).
"""

from __future__ import annotations

__all__ = [
    "CacheBackendError",
    "CacheConfigError",
    "CacheKeyError",
    "CacheKitError",
    "CacheTimeoutError",
    "CodecError",
    "EmbedderError",
    "IndexMismatchError",
    "RedisPortInUseError",
    "RedisServerNotFoundError",
    "VerifierInputError",
]


class CacheKitError(Exception):
    """Base class of every error cachekit raises."""


class CacheConfigError(CacheKitError, ValueError):
    """An option makes no sense (negative ttl, threshold outside [-1, 1], bad namespace)."""


class CacheKeyError(CacheKitError, TypeError):
    """A call argument cannot be turned into a stable cache key.

    Raised at call time, before the wrapped function runs, naming the parameter and its
    type. Put the parameter in ``ignore=`` if it should not take part in the key.
    """

    def __init__(self, message: str, *, parameter: str | None = None) -> None:
        super().__init__(message)
        self.parameter = parameter


class CodecError(CacheKitError):
    """A value cannot be encoded for, or decoded from, the cache."""


class CacheBackendError(CacheKitError):
    """Redis failed during an explicit management call (invalidate, clear, stats)."""


class CacheTimeoutError(CacheBackendError, TimeoutError):
    """A cache stage ran past its time budget (the call then goes to the function).

    The message names the stage and the budget, e.g. ``"embedding the prompt took longer
    than its 2.0 s budget"``: a bare ``TimeoutError`` says neither.
    """

    def __init__(self, stage: str, budget: float) -> None:
        super().__init__(f"{stage} took longer than its {budget:g} s budget")
        self.stage = stage
        self.budget = budget


class IndexMismatchError(CacheKitError):
    """An existing vector index was built for other dimensions or another metric."""


class EmbedderError(CacheKitError):
    """The embedder failed or returned vectors of the wrong shape."""


class RedisServerNotFoundError(CacheKitError):
    """No Redis >= 8 ``redis-server`` binary could be found to start a local server."""


class RedisPortInUseError(RedisServerNotFoundError):
    """The port asked of a local ``redis-server`` is taken (by another Redis or program).

    A subclass of :class:`RedisServerNotFoundError` because both mean "no server of ours
    could be started"; this one names the cause so the CLI can say so.
    """

    def __init__(self, port: int, *, redis: bool = False) -> None:
        what = "a Redis is already listening there" if redis else "another program holds it"
        super().__init__(f"port {port} is already in use ({what})")
        self.port = port
        self.redis = redis


class VerifierInputError(CacheKitError, TypeError, ValueError):
    """A hit verifier was called with a prompt that is not a ``str``, or a similarity that
    is not a finite number in [-1, 1]. The message names the argument and what it got."""

    def __init__(self, message: str, *, argument: str) -> None:
        super().__init__(message)
        self.argument = argument
