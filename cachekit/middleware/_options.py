"""The options of the HTTP middlewares: validation, request matching, tenant and key.

:class:`Config` checks every option once, at construction (raising
:class:`~cachekit.errors.CacheConfigError`, no I/O), and turns a request body into its
key manifest; the cache steps built on it are in :mod:`._steps`.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, Final

from .._layout import NAMESPACE_RE
from .._manifest import KeyManifest, build_manifest
from ..cache import LLMCache
from ..errors import CacheConfigError, CacheKeyError
from ..result import CacheResult
from ._request import default_extractor, parse_body

__all__ = [
    "DEFAULT",
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_RESPONSE_BYTES",
    "DEFAULT_METHODS",
    "DEFAULT_PATHS",
    "Config",
    "Default",
    "Extractor",
    "TenantFn",
]

log = logging.getLogger("cachekit.middleware")


class Default(enum.Enum):
    """Sentinel type: "not given" where ``None`` is a meaningful value (``threshold``)."""

    token = 0


DEFAULT: Final = Default.token

DEFAULT_PATHS: Final[tuple[str, ...]] = ("/v1/chat/completions", "/v1/completions")
DEFAULT_METHODS: Final[tuple[str, ...]] = ("POST",)
#: Request bodies larger than this are passed through untouched (BYPASS).
DEFAULT_MAX_BODY_BYTES = 1 << 20
#: Responses larger than this are forwarded but not stored.
DEFAULT_MAX_RESPONSE_BYTES = 8 << 20

#: ``extractor(body, request) -> arguments`` (or None to bypass the cache).
Extractor = Callable[[dict[str, Any], Any], "Mapping[str, Any] | None"]
#: ``tenant(request) -> str | None``, sync or async. ``request`` is a Starlette
#: ``Request`` (ASGI) or the WSGI ``environ`` dict.
TenantFn = Callable[[Any], "str | Awaitable[str | None] | None"]


def _check_paths(paths: Any) -> tuple[frozenset[str], tuple[str, ...]]:
    if isinstance(paths, str) or not isinstance(paths, Iterable):
        raise CacheConfigError(f"paths must be a list of paths or prefixes, got {paths!r}")
    exact: set[str] = set()
    prefixes: list[str] = []
    for path in paths:
        if not isinstance(path, str) or not path.startswith("/"):
            raise CacheConfigError(
                f"every entry of paths must be a str starting with '/', got {path!r}"
            )
        # "/v1/*" and "/v1/" are prefixes; anything else must match the path exactly.
        if path.endswith("*"):
            prefixes.append(path[:-1])
        elif path.endswith("/") and path != "/":
            prefixes.append(path)
        else:
            exact.add(path)
    if not exact and not prefixes:
        raise CacheConfigError("paths is empty: the middleware would never cache anything")
    return frozenset(exact), tuple(prefixes)


class Config:
    """Validated options shared by :class:`CacheMiddleware` and :class:`WSGICacheMiddleware`.

    Construction checks every option and raises :class:`CacheConfigError`; no I/O.
    """

    def __init__(
        self,
        *,
        cache: LLMCache | None,
        namespace: str,
        threshold: float | Default | None,
        ttl: int | None,
        paths: Sequence[str],
        methods: Sequence[str],
        tenant: TenantFn | None,
        allow_global: bool,
        extractor: Extractor | None,
        max_body_bytes: int,
        max_response_bytes: int,
        ignore: Iterable[str],
        normalize: Callable[[str], str] | None,
        on_result: Callable[[CacheResult], None] | None,
    ) -> None:
        if cache is not None and not isinstance(cache, LLMCache):
            raise CacheConfigError(f"cache must be an LLMCache, got {type(cache).__name__}")
        if not isinstance(namespace, str) or not NAMESPACE_RE.match(namespace):
            raise CacheConfigError(
                f"namespace must be 1-64 characters of A-Z a-z 0-9 _ . -, got {namespace!r}"
            )
        if not isinstance(threshold, Default) and threshold is not None:
            if isinstance(threshold, bool) or not isinstance(threshold, int | float):
                raise CacheConfigError(f"threshold must be a number in [-1, 1], got {threshold!r}")
            if not -1.0 <= float(threshold) <= 1.0:
                raise CacheConfigError(
                    f"threshold is a cosine similarity and must be in [-1, 1], got {threshold!r}"
                )
        if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, int) or ttl <= 0):
            raise CacheConfigError(f"ttl must be a positive int (seconds) or None, got {ttl!r}")
        if isinstance(methods, str) or not all(isinstance(m, str) for m in methods):
            raise CacheConfigError(f"methods must be a list of HTTP methods, got {methods!r}")
        if not methods:
            raise CacheConfigError("methods is empty: the middleware would never cache anything")
        if tenant is not None and not callable(tenant):
            raise CacheConfigError(
                f"tenant must be a callable(request) -> str | None, got {tenant!r}"
            )
        if tenant is None and not allow_global:
            raise CacheConfigError(
                "an HTTP cache needs to know whose answers it may share: pass "
                "tenant=callable(request) -> str | None (e.g. cachekit.middleware.api_key_tenant), "
                "or allow_global=True to share answers between all callers"
            )
        if extractor is not None and not callable(extractor):
            raise CacheConfigError(f"extractor must be callable(body, request), got {extractor!r}")
        for name, value in (
            ("max_body_bytes", max_body_bytes),
            ("max_response_bytes", max_response_bytes),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise CacheConfigError(f"{name} must be a positive int, got {value!r}")
        if isinstance(ignore, str) or not all(isinstance(x, str) for x in ignore):
            raise CacheConfigError(f"ignore must be a collection of field names, got {ignore!r}")
        if normalize is not None and not callable(normalize):
            raise CacheConfigError(
                f"normalize must be a callable(str) -> str or None, got {normalize!r}"
            )
        if on_result is not None and not callable(on_result):
            raise CacheConfigError(f"on_result must be callable, got {on_result!r}")
        self._cache = cache
        self.namespace = namespace
        self.threshold = threshold
        self.ttl = ttl
        self.exact_paths, self.prefixes = _check_paths(paths)
        self.methods = frozenset(m.upper() for m in methods)
        self.tenant = tenant
        self.allow_global = bool(allow_global)
        self.extractor: Extractor = extractor if extractor is not None else default_extractor
        self.max_body_bytes = max_body_bytes
        self.max_response_bytes = max_response_bytes
        self.ignore = frozenset(ignore)
        self.normalize = normalize
        self.on_result = on_result

    @property
    def cache(self) -> LLMCache:
        if self._cache is None:
            from .._defaults import get_default_cache

            self._cache = get_default_cache()
        return self._cache

    def matches(self, method: str, path: str) -> bool:
        if method.upper() not in self.methods:
            return False
        return path in self.exact_paths or any(path.startswith(p) for p in self.prefixes)

    def effective_threshold(self, cache: LLMCache) -> float | None:
        if not isinstance(self.threshold, Default):
            return self.threshold
        embedder = cache.embedder
        return embedder.default_threshold if embedder is not None else None

    # -- tenant and key -----------------------------------------------------------------

    def check_tenant(self, value: object) -> tuple[str | None, str | None]:
        """(tenant, bypass reason) from what the callback returned."""
        if value is not None and not isinstance(value, str):
            log.error(
                "cachekit: the tenant callback returned %s, not str | None; bypassing the cache",
                type(value).__name__,
            )
            return None, "bad tenant"
        if value is not None and not value.strip():
            # An empty header (``X-Tenant-Id:``) is no tenant, not a tenant "" shared by
            # everyone who sends one: it bypasses, or is the global tenant when allowed.
            value = None
        if value is None and not self.allow_global:
            return None, "no tenant"
        return value, None

    def key(
        self, raw: bytes, request: Any, tenant: str | None, path: str, query: str
    ) -> KeyManifest | str:
        """Parse and key a request body: its manifest, or the reason it bypasses.

        Nothing a client sends may turn into an error here: whatever fails is a bypass
        (the app still gets the request untouched) and one short log line, never a
        traceback per request (a hostile body would otherwise flood the log).
        """
        try:
            body = parse_body(raw)
            if isinstance(body, str):
                return body
            return self.manifest(body, request, tenant, path, query)
        except Exception as exc:  # noqa: BLE001 - a request that cannot be keyed bypasses
            log.warning(
                "cachekit: cannot key the request to %s (%s: %.200s); bypassing the cache",
                path,
                type(exc).__name__,
                exc,
            )
            return "no key"

    def manifest(
        self, body: dict[str, Any], request: Any, tenant: str | None, path: str, query: str
    ) -> KeyManifest | str:
        """The request's key manifest, or the reason it bypasses the cache."""
        try:
            arguments = self.extractor(body, request)
        except RecursionError:
            log.warning("cachekit: the extractor hit the recursion limit; bypassing the cache")
            return "extractor failed"
        except Exception:
            log.exception("cachekit: the extractor raised; bypassing the cache for this request")
            return "extractor failed"
        if arguments is None:
            return "extractor declined"
        if not isinstance(arguments, Mapping):
            log.error(
                "cachekit: the extractor returned %s, not a mapping; bypassing the cache",
                type(arguments).__name__,
            )
            return "extractor failed"
        # The path (and query, e.g. Azure's api-version) is part of the scope: a chat
        # completion and a legacy completion of the same prompt are different answers.
        function_id = f"http:{path}?{query}" if query else f"http:{path}"
        try:
            return build_manifest(
                self.namespace,
                tenant,
                arguments,
                function_id=function_id,
                ignore=self.ignore,
                normalize=self.normalize,
            )
        except CacheKeyError as exc:
            log.warning("cachekit: request has no stable key (%s); bypassing the cache", exc)
            return "no key"
