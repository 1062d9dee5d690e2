"""The request side of the HTTP middlewares: options, matching, request body -> key manifest.

ASGI and WSGI share everything here; they only differ in how bytes move. A request is
*handled* when its method and path match; a handled request either goes through the
cache (HIT or MISS) or is passed to the app untouched with ``X-Cache: BYPASS`` (bad body,
no tenant, cache unavailable). Nothing on this side ever turns a request into an error.
"""

from __future__ import annotations

import concurrent.futures
import enum
import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from .._layout import NAMESPACE_RE
from .._manifest import KeyManifest, build_manifest
from .._xflight import release
from ..cache import LLMCache, LookupOutcome
from ..errors import CacheConfigError, CacheKeyError, CodecError
from ..result import CacheResult, Status, publish
from ._record import CachedResponse

__all__ = [
    "DEFAULT",
    "DEFAULT_METHODS",
    "DEFAULT_PATHS",
    "EXTRACT_IGNORE",
    "Default",
    "Extractor",
    "Options",
    "RequestControl",
    "api_key_tenant",
    "default_extractor",
    "parse_cache_control",
]

log = logging.getLogger("cachekit.middleware")


class Default(enum.Enum):
    """Sentinel type: "not given" where ``None`` is a meaningful value (``threshold``)."""

    token = 0


DEFAULT: Final = Default.token

DEFAULT_PATHS: Final[tuple[str, ...]] = ("/v1/chat/completions", "/v1/completions")
DEFAULT_METHODS: Final[tuple[str, ...]] = ("POST",)

#: Body fields of the OpenAI API that never change the answer (bookkeeping, billing,
#: OpenAI's own prompt-cache routing); everything else in the body is part of the key.
EXTRACT_IGNORE: Final[frozenset[str]] = frozenset(
    {
        "user",
        "metadata",
        "store",
        "service_tier",
        "safety_identifier",
        "prompt_cache_key",
        "prompt_cache_retention",
    }
)

#: ``extractor(body, request) -> arguments`` (or None to bypass the cache).
Extractor = Callable[[dict[str, Any], Any], "Mapping[str, Any] | None"]
#: ``tenant(request) -> str | None``, sync or async. ``request`` is a Starlette
#: ``Request`` (ASGI) or the WSGI ``environ`` dict.
TenantFn = Callable[[Any], "str | Awaitable[str | None] | None"]


def default_extractor(body: dict[str, Any], request: Any) -> dict[str, Any]:
    """The key arguments of an OpenAI-style request body.

    The whole body takes part: ``model``, ``messages`` (the last user turn becomes the
    prompt; system prompt and earlier turns the exact scope), ``tools``, sampling
    parameters, ``response_format``, ``n``, ``stream`` and ``stream_options`` (a stream
    is only ever answered with a stream), and any field this code does not know yet, so
    a new API parameter can never make two different requests share an answer. Legacy
    ``{"prompt": "..."}`` bodies use ``prompt`` as the prompt. Fields in
    :data:`EXTRACT_IGNORE` are left out.
    """
    return {k: v for k, v in body.items() if k not in EXTRACT_IGNORE}


def _bearer_or_key(headers: Mapping[str, str]) -> str | None:
    auth = (headers.get("authorization") or "").strip()
    if auth:
        scheme, _, token = auth.partition(" ")
        if scheme.lower() == "bearer":
            return token.strip() or None  # "Bearer " with no token is no credential
        # A non-bearer scheme (Basic, ...) is still a credential: key on all of it.
        return auth
    for name in ("api-key", "x-api-key"):
        value = headers.get(name)
        if value and value.strip():
            return value.strip()
    return None


def api_key_tenant(request: Any) -> str | None:
    """Tenant = a SHA-256 digest of the caller's API key; None without a key.

    Reads ``Authorization: Bearer <key>`` (OpenAI), ``api-key`` (Azure) or ``x-api-key``
    (Anthropic). Two keys never share entries and the key itself never reaches Redis.
    Works with a Starlette ``Request`` and with a WSGI ``environ``.
    """
    if isinstance(request, dict):  # WSGI environ
        headers = {
            "authorization": request.get("HTTP_AUTHORIZATION", ""),
            "api-key": request.get("HTTP_API_KEY", ""),
            "x-api-key": request.get("HTTP_X_API_KEY", ""),
        }
    else:
        headers = request.headers
    key = _bearer_or_key(headers)
    if key is None:
        return None
    return "key:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class RequestControl:
    """The request's ``Cache-Control``: the HTTP spelling of :func:`cachekit.cache_control`."""

    no_cache: bool = False
    no_store: bool = False
    max_age: float | None = None


