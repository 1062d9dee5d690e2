"""Savings and hit statistics, kept in Redis so every worker adds up.

Each (namespace, tenant) pair has one counter hash, ``ck:{ns:T}:stats`` (see
``cachekit/_layout.py``), written in the *same* round trip as the hit or store it counts:

========================  ==============================================================
field                     meaning
========================  ==============================================================
``exact``                 exact-layer hits (the lookup script)
``semantic``              semantic-layer hits (the alias write after a hit)
``miss``                  stores after a miss (the store MULTI)
``bypass`` / ``error``    calls that skipped the cache / where the cache failed; counted
                          in-process and flushed in batches (:class:`OutcomeCounter`)
``tin:<m>`` ``tout:<m>``  input / output tokens hits saved, from the usage the response
                          reported when it was stored (model ``m``)
``ein:<m>`` ``eout:<m>``  the same, for responses that reported no usage: estimated
``since``                 Unix time counting started (first store), for projections
========================  ==============================================================

:func:`stats` reads them all (SCAN, cluster-safe) and prices the saved tokens with
:class:`Pricing` (``cachekit/pricing.json``, overridable).
"""

from __future__ import annotations

import asyncio
import atexit
import base64
import binascii
import json
import logging
import math
import os
import re
import threading
import time
import weakref
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from ._layout import GLOBAL_TENANT, NAMESPACE_RE, encode_tenant
from .errors import CacheConfigError

if TYPE_CHECKING:
    from .cache import LLMCache
    from .result import CacheResult

__all__ = [
    "ModelPrice",
    "OutcomeCounter",
    "Pricing",
    "SkippedKey",
    "StatsReport",
    "StatsRow",
    "decode_tenant_token",
    "estimate_methods",
    "estimate_tokens",
    "estimate_usage",
    "response_text",
    "stats",
    "track_outcomes",
]

log = logging.getLogger("cachekit.stats")

#: Counter fields of the stats hash, in display order.
COUNTERS: Final = ("exact", "semantic", "miss", "bypass", "error")
#: A projection from less data than this is noise (a burst of hits in the first minute
#: would project to thousands of dollars a month), so none is given.
MIN_PROJECTION_WINDOW_S: Final = 3600.0
_DAY: Final = 86400.0
_STATS_KEY_RE: Final = re.compile(r"^ck:\{(?P<ns>[^:{}]+):(?P<tok>[^:{}]+)\}:stats$")


# ----------------------------------------------------------------------------- pricing


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """List price of one model in USD per 1M tokens."""

    input: float
    output: float


# What may follow a priced name for the price to still apply: dated snapshots
# (-2024-07-18, -20241022, -0613), -latest / -preview aliases, Anthropic's -0 aliases,
# Bedrock/Vertex version tags (-v2:0, @20241022). Anything else (-realtime, -32k, -audio,
# a minor version like -4-5) is another product with another price: left unpriced rather
# than guessed.
_SUFFIX_RE: Final = re.compile(
    r"^(?:-(?:\d{4}-\d{2}-\d{2}|\d{8}|\d{4}|0|latest|preview|v\d+(?::\d+)?))*(?:@[\w.-]*)?$"
)
# Routing prefixes that do not change the model: "openai/gpt-4o", "anthropic.claude-...",
# "us.anthropic.claude-..." (Bedrock cross-region).
_PROVIDER_RE: Final = re.compile(
    r"^(?:[\w.-]+/)+|^(?:[a-z]{2,4}\.)?(?:anthropic|openai|meta|mistral|cohere|amazon)\."
)


