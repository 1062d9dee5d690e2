"""The options of the HTTP middlewares: validation, request matching, tenant and key.

:class:`Config` checks every option once, at construction (raising
:class:`~cachekit.errors.CacheConfigError`, no I/O), and turns a request body into its
key manifest; the cache steps built on it are in :mod:`._steps`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, Final, TypedDict

from .._manifest import KeyManifest, build_manifest, check_history, default_normalize
from .._options import NOT_GIVEN, EntryOptions, NotGiven, blank_to_none, check_callable, check_names
from .._pipeline import Pipeline
from .._reasons import Reason
from ..cache import LLMCache
from ..errors import CacheConfigError, CacheKeyError
from ..result import NO_CONTROL, CacheControl, CacheResult
from ._apis import API_PATHS, api_for
from ._control import BODY_FIELD, Refusal
from ._keyed import Keyed, key_body, read_control
from ._request import default_extractor

__all__ = [
    "DEFAULT",
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_RESPONSE_BYTES",
    "DEFAULT_METHODS",
    "DEFAULT_PATHS",
    "Config",
    "Default",
    "Extractor",
    "Keyed",
    "MiddlewareOptions",
    "TenantFn",
]

log = logging.getLogger("cachekit.middleware")


#: The library's one "not given" sentinel, under the names the middleware always used.
Default = NotGiven
DEFAULT: Final = NOT_GIVEN

DEFAULT_PATHS: Final[tuple[str, ...]] = API_PATHS
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


class MiddlewareOptions(TypedDict, total=False):
    """The keyword options of both middlewares (and the proxy): see :class:`Config`."""

    cache: LLMCache | None
    namespace: str
    threshold: float | NotGiven | None
    ttl: int | None
    paths: Sequence[str]
    methods: Sequence[str]
    tenant: TenantFn | None
    allow_global: bool
    extractor: Extractor | None
    max_body_bytes: int
    max_response_bytes: int
    ignore: Iterable[str]
    normalize: Callable[[str], str] | None
    on_result: Callable[[CacheResult], None] | None
    only_if_cached: bool
    cache_field: str | None
    history: str


class Config:
    """Validated options shared by :class:`CacheMiddleware` and :class:`WSGICacheMiddleware`.

    Construction checks every option and raises :class:`CacheConfigError`; no I/O.
    """

    def __init__(
        self,
        *,
        cache: LLMCache | None = None,
        namespace: str = "http",
        threshold: float | NotGiven | None = NOT_GIVEN,
        ttl: int | None = None,
        paths: Sequence[str] = DEFAULT_PATHS,
        methods: Sequence[str] = DEFAULT_METHODS,
        tenant: TenantFn | None = None,
        allow_global: bool = False,
        extractor: Extractor | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        ignore: Iterable[str] = (),
        normalize: Callable[[str], str] | None = default_normalize,
        on_result: Callable[[CacheResult], None] | None = None,
        only_if_cached: bool = False,
        cache_field: str | None = BODY_FIELD,
        goes_to: str = "the app",
        wait_for_store: bool | None = True,
        history: str = "exact",
    ) -> None:
        # goes_to / wait_for_store are the entry point's, not the user's (not in
        # MiddlewareOptions): a server middleware waits for its store, so a client that
        # has the whole answer and asks again gets a hit; the transport does not.
        self.pipeline = Pipeline(
            EntryOptions(
                namespace=namespace,
                cache=cache,
                threshold=threshold,
                ttl=ttl,
                on_result=on_result,
                goes_to=goes_to,
                wait_for_store=wait_for_store,
            )
        )
        if isinstance(methods, str) or not all(isinstance(m, str) for m in methods):
            raise CacheConfigError(f"methods must be a list of HTTP methods, got {methods!r}")
        if not methods:
            raise CacheConfigError("methods is empty: the middleware would never cache anything")
        check_callable("tenant", tenant, "callable(request) -> str | None")
        if tenant is None and not allow_global:
            raise CacheConfigError(
                "an HTTP cache needs to know whose answers it may share: pass "
                "tenant=callable(request) -> str | None (e.g. cachekit.middleware.api_key_tenant), "
                "or allow_global=True to share answers between all callers"
            )
        check_callable("extractor", extractor, "callable(body, request)")
        check_callable("normalize", normalize, "callable(str) -> str or None")
        for name, value in (
            ("max_body_bytes", max_body_bytes),
            ("max_response_bytes", max_response_bytes),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise CacheConfigError(f"{name} must be a positive int, got {value!r}")
        if not isinstance(only_if_cached, bool):
            raise CacheConfigError(f"only_if_cached must be True or False, got {only_if_cached!r}")
        if cache_field is not None and (not isinstance(cache_field, str) or not cache_field):
            raise CacheConfigError(
                f"cache_field must be a body field name or None, got {cache_field!r}"
            )
        #: Every request behaves as if it sent ``Cache-Control: only-if-cached`` (offline).
        self.only_if_cached = only_if_cached
        #: The body field of per-request controls (LiteLLM's ``cache``); None: not read.
        self.cache_field = cache_field
        self.ignore = check_names("ignore", ignore, "field names")
        self.namespace = namespace
        self.exact_paths, self.prefixes = _check_paths(paths)
        self.methods = frozenset(m.upper() for m in methods)
        self.tenant = tenant
        self.allow_global = bool(allow_global)
        self.extractor: Extractor = extractor if extractor is not None else default_extractor
        self.max_body_bytes = max_body_bytes
        self.max_response_bytes = max_response_bytes
        self.normalize = normalize
        check_history(history)
        #: ``"similar"``: earlier turns may differ in wording (see ``cached_llm``).
        self.history = history

    @property
    def cache(self) -> LLMCache:
        return self.pipeline.cache

    def matches(self, method: str, path: str) -> bool:
        if method.upper() not in self.methods:
            return False
        return path in self.exact_paths or any(path.startswith(p) for p in self.prefixes)

    # -- tenant and key -----------------------------------------------------------------

    def check_tenant(self, value: object) -> tuple[str | None, str | None]:
        """(tenant, bypass reason) from what the callback returned."""
        if value is not None and not isinstance(value, str):
            log.error(
                "cachekit: the tenant callback returned %s, not str | None; bypassing the cache",
                type(value).__name__,
            )
            return None, Reason.BAD_TENANT
        # An empty header (``X-Tenant-Id:``) is no tenant: it bypasses, or is the global
        # tenant when allowed.
        value = blank_to_none(value)
        if value is None and not self.allow_global:
            return None, Reason.NO_TENANT
        return value, None

    def control(self, cache_control: str | None, ttl: str | None) -> CacheControl | Refusal:
        """The request's ``Cache-Control`` and ``X-Cache-TTL`` headers as one control."""
        return read_control(self, cache_control, ttl)

    def key(
        self, raw: bytes, request: Any, tenant: str | None, path: str, query: str
    ) -> KeyManifest | str:
        """Parse and key a request body: its manifest, or the reason it bypasses."""
        got = key_body(self, raw, request, tenant, path, query, NO_CONTROL)
        return Reason.BAD_CACHE_CONTROL if isinstance(got, Refusal) else got.key

    def keyed(
        self,
        raw: bytes,
        request: Any,
        tenant: str | None,
        path: str,
        query: str,
        control: CacheControl,
    ) -> Keyed | Refusal:
        """:meth:`key` with the body's own cache controls applied (see ``_keyed.key_body``)."""
        return key_body(self, raw, request, tenant, path, query, control)

    def manifest(
        self,
        body: dict[str, Any],
        request: Any,
        tenant: str | None,
        path: str,
        query: str,
        namespace: str | None = None,
    ) -> KeyManifest | str:
        """The request's key manifest (in ``namespace``, default the middleware's), or the
        reason it bypasses the cache."""
        api = api_for(path)  # what the body means: see ._apis
        state = api.refuse(body)
        if state is not None:
            log.debug("cachekit: %s refers to state the provider keeps; bypassing", state)
            return Reason.PROVIDER_STATE
        try:
            arguments = self.extractor(body, request)
        except RecursionError:
            log.warning("cachekit: the extractor hit the recursion limit; bypassing the cache")
            return Reason.EXTRACTOR_FAILED
        except Exception:
            log.exception("cachekit: the extractor raised; bypassing the cache for this request")
            return Reason.EXTRACTOR_FAILED
        if arguments is None:
            return Reason.EXTRACTOR_DECLINED
        if not isinstance(arguments, Mapping):
            log.error(
                "cachekit: the extractor returned %s, not a mapping; bypassing the cache",
                type(arguments).__name__,
            )
            return Reason.EXTRACTOR_FAILED
        shaped = api.key_arguments(arguments, request)
        if shaped is None:
            return Reason.RESERVED_FIELD
        # The path (and query, e.g. Azure's api-version) is part of the scope: a chat
        # completion and a legacy completion of the same prompt are different answers.
        function_id = f"http:{path}?{query}" if query else f"http:{path}"
        try:
            return build_manifest(
                namespace or self.namespace,
                tenant,
                shaped,
                function_id=function_id,
                ignore=self.ignore,
                normalize=None if api.exact_only else self.normalize,
                exact_only=api.exact_only,
                history=self.history,
            )
        except CacheKeyError as exc:
            log.warning("cachekit: request has no stable key (%s); bypassing the cache", exc)
            return Reason.NO_KEY
