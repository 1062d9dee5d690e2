"""Prices from genai-prices (the ``prices`` extra): every provider it knows, dated prices.

One of the two :class:`~cachekit._pricing.PriceSource` implementations (the other is the
bundled table, :mod:`cachekit._price_table`). Imported only when that source is chosen:
genai-prices takes ~0.25 s to import and load its data, paid once at construction.

No network I/O: ``calc_price`` reads the data shipped inside the package. genai-prices can
also fetch newer prices (its ``UpdatePrices``), but only when an application starts that
itself; cachekit never does, and then simply reads what was fetched.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from ._price_table import PROVIDER_RE, ModelPrice
from .errors import CacheConfigError

__all__ = ["GenaiPrices", "available"]

log = logging.getLogger("cachekit.stats")

#: Prices may change at a date or a time of day (off-peak rates): a looked-up price is
#: reused within its minute, so the hit path does not pay genai-prices' ~0.2 ms per call.
_BUCKET_S = 60.0
_MEMO_MAX = 4096


def available() -> bool:
    """Is genai-prices installed (without importing it)?"""
    import importlib.util

    return importlib.util.find_spec("genai_prices") is not None


class GenaiPrices:
    """Model prices from genai-prices at a given time (default: now)."""

    name = "genai-prices"

    def __init__(self) -> None:
        try:
            import genai_prices
        except ImportError as exc:
            raise CacheConfigError(
                "prices from genai-prices need the package: pip install 'cachekit[prices]'"
            ) from exc
        self._calc: Any = genai_prices.calc_price
        self._usage: Any = genai_prices.Usage(input_tokens=0, output_tokens=0)
        self.version: str = genai_prices.__version__
        self._memo: dict[tuple[str, int], tuple[str, ModelPrice] | None] = {}
        # genai-prices loads its 1.6 MB table on the first lookup: here, not on a call.
        self.lookup("gpt-4o-mini")

    @property
    def as_of(self) -> str:
        """Prices are the ones in force when priced: today's date (UTC)."""
        return datetime.now(tz=UTC).date().isoformat()

    def lookup(self, model: str, at: float | None = None) -> tuple[str, ModelPrice] | None:
        """``(genai-prices' model id, price)`` of ``model`` at Unix time ``at`` (default
        now), or None when genai-prices does not know it."""
        when = time.time() if at is None else at
        key = (model, int(when // _BUCKET_S))
        if key in self._memo:
            return self._memo[key]
        name = model.strip().lower()
        found = self._find(name, when)
        if found is None:
            stripped = PROVIDER_RE.sub("", name)
            if stripped != name:
                found = self._find(stripped, when)
        if len(self._memo) >= _MEMO_MAX:
            self._memo.clear()
        self._memo[key] = found
        return found

    def _find(self, name: str, when: float) -> tuple[str, ModelPrice] | None:
        try:
            calc = self._calc(self._usage, name, genai_request_timestamp=_utc(when))
        except (LookupError, ValueError):
            return None
        prices = calc.model_price
        tokens_in, tokens_out = _per_mtok(prices.input_mtok), _per_mtok(prices.output_mtok)
        if tokens_in is None and tokens_out is None:
            return None  # priced per image, second, request...: not by tokens
        return str(calc.model.id), ModelPrice(tokens_in or 0.0, tokens_out or 0.0)


def _utc(when: float) -> datetime:
    return datetime.fromtimestamp(when, tz=UTC)


def _per_mtok(price: Any) -> float | None:
    """USD per 1M tokens; a tiered price (by prompt size) at its base tier.

    The stats add tokens up across calls, so the prompt size of one call (which picks the
    tier) is not known: the base tier is the price of every prompt under the first tier.
    """
    if price is None:
        return None
    base = getattr(price, "base", price)
    return float(base) if isinstance(base, Decimal | int | float) else None