class Pricing:
    """Per-model prices, matched by name, dated snapshot names included.

    ``Pricing.load()`` is the bundled table (``cachekit/pricing.json``, list prices on the
    date in :attr:`as_of`); ``Pricing.load(overrides)`` merges yours on top, from a
    mapping ``{"model": {"input": 0.15, "output": 0.6}}`` (or ``[0.15, 0.6]``), or from the
    path of a JSON file holding such a mapping or ``{"models": {...}, "as_of": "..."}``.
    """

    def __init__(
        self,
        models: Mapping[str, ModelPrice],
        *,
        as_of: str | None = None,
        source: str | None = None,
    ) -> None:
        self.models: dict[str, ModelPrice] = {k.lower(): v for k, v in models.items()}
        self.as_of = as_of
        self.source = source
        # Longest names first, so "gpt-4o-mini-2024-07-18" finds gpt-4o-mini, not gpt-4o.
        self._by_length = sorted(self.models, key=len, reverse=True)
        self._memo: dict[str, tuple[str, ModelPrice] | None] = {}

    @classmethod
    def bundled(cls) -> Pricing:
        raw = resources.files("cachekit").joinpath("pricing.json").read_text(encoding="utf-8")
        data = json.loads(raw)
        return cls(
            _parse_models(data["models"], "cachekit/pricing.json"),
            as_of=data.get("as_of"),
            source=data.get("source"),
        )

    @classmethod
    def load(
        cls, overrides: Pricing | Mapping[str, Any] | str | os.PathLike[str] | None = None
    ) -> Pricing:
        """The bundled table with ``overrides`` (a mapping or a JSON file path) on top."""
        if isinstance(overrides, Pricing):
            return overrides
        base = cls.bundled()
        if overrides is None:
            return base
        as_of = base.as_of
        origin = "pricing overrides"
        if isinstance(overrides, str | os.PathLike):
            path = Path(overrides)
            origin = str(path)
            try:
                data: Any = json.loads(path.read_text(encoding="utf-8"))
            except OSError as exc:
                raise CacheConfigError(f"cannot read pricing file {path}: {exc}") from exc
            except ValueError as exc:
                raise CacheConfigError(f"pricing file {path} is not valid JSON: {exc}") from exc
        else:
            data = overrides
        if not isinstance(data, Mapping):
            raise CacheConfigError(f"{origin}: expected a JSON object of model prices")
        if "models" in data and isinstance(data["models"], Mapping):
            as_of = str(data.get("as_of") or "custom")
            data = data["models"]
        else:
            as_of = f"{base.as_of} + overrides"
        merged = dict(base.models)
        merged.update(_parse_models(data, origin))
        return cls(merged, as_of=as_of, source=base.source)

    def lookup(self, model: str) -> tuple[str, ModelPrice] | None:
        """``(priced name, price)`` for a model name as callers spell it, or None."""
        if model in self._memo:
            return self._memo[model]
        found = self._match(model.strip().lower())
        if found is None:
            stripped = _PROVIDER_RE.sub("", model.strip().lower())
            if stripped != model.strip().lower():
                found = self._match(stripped)
        if len(self._memo) < 4096:  # model names are few; bound it anyway
            self._memo[model] = found
        return found

    def _match(self, name: str) -> tuple[str, ModelPrice] | None:
        price = self.models.get(name)
        if price is not None:
            return name, price
        for known in self._by_length:
            if name.startswith(known) and _SUFFIX_RE.match(name[len(known) :]):
                return known, self.models[known]
        return None

    def cost(self, model: str, tokens_in: int, tokens_out: int) -> float | None:
        """USD for these tokens at list price, or None for an unpriced model."""
        found = self.lookup(model)
        if found is None:
            return None
        price = found[1]
        return (tokens_in * price.input + tokens_out * price.output) / 1_000_000


def _parse_models(data: Mapping[str, Any], origin: str) -> dict[str, ModelPrice]:
    out: dict[str, ModelPrice] = {}
    for name, value in data.items():
        if isinstance(value, Mapping):
            pair = (value.get("input"), value.get("output", 0.0))
        elif isinstance(value, list | tuple) and len(value) == 2:
            pair = (value[0], value[1])
        else:
            raise CacheConfigError(
                f"{origin}: price of {name!r} must be {{'input': x, 'output': y}} or [x, y] "
                f"(USD per 1M tokens), got {value!r}"
            )
        for part in pair:
            if isinstance(part, bool) or not isinstance(part, int | float) or part < 0:
                raise CacheConfigError(
                    f"{origin}: prices of {name!r} must be non-negative numbers, got {value!r}"
                )
        out[str(name).lower()] = ModelPrice(float(pair[0]), float(pair[1]))  # type: ignore[arg-type]
    return out


# ---------------------------------------------------------------------- token estimates