_NO_CONTROL = RequestControl()


def parse_cache_control(value: str | None) -> RequestControl:
    """``no-cache`` skips the lookup, ``no-store`` the store, ``max-age=N`` rejects older."""
    if not value:
        return _NO_CONTROL
    no_cache = no_store = False
    max_age: float | None = None
    for raw in value.split(","):
        name, _, arg = raw.strip().partition("=")
        name = name.strip().lower()
        if name == "no-cache":
            no_cache = True
        elif name == "no-store":
            no_store = True
        elif name == "max-age":
            try:
                seconds = int(arg.strip().strip('"'))
            except ValueError:
                continue  # RFC 9111: an invalid max-age is ignored, not an error
            max_age = float(max(seconds, 0))
    return RequestControl(no_cache=no_cache, no_store=no_store, max_age=max_age)


def is_json_type(content_type: str | None) -> bool:
    """``application/json`` and ``application/<anything>+json``."""
    if not content_type:
        return False
    mime = content_type.split(";", 1)[0].strip().lower()
    return mime == "application/json" or (
        mime.startswith("application/") and mime.endswith("+json")
    )


def parse_body(raw: bytes) -> dict[str, Any] | str:
    """The JSON object of a request body, or the reason it cannot be keyed."""
    if not raw.strip():
        return "empty body"
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return "invalid JSON"
    except RecursionError:
        # json.loads recurses in C per level of nesting: a hostile body thousands of
        # levels deep must be passed to the app, not turned into a 500.
        return "JSON nested too deeply"
    if not isinstance(body, dict):
        return "JSON body is not an object"
    return body


class RequestState:
    """One handled request's trip through the cache (mutable, lives for one request)."""

    __slots__ = (
        "cached",
        "control",
        "failed",
        "flight",
        "flight_key",
        "lock",
        "manifest",
        "outcome",
        "semantic",
        "started",
        "stored",
    )

    def __init__(self, manifest: KeyManifest, control: RequestControl, started: float) -> None:
        self.manifest = manifest
        self.control = control
        self.started = started
        self.outcome: LookupOutcome | None = None
        self.cached: CachedResponse | None = None
        self.failed: str | None = None
        self.stored = False
        self.semantic: bool | None = None
        #: The in-process flight this request leads (WSGI keeps it here until the
        #: response is settled), and the cross-process lock it holds meanwhile.
        self.flight: concurrent.futures.Future[Any] | None = None
        self.flight_key = ""
        self.lock: Any = None

    def settle_flight(self, cache: LLMCache) -> None:
        """The leader is done: forget its flight (failing it if it never got a
        response) and free its cross-process lock, after the store (if any) landed."""
        flight, self.flight = self.flight, None
        if flight is not None:
            if flight.done():
                cache.flights.land(self.flight_key, flight)
            else:
                cache.flights.fail(self.flight_key, flight)
        lock, self.lock = self.lock, None
        release(cache, lock)


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


