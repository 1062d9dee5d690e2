"""The stats report: rows per (namespace, tenant), parsing a counter hash, pricing, projection.

Part of :mod:`cachekit.stats` (import from there); :func:`cachekit.stats.stats` fills it.
"""

from __future__ import annotations

import base64
import binascii
import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from ._attrs import pick_attrs
from ._layout import GLOBAL_TENANT
from ._pricing import Pricing
from ._schema import COUNTERS, SINCE, parse_reason_field, parse_tokens_field

__all__ = [
    "COUNTERS",
    "MIN_PROJECTION_WINDOW_S",
    "SkippedKey",
    "StatsReport",
    "StatsRow",
    "decode_tenant_token",
    "merge_rows",
    "parse_stats_hash",
    "tenant_label",
]

log = logging.getLogger("cachekit.stats")

#: A projection from less data than this is noise (a burst of hits in the first minute
#: would project to thousands of dollars a month), so none is given.
MIN_PROJECTION_WINDOW_S: Final = 3600.0
_DAY: Final = 86400.0


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
    #: ``model -> source`` of each priced model: ``genai-prices``, ``bundled``, ``overrides``.
    priced_by: dict[str, str] = field(default_factory=dict)
    since: float | None = None
    projected_monthly_usd: float | None = None
    #: ``"bypass.<code>"`` / ``"error.<code>"`` -> calls, for the reasons that have a code
    #: (free-text errors count only in :attr:`bypass` / :attr:`error`).
    reasons: dict[str, int] = field(default_factory=dict)

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
        for name, n in other.reasons.items():
            self.reasons[name] = self.reasons.get(name, 0) + n
        self.usd_saved += other.usd_saved
        self.usd_saved_estimated += other.usd_saved_estimated
        self.unpriced_models |= other.unpriced_models
        self.priced_by.update(other.priced_by)
        if other.since is not None:
            self.since = other.since if self.since is None else min(self.since, other.since)
        if other.projected_monthly_usd is not None:
            self.projected_monthly_usd = (self.projected_monthly_usd or 0.0) + (
                other.projected_monthly_usd
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            **pick_attrs(self, "namespace", "tenant", "tenant_token", *COUNTERS, "hit_rate"),
            "tokens_saved": {"input": self.tokens_in, "output": self.tokens_out},
            "tokens_by_model": {m: {"input": a, "output": b} for m, (a, b) in self.tokens.items()},
            "estimated_tokens_by_model": {
                m: {"input": a, "output": b} for m, (a, b) in self.estimated_tokens.items()
            },
            "usd_saved": round(self.usd_saved, 6),
            "usd_saved_estimated_part": round(self.usd_saved_estimated, 6),
            "unpriced_models": sorted(self.unpriced_models),
            "priced_by": dict(sorted(self.priced_by.items())),
            "reasons": dict(sorted(self.reasons.items())),
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
    #: The price source chosen (``genai-prices`` or ``bundled``); each row's
    #: :attr:`StatsRow.priced_by` says which source priced each of its models.
    pricing_source: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "generated_at": self.generated_at,
            "pricing_as_of": self.pricing_as_of,
            "pricing_source": self.pricing_source,
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
        try:
            if name in COUNTERS:
                setattr(row, name, int(text))
            elif name == SINCE:
                since = float(text)
                if not math.isfinite(since):
                    raise ValueError(text)
                row.since = since
            elif parse_reason_field(name) is not None:
                row.reasons[name] = int(text)
            elif (tokens := parse_tokens_field(name)) is not None:
                direction, model, estimated = tokens
                table = row.estimated_tokens if estimated else row.tokens
                table.setdefault(model, [0, 0])[direction == "out"] += int(text)
        except ValueError:
            log.debug("cachekit: ignoring malformed stats field %s=%r", name, text)
            if malformed is not None:
                malformed.append(f"{name}={text[:40]!r}")
    for table, estimated in ((row.tokens, False), (row.estimated_tokens, True)):
        for model, (tin, tout) in table.items():
            # Tokens add up across calls: they are priced at the report's time.
            found = pricing.match(model, at=now)
            if found is None:
                if tin or tout:
                    row.unpriced_models.add(model)
                continue
            row.priced_by[model] = found.source
            usd = found.usd(tin, tout)
            row.usd_saved += usd
            if estimated:
                row.usd_saved_estimated += usd
    if row.since is not None and now - row.since >= MIN_PROJECTION_WINDOW_S:
        row.projected_monthly_usd = row.usd_saved / ((now - row.since) / _DAY) * 30.0
    return row


def merge_rows(rows: Iterable[StatsRow], namespace: str = "*", tenant_token: str = "*") -> StatsRow:
    """Totals of ``rows``."""
    total = StatsRow(namespace=namespace, tenant_token=tenant_token)
    for row in rows:
        total.add(row)
    return total