def response_text(value: Any) -> str:
    """The text an LLM response carries (OpenAI, Anthropic, plain str, stream chunks).

    Used only to *estimate* output tokens when the response reported no usage.
    """
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        value = dump(mode="json")
    if isinstance(value, list | tuple):
        return "".join(response_text(item) for item in value)
    if isinstance(value, Mapping):
        texts: list[str] = []
        for choice in value.get("choices") or ():
            if not isinstance(choice, Mapping):
                continue
            for part in (choice.get("message"), choice.get("delta")):
                if isinstance(part, Mapping) and isinstance(part.get("content"), str):
                    texts.append(part["content"])
            if isinstance(choice.get("text"), str):
                texts.append(choice["text"])
        content = value.get("content")
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            texts.extend(
                p["text"]
                for p in content
                if isinstance(p, Mapping) and isinstance(p.get("text"), str)
            )
        delta = value.get("delta")  # Anthropic stream event
        if isinstance(delta, Mapping) and isinstance(delta.get("text"), str):
            texts.append(delta["text"])
        if texts:
            return "".join(texts)
        return json.dumps(value, default=str, ensure_ascii=False)
    return str(value)


class _Encodings:
    """tiktoken encodings, loaded once each on a daemon thread, never on the caller's.

    tiktoken fetches its BPE files over the network on first use (and may hang where
    there is none); a store must never wait for that, so until an encoding is loaded (or
    when it cannot be) the estimate is the 4-characters-per-token rule of thumb.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state: dict[str, Any] = {}

    def get(self, name: str) -> Any:
        with self._lock:
            if name in self._state:
                return self._state[name]
            self._state[name] = None
        threading.Thread(
            target=self._load, args=(name,), name="cachekit-tiktoken", daemon=True
        ).start()
        return None

    def _load(self, name: str) -> None:
        try:
            import tiktoken

            encoding: Any = tiktoken.get_encoding(name)
        except Exception as exc:  # noqa: BLE001 - any failure means "use the heuristic"
            log.debug("tiktoken encoding %s unavailable (%s); estimating 4 chars/token", name, exc)
            encoding = False
        with self._lock:
            self._state[name] = encoding


_encodings = _Encodings()
_O200K_PREFIXES: Final = ("gpt-4o", "gpt-4.1", "gpt-5", "o1", "o3", "o4", "chatgpt-4o")
#: Names of the two ways :func:`estimate_tokens` counts, as :func:`estimate_methods` reports.
TIKTOKEN: Final = "tiktoken"
CHARS_PER_TOKEN: Final = "4 chars/token"
_methods: Counter[str] = Counter()
_methods_lock = threading.Lock()


def estimate_methods() -> dict[str, int]:
    """How many token estimates this process made each way (``TIKTOKEN``, ``CHARS_PER_TOKEN``).

    Cumulative; take a copy before and after to learn what some piece of work used (the
    demo does, so it never claims tiktoken counted what the rule of thumb did).
    """
    with _methods_lock:
        return dict(_methods)


def _count_method(method: str) -> None:
    with _methods_lock:
        _methods[method] += 1


def estimate_tokens(text: str, model: str | None = None) -> int:
    """Tokens in ``text``: tiktoken when its encoding is available, else ``ceil(chars/4)``.

    Always an estimate (other vendors' tokenizers differ); never blocks on a download.
    """
    if not text:
        return 0
    name = "cl100k_base"
    if model and model.lower().split("/")[-1].startswith(_O200K_PREFIXES):
        name = "o200k_base"
    encoding = _encodings.get(name)
    if encoding:
        try:
            tokens = len(encoding.encode(text, disallowed_special=()))
        except Exception:  # an estimate must never fail the store
            log.debug("tiktoken failed; estimating 4 chars/token", exc_info=True)
        else:
            _count_method(TIKTOKEN)
            return tokens
    _count_method(CHARS_PER_TOKEN)
    return math.ceil(len(text) / 4)


def estimate_usage(prompt: str | None, value: Any, model: str | None) -> tuple[int, int]:
    """Estimated ``(input, output)`` tokens of a call whose response reported no usage.

    The input side counts the prompt only (system prompt and history are in the scope and
    are not kept as text), so it under-estimates multi-turn calls: savings stay on the
    conservative side.
    """
    return estimate_tokens(prompt or "", model), estimate_tokens(response_text(value), model)


# ---------------------------------------------------------------------------- reports


def decode_tenant_token(token: str) -> str | None:
    """The tenant id of a ``b`` token; None for the global tenant or a hashed (``h``) one."""
    if token == GLOBAL_TENANT or not token.startswith("b"):
        return None
    body = token[1:]
    try:
        return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode(
            "utf-8", "surrogatepass"
        )
    except (binascii.Error, ValueError):
        return None


def tenant_label(token: str) -> str:
    """How a tenant is shown: its id when decodable, ``(none)`` for no tenant, else the token."""
    if token == GLOBAL_TENANT:
        return "(none)"
    decoded = decode_tenant_token(token)
    return decoded if decoded is not None else token


@dataclass(slots=True)
class StatsRow:
    """Counters and savings of one (namespace, tenant), or the totals of several."""

    namespace: str
    tenant_token: str
    exact: int = 0
    semantic: int = 0
    miss: int = 0
    bypass: int = 0
    error: int = 0
    #: ``model -> [input, output]`` tokens saved, as reported by the stored responses.
    tokens: dict[str, list[int]] = field(default_factory=dict)
    #: The same for responses without usage (estimated).
    estimated_tokens: dict[str, list[int]] = field(default_factory=dict)
    usd_saved: float = 0.0
    #: Part of :attr:`usd_saved` that comes from estimated token counts.
    usd_saved_estimated: float = 0.0
    unpriced_models: set[str] = field(default_factory=set)
    since: float | None = None
    projected_monthly_usd: float | None = None

    @property
    def tenant(self) -> str:
        return tenant_label(self.tenant_token)

    @property
    def hits(self) -> int:
        return self.exact + self.semantic

    @property
    def lookups(self) -> int:
        """Calls that went through the cache: hits + misses (not bypasses or errors)."""
        return self.exact + self.semantic + self.miss

    @property
    def hit_rate(self) -> float | None:
        return self.hits / self.lookups if self.lookups else None

    @property
    def tokens_in(self) -> int:
        return sum(v[0] for v in self.tokens.values()) + sum(
            v[0] for v in self.estimated_tokens.values()
        )

    @property
    def tokens_out(self) -> int:
        return sum(v[1] for v in self.tokens.values()) + sum(
            v[1] for v in self.estimated_tokens.values()
        )

    @property
    def has_estimates(self) -> bool:
        return any(a or b for a, b in self.estimated_tokens.values())

    def add(self, other: StatsRow) -> None:
        for name in COUNTERS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for mine, theirs in (
            (self.tokens, other.tokens),
            (self.estimated_tokens, other.estimated_tokens),
        ):
            for model, (tin, tout) in theirs.items():
                slot = mine.setdefault(model, [0, 0])
                slot[0] += tin
                slot[1] += tout
        self.usd_saved += other.usd_saved
        self.usd_saved_estimated += other.usd_saved_estimated
        self.unpriced_models |= other.unpriced_models
        if other.since is not None:
            self.since = other.since if self.since is None else min(self.since, other.since)
        if other.projected_monthly_usd is not None:
            self.projected_monthly_usd = (self.projected_monthly_usd or 0.0) + (
                other.projected_monthly_usd
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "tenant": self.tenant,
            "tenant_token": self.tenant_token,
            "exact": self.exact,
            "semantic": self.semantic,
            "miss": self.miss,
            "bypass": self.bypass,
            "error": self.error,
            "hit_rate": self.hit_rate,
            "tokens_saved": {"input": self.tokens_in, "output": self.tokens_out},
            "tokens_by_model": {m: {"input": a, "output": b} for m, (a, b) in self.tokens.items()},
            "estimated_tokens_by_model": {
                m: {"input": a, "output": b} for m, (a, b) in self.estimated_tokens.items()
            },
            "usd_saved": round(self.usd_saved, 6),
            "usd_saved_estimated_part": round(self.usd_saved_estimated, 6),
            "unpriced_models": sorted(self.unpriced_models),
            "since": self.since,
            "projected_monthly_usd": (
                None if self.projected_monthly_usd is None else round(self.projected_monthly_usd, 2)
            ),
        }


@dataclass(frozen=True, slots=True)
class SkippedKey:
    """A key matching the stats pattern that was not (wholly) counted, and why."""

    key: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"key": self.key, "reason": self.reason}


@dataclass(slots=True)
class StatsReport:
    """What :func:`stats` returns: one row per (namespace, tenant) and their totals.

    ``skipped_keys`` lists keys under the stats pattern that cachekit did not write as it
    expects (another type than a hash, a name it does not parse: not counted at all; a
    hash with malformed fields: counted without those fields), so one stray key never
    breaks the report.
    """

    rows: list[StatsRow]
    totals: StatsRow
    generated_at: float
    pricing_as_of: str | None
    skipped_keys: list[SkippedKey] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "generated_at": self.generated_at,
            "pricing_as_of": self.pricing_as_of,
            "rows": [r.to_dict() for r in self.rows],
            "totals": self.totals.to_dict(),
            "skipped_keys": [k.to_dict() for k in self.skipped_keys],
        }


def _text(value: Any) -> str:
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else str(value)


def parse_stats_hash(
    namespace: str,
    token: str,
    raw: Mapping[Any, Any],
    pricing: Pricing,
    now: float,
    malformed: list[str] | None = None,
) -> StatsRow:
    """One stats hash -> a priced :class:`StatsRow` (unknown fields are ignored).

    Fields with values cachekit never writes (``exact=abc``, a non-finite ``since``) are
    left out and, when ``malformed`` is given, appended to it as ``name=value``.
    """
    row = StatsRow(namespace=namespace, tenant_token=token)
    for key, value in raw.items():
        name, text = _text(key), _text(value)
        kind, _, model = name.partition(":")
        try:
            if name in COUNTERS:
                setattr(row, name, int(text))
            elif name == "since":
                since = float(text)
                if not math.isfinite(since):
                    raise ValueError(text)
                row.since = since
            elif model and kind in ("tin", "tout"):
                row.tokens.setdefault(model, [0, 0])[kind == "tout"] += int(text)
            elif model and kind in ("ein", "eout"):
                row.estimated_tokens.setdefault(model, [0, 0])[kind == "eout"] += int(text)
        except ValueError:
            log.debug("cachekit: ignoring malformed stats field %s=%r", name, text)
            if malformed is not None:
                malformed.append(f"{name}={text[:40]!r}")
    for table, estimated in ((row.tokens, False), (row.estimated_tokens, True)):
        for model, (tin, tout) in table.items():
            usd = pricing.cost(model, tin, tout)
            if usd is None:
                if tin or tout:
                    row.unpriced_models.add(model)
                continue
            row.usd_saved += usd
            if estimated:
                row.usd_saved_estimated += usd
    if row.since is not None and now - row.since >= MIN_PROJECTION_WINDOW_S:
        row.projected_monthly_usd = row.usd_saved / ((now - row.since) / _DAY) * 30.0
    return row


def stats_pattern(namespace: str | None, tenant_token: str | None) -> str:
    """SCAN pattern of the stats hashes to read (namespaces and tokens hold no glob chars)."""
    return f"ck:{{{namespace or '*'}:{tenant_token or '*'}}}:stats"


async def stats(
    cache: LLMCache,
    namespace: str | None = None,
    tenant: str | None = None,
    *,
    tenant_token: str | None = None,
    pricing: Pricing | Mapping[str, Any] | str | os.PathLike[str] | None = None,
) -> StatsReport:
    """Hit, miss and savings counters of every worker, per (namespace, tenant), with totals.

    ``namespace``/``tenant`` narrow the report (``tenant`` is the id as your code passes
    it; ``tenant_token`` the encoded form, e.g. ``"_"`` for calls without a tenant).
    Without both it SCANs ``ck:{*}:stats`` (every primary on a cluster), which costs time
    proportional to the key count: run it from a dashboard job, not per request.
    """
    if namespace is not None and not NAMESPACE_RE.match(namespace):
        raise CacheConfigError(f"namespace must match {NAMESPACE_RE.pattern}, got {namespace!r}")
    if tenant is not None:
        tenant_token = encode_tenant(tenant)
    table = Pricing.load(pricing)
    for observer in cache.observers:
        if isinstance(observer, OutcomeCounter):
            await observer.flush()
    raw_rows, skipped = await cache.run(_read_stats, cache, namespace, tenant_token)
    now = time.time()
    rows = []
    for ns, tok, raw in raw_rows:
        malformed: list[str] = []
        rows.append(parse_stats_hash(ns, tok, raw, table, now, malformed))
        if malformed:
            key = f"ck:{{{ns}:{tok}}}:stats"
            skipped.append(SkippedKey(key, "malformed fields not counted: " + ", ".join(malformed)))
    rows.sort(key=lambda r: (r.namespace, r.tenant_token))
    skipped.sort(key=lambda k: k.key)
    if skipped:
        cache.warn(
            "stats-skipped",
            "cachekit: stats skipped %d key(s) it did not write as expected: %s",
            len(skipped),
            ", ".join(k.key for k in skipped[:10]),
        )
    return StatsReport(
        rows=rows,
        totals=merge_rows(rows),
        generated_at=now,
        pricing_as_of=table.as_of,
        skipped_keys=skipped,
    )


async def _read_stats(
    cache: LLMCache, namespace: str | None, tenant_token: str | None
) -> tuple[list[tuple[str, str, dict[Any, Any]]], list[SkippedKey]]:
    """The stats hashes to count, and the keys under the pattern that are not ones.

    Every reply is taken as it comes (``raise_on_error=False``, ``return_exceptions``):
    a WRONGTYPE on one key must not lose the others.
    """
    from redis.exceptions import ResponseError

    client = cache.redis
    if namespace is not None and tenant_token is not None:
        keys: list[Any] = [stats_pattern(namespace, tenant_token)]
    else:
        # redis-py's scan_iter visits every primary of a cluster client.
        pattern = stats_pattern(namespace, tenant_token)
        keys = [k async for k in client.scan_iter(match=pattern, count=1000)]
    replies: list[Any] = []
    if _is_cluster(cache):
        # One command per key, never a cross-slot pipeline: when such a pipeline meets a
        # dead node, redis-py closes the *whole* cluster client, failing every other
        # caller's command (a stats read during a failover would take the cache down).
        limit = asyncio.Semaphore(32)

        async def one(key: Any) -> Any:
            async with limit:
                return await client.hgetall(key)

        replies = list(await asyncio.gather(*(one(k) for k in keys), return_exceptions=True))
    else:
        for start in range(0, len(keys), 500):
            async with client.pipeline(transaction=False) as pipe:
                for key in keys[start : start + 500]:
                    pipe.hgetall(key)
                replies.extend(await pipe.execute(raise_on_error=False))
    out: list[tuple[str, str, dict[Any, Any]]] = []
    skipped: list[SkippedKey] = []
    for key, raw in zip(keys, replies, strict=True):
        name = _text(key)
        if isinstance(raw, ResponseError) and "WRONGTYPE" in str(raw):
            kind = _text(await client.type(key))
            skipped.append(SkippedKey(name, f"a {kind}, not a hash: not cachekit's"))
            continue
        if isinstance(raw, BaseException):
            raise raw  # a real failure (connection, cluster): the caller reports it
        match = _STATS_KEY_RE.match(name)
        if match is None:
            skipped.append(SkippedKey(name, "not a cachekit stats key name"))
            continue
        if not raw:
            continue  # expired or deleted since the SCAN
        out.append((match["ns"], match["tok"], raw))
    return out, skipped


def _is_cluster(cache: LLMCache) -> bool:
    return bool(getattr(cache, "cluster", False))


# ------------------------------------------------------------- bypasses and errors


class OutcomeCounter:
    """An observer that adds bypasses and errors to the Redis stats.

    They cannot ride on a hit's or store's round trip (a bypass makes none, and an error
    usually means Redis is unreachable), so they are counted in-process and written by
    one pipelined round trip on the cache's event loop, off the caller's path. At most one
    flush is in flight: what arrives meanwhile goes in the next one, so under load the
    batches grow instead of the round trips. A failed flush keeps its counts and waits
    ``retry_interval`` seconds before trying again (no hot loop while Redis is down).
    Flushes are the cache's background work, so ``close()`` waits for them; what is left
    is flushed at interpreter exit, and :func:`stats` flushes first.
    Install with :func:`track_outcomes`.
    """

    def __init__(self, cache: LLMCache, retry_interval: float = 5.0) -> None:
        if retry_interval <= 0:
            raise CacheConfigError(f"retry_interval must be positive, got {retry_interval!r}")
        self._cache_ref = weakref.ref(cache)
        self.retry_interval = retry_interval
        self._lock = threading.Lock()
        self._pending: Counter[tuple[str, str, str]] = Counter()
        self._retry_at = -math.inf
        self._inflight = False
        atexit.register(_flush_at_exit, weakref.ref(self))

    @property
    def pending(self) -> dict[tuple[str, str, str], int]:
        with self._lock:
            return dict(self._pending)

    def __call__(self, result: CacheResult) -> None:
        status = result.status
        if status != "bypass" and status != "error":
            # Hits are counted by the lookup (or, served from an identical call in flight,
            # by the decorator), misses by the store MULTI.
            return
        tenant = getattr(result, "tenant", None)
        token = encode_tenant(tenant) if isinstance(tenant, str) else GLOBAL_TENANT
        with self._lock:
            self._pending[(result.namespace, token, status)] += 1
            if self._inflight or time.monotonic() < self._retry_at:
                return
            self._inflight = True
        self._schedule()

    def _schedule(self) -> None:
        """Queue one flush as the cache's background work (``_inflight`` is held)."""
        cache = self._cache_ref()
        queued = False
        if cache is not None:
            try:
                queued = cache.background(self._flush_guarded)
            except Exception as exc:  # noqa: BLE001 - a closed cache: counts wait for exit
                log.debug("cachekit: cannot queue the stats flush: %s", exc)
        if not queued:
            with self._lock:
                self._inflight = False

    async def _flush_guarded(self) -> None:
        try:
            await self._flush_now()
        except Exception as exc:  # noqa: BLE001 - an observer's flush must never surface
            log.debug("cachekit: could not flush bypass/error counts (will retry): %s", exc)
            with self._lock:
                self._retry_at = time.monotonic() + self.retry_interval
                self._inflight = False
            return
        with self._lock:
            more = bool(self._pending)
            if not more:
                self._inflight = False
        if more:
            self._schedule()

    async def flush(self) -> None:
        """Write the pending counts now (from any event loop); raise if Redis fails."""
        cache = self._cache_ref()
        if cache is None:
            return
        await cache.run(self._flush_now)

    async def _flush_now(self) -> None:
        cache = self._cache_ref()
        with self._lock:
            batch, self._pending = self._pending, Counter()
        if cache is None or not batch:
            return
        by_key: dict[str, list[tuple[str, int]]] = {}
        for (namespace, token, status), n in batch.items():
            by_key.setdefault(f"ck:{{{namespace}:{token}}}:stats", []).append((status, n))
        now = repr(time.time())
        client = cache.redis

        async def write(groups: Mapping[str, list[tuple[str, int]]]) -> None:
            # MULTI: all of it or none of it, so a retry never counts twice. On a cluster
            # each key is its own MULTI (one slot each, see _read_stats for why never
            # one cross-slot pipeline); elsewhere one MULTI carries every key.
            async with client.pipeline(transaction=True) as pipe:
                for key, items in groups.items():
                    for status, n in items:
                        pipe.hincrby(key, status, n)
                    pipe.hsetnx(key, "since", now)
                await pipe.execute()

        failed: list[str] = []
        error: BaseException | None = None
        try:
            async with asyncio.timeout(cache.budgets.store):
                if _is_cluster(cache):
                    keys = list(by_key)
                    results = await asyncio.gather(
                        *(write({k: by_key[k]}) for k in keys), return_exceptions=True
                    )
                    for key, res in zip(keys, results, strict=True):
                        if isinstance(res, BaseException):
                            failed.append(key)
                            error = error or res
                else:
                    await write(by_key)
        except BaseException as exc:  # noqa: BLE001 - re-raised below, counts kept first
            failed, error = list(by_key), exc
        if failed:
            with self._lock:
                for key in failed:
                    namespace, _, token = key[4:].split("}", 1)[0].partition(":")
                    for status, n in by_key[key]:
                        self._pending[(namespace, token, status)] += n
            assert error is not None
            raise error

    def flush_sync(self, timeout: float = 2.0) -> None:
        """Blocking flush for sync code and exit handlers."""
        cache = self._cache_ref()
        if cache is None or not self.pending:
            return
        cache.run_sync(self._flush_now, timeout=timeout)


def _flush_at_exit(ref: weakref.ReferenceType[OutcomeCounter]) -> None:
    counter = ref()
    if counter is None:
        return
    try:
        counter.flush_sync()
    except Exception as exc:  # noqa: BLE001 - exit handlers must not raise
        log.debug("cachekit: bypass/error counts lost at exit: %s", exc)


def track_outcomes(cache: LLMCache, retry_interval: float = 5.0) -> OutcomeCounter:
    """Count bypasses and errors of ``cache`` in its Redis stats (idempotent)."""
    for observer in cache.observers:
        if isinstance(observer, OutcomeCounter):
            return observer
    counter = OutcomeCounter(cache, retry_interval)
    cache.observers.append(counter)
    return counter


def merge_rows(rows: Iterable[StatsRow], namespace: str = "*", tenant_token: str = "*") -> StatsRow:
    """Totals of ``rows``."""
    total = StatsRow(namespace=namespace, tenant_token=tenant_token)
    for row in rows:
        total.add(row)
    return total