class Options:
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

    def lookup_budget(self, cache: LLMCache, state: RequestState) -> float:
        # Decided once per request: a model that becomes ready mid-lookup must not make
        # the lookup embed inside a budget that did not include embedding.
        if state.semantic is None:
            state.semantic = cache.uses_semantic(state.manifest, self.effective_threshold(cache))
        b = cache.budgets
        return b.lookup + (b.embed + b.search if state.semantic else 0.0)

    def store_budget(self, cache: LLMCache, state: RequestState) -> float:
        return cache.store_budget(state.manifest, state.outcome)

    # -- single-flight --------------------------------------------------------------------

    def flight_key(self, cache: LLMCache, manifest: KeyManifest) -> str:
        return f"{cache.space(manifest).tag}:{manifest.exact_digest}"

    def may_follow(self, cache: LLMCache, control: RequestControl) -> bool:
        """May this request be served by an identical one in flight, before any lookup?"""
        # A forced refresh (no-cache) or max-age=0 wants a new answer, not a shared one.
        return cache.single_flight and not control.no_cache and control.max_age != 0

    def may_lead(self, cache: LLMCache, state: RequestState) -> bool:
        """After a miss: may this request lead (or follow) a flight of identical ones?"""
        control = state.control
        return cache.single_flight and not control.no_cache and not control.no_store

    async def poll(self, cache: LLMCache, state: RequestState) -> CachedResponse | None:
        """One exact-layer look for an answer another process stored (home loop)."""
        outcome = await cache.lookup(state.manifest, threshold=None, max_age=state.control.max_age)
        if outcome.entry is None:
            return None
        try:
            response = CachedResponse.decode(outcome.entry.payload)
        except CodecError:
            return None  # the leader's corrupt entry: this request calls the app
        state.outcome = outcome
        return response

    def flight_failure(self, cache: LLMCache, exc: BaseException) -> None:
        # Not state.failed: the request still goes through the cache (its miss is
        # stored and counted); only the coalescing with other processes was lost.
        cache.local_errors += 1
        cache.warn(
            "http-single-flight",
            "cachekit: cross-process single-flight failed; the request goes to the app: %s: %s",
            type(exc).__name__,
            exc,
        )

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

    # -- the coroutines run on the cache's home loop ------------------------------------

    async def before(self, cache: LLMCache, state: RequestState) -> None:
        """Look up; on a decodable hit set ``state.cached``."""
        if state.control.no_cache:
            state.outcome = await cache.prepare(state.manifest)
            return
        outcome = await cache.lookup(
            state.manifest,
            threshold=self.effective_threshold(cache) if state.semantic is not False else None,
            max_age=state.control.max_age,
        )
        state.outcome = outcome
        if outcome.entry is None:
            return
        try:
            state.cached = CachedResponse.decode(outcome.entry.payload)
        except CodecError as exc:
            cache.warn("decode", "cachekit: dropping a corrupt cache entry: %s", exc)
            entry_id = outcome.entry.entry_id
            outcome.entry = None
            outcome.layer = None
            await cache.delete_entry(state.manifest, entry_id)

    async def after(
        self,
        cache: LLMCache,
        state: RequestState,
        response: CachedResponse,
    ) -> None:
        assert state.outcome is not None
        state.stored = await cache.store(
            state.manifest,
            state.outcome,
            response.encode(),
            ttl=self.ttl,
            usage=response.usage,
            # A body without "model" (Azure deployments, a default model upstream): the
            # response still says which model answered, so the savings can be priced.
            model=state.manifest.model or response.model,
        )

    # -- reporting ----------------------------------------------------------------------

    def failure(
        self,
        cache: LLMCache,
        state: RequestState,
        stage: str,
        exc: BaseException,
        budget: float | None = None,
    ) -> None:
        state.failed = cache.failed(stage, exc, budget, goes_to="the app")

    def finish(
        self,
        state: RequestState | None,
        status: Status,
        *,
        reason: str | None = None,
        started: float | None = None,
        overhead: float | None = None,
    ) -> None:
        """Publish the request's :class:`CacheResult` (``last_result()``, ``on_result``)."""
        outcome = state.outcome if state is not None else None
        entry = outcome.entry if outcome is not None else None
        begin = state.started if state is not None else started
        if overhead is None:
            overhead = time.perf_counter() - begin if begin is not None else 0.0
        layer = outcome.layer if entry is not None and outcome is not None else None
        matched = entry.prompt if entry is not None else None
        if status == "exact" and entry is None and state is not None:
            # Served by an identical request in flight: the same key, from memory.
            layer, matched = "exact", state.manifest.prompt
        result = CacheResult(
            status=status,
            namespace=self.namespace,
            key=state.manifest.exact_digest if state is not None else None,
            layer=layer,  # type: ignore[arg-type]
            similarity=outcome.similarity if outcome is not None else None,
            matched_prompt=matched,
            latency_ms=overhead * 1000.0,
            age_s=(time.time() - entry.created) if entry is not None else None,
            stored=state.stored if state is not None else False,
            reason=reason or (state.failed if state is not None else None),
            tenant=state.manifest.tenant if state is not None else None,
        )
        # The cache's observers (metrics) see middleware requests like decorated calls.
        publish(result, self.cache.observers, self.on_result)


def result_headers(state: RequestState | None, label: str) -> list[tuple[bytes, bytes]]:
    """``X-Cache`` and friends for one handled request."""
    headers = [(b"x-cache", label.encode())]
    if state is None:
        return headers
    outcome = state.outcome
    if label == "HIT" and (outcome is None or outcome.entry is None):
        # Served by an identical request in flight: an exact match, fresh from the app.
        headers.append((b"x-cache-match", b"exact"))
        return headers
    if outcome is None:
        return headers
    entry = outcome.entry
    if entry is not None and outcome.layer:
        headers.append((b"x-cache-match", outcome.layer.encode()))
        headers.append((b"age", str(int(max(0.0, time.time() - entry.created))).encode()))
    # On a miss this is the nearest neighbour's similarity: what a threshold would need.
    if outcome.similarity is not None:
        headers.append((b"x-cache-similarity", f"{outcome.similarity:.4f}".encode()))
    return headers
