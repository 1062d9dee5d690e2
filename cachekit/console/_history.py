"""Counters over time: snapshots of the stats counters, for the overview's hit-rate chart.

The stats hashes hold running totals (the lookup script counts hits, the store misses),
and adding a time bucket to every hit would cost the hit path a write. Instead the
console takes a snapshot of each (namespace, tenant)'s totals every ``interval`` seconds
into a capped stream ``ck:{ns:T}:history``; the chart plots the differences between
consecutive snapshots. Snapshots exist only for the time a console (or a job calling
:func:`record_snapshot`) ran; any number of them may write: each snapshot is whole.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from .._layout import Space
from .._schema import COUNTERS
from .._stats_report import StatsRow

if TYPE_CHECKING:
    from ..cache import LLMCache

__all__ = ["HISTORY_MAXLEN", "Interval", "Snapshot", "history_key", "intervals", "record_snapshot"]

#: Snapshots kept per (namespace, tenant): a day and more at one a minute.
HISTORY_MAXLEN: Final = 2000
#: A space's history goes a week after its last snapshot (a cleared or idle tenant).
HISTORY_TTL_S: Final = 7 * 86400


def history_key(space: Space) -> str:
    return f"{space.prefix}history"


@dataclass(frozen=True, slots=True)
class Snapshot:
    at: float
    exact: int
    semantic: int
    miss: int
    bypass: int
    error: int
    usd_saved: float


@dataclass(frozen=True, slots=True)
class Interval:
    """What happened between two snapshots (summed over the spaces shown)."""

    start: float
    end: float
    exact: int
    semantic: int
    miss: int
    bypass: int
    error: int
    usd_saved: float

    @property
    def lookups(self) -> int:
        return self.exact + self.semantic + self.miss

    def rate(self, layer: str) -> float | None:
        """The share of lookups served by ``layer`` (``exact``/``semantic``), or None."""
        return getattr(self, layer) / self.lookups if self.lookups else None


async def record_snapshot(
    cache: LLMCache,
    rows: Iterable[StatsRow],
    at: float,
    last: dict[tuple[str, str], tuple[int, ...]] | None = None,
) -> int:
    """Append one snapshot per row (run on the cache's loop); returns how many.

    With ``last`` (the counters each space had at its previous snapshot, updated here), a
    space whose counters did not move gets none: an idle tenant costs nothing. Each
    stream expires :data:`HISTORY_TTL_S` after its last snapshot.
    """
    written = 0
    for row in rows:
        counts = tuple(int(getattr(row, name)) for name in COUNTERS)
        space_id = (row.namespace, row.tenant_token)
        if last is not None:
            if last.get(space_id) == counts:
                continue
            last[space_id] = counts
        fields: dict[Any, Any] = {name: str(n) for name, n in zip(COUNTERS, counts, strict=True)}
        fields["usd"] = repr(row.usd_saved)
        fields["at"] = repr(at)
        key = history_key(Space(*space_id))
        async with cache.redis.pipeline(transaction=False) as pipe:  # one slot: the space's
            pipe.xadd(key, fields, maxlen=HISTORY_MAXLEN, approximate=True)
            pipe.expire(key, HISTORY_TTL_S)
            await pipe.execute()
        written += 1
    return written


async def read_history(
    cache: LLMCache, spaces: Sequence[tuple[str, str]], since: float
) -> dict[tuple[str, str], list[Snapshot]]:
    """Each space's snapshots taken at or after ``since`` (Unix time), oldest first."""
    out: dict[tuple[str, str], list[Snapshot]] = {}
    start = f"{max(0, int(since * 1000))}-0"
    for namespace, token in spaces:
        raw = await cache.redis.xrange(history_key(Space(namespace, token)), min=start)
        snaps: list[Snapshot] = []
        for _id, fields in raw or []:
            f = {_text(k): _text(v) for k, v in (fields or {}).items()}
            try:
                snap = Snapshot(
                    at=float(f["at"]),
                    **{name: int(f[name]) for name in COUNTERS},
                    usd_saved=float(f.get("usd", "0")),
                )
            except (KeyError, ValueError):
                continue
            if math.isfinite(snap.at):
                snaps.append(snap)
        out[(namespace, token)] = snaps
    return out


def _text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def intervals(
    history: dict[tuple[str, str], list[Snapshot]], start: float, end: float, buckets: int
) -> list[Interval]:
    """The counters' growth in ``buckets`` equal slices of [start, end], summed over the
    spaces. A counter that went down (the space was cleared) restarts from zero."""
    width = (end - start) / buckets
    sums = [[0, 0, 0, 0, 0, 0.0] for _ in range(buckets)]
    for snaps in history.values():
        for before, after in itertools.pairwise(snaps):
            if after.at <= before.at:
                continue
            # Growth up to ``after.at`` happened in the slice ending at or after it.
            slot = min(buckets - 1, max(0, math.ceil((after.at - start) / width) - 1))
            for i, name in enumerate(COUNTERS):
                a, b = getattr(after, name), getattr(before, name)
                sums[slot][i] += a - b if a >= b else a
            usd = after.usd_saved - before.usd_saved
            sums[slot][5] += usd if usd >= 0 else after.usd_saved
    return [
        Interval(
            start=start + i * width,
            end=start + (i + 1) * width,
            exact=int(s[0]),
            semantic=int(s[1]),
            miss=int(s[2]),
            bypass=int(s[3]),
            error=int(s[4]),
            usd_saved=float(s[5]),
        )
        for i, s in enumerate(sums)
    ]
