"""Model prices: one seam, two sources, chosen once at construction.

A :class:`PriceSource` maps a model name (and a time) to a price: the bundled table
(``cachekit/pricing.json``, :mod:`cachekit._price_table`) or genai-prices (the ``prices``
extra, :mod:`cachekit._prices_genai`). :class:`Pricing` asks your overrides first, then
the chosen source, then the bundled table, and says which one priced each model.

Part of :mod:`cachekit.stats` (import from there).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, Literal, NamedTuple, Protocol

from ._price_table import ModelPrice, PriceTable, parse_models
from .errors import CacheConfigError

__all__ = ["SOURCES", "ModelPrice", "PriceMatch", "PriceSource", "Pricing", "SourceName"]

log = logging.getLogger("cachekit.stats")

SourceName = Literal["auto", "bundled", "genai-prices"]
#: What ``Pricing.load(source=)`` takes; "auto" is genai-prices when installed.
SOURCES: Final = ("auto", "bundled", "genai-prices")


class PriceSource(Protocol):
    """Prices of models by name. No I/O: lookups run on the hit path (metrics)."""

    #: How reports name this source ("bundled", "genai-prices", "overrides").
    name: str

    @property
    def as_of(self) -> str | None:
        """The date of its prices."""

    def lookup(self, model: str, at: float | None = None) -> tuple[str, ModelPrice] | None:
        """``(priced name, price)`` at Unix time ``at`` (default now), or None."""


class PriceMatch(NamedTuple):
    """A model's price, the name it was priced as, and the source that priced it."""

    name: str
    price: ModelPrice
    source: str

    def usd(self, tokens_in: int, tokens_out: int) -> float:
        return (tokens_in * self.price.input + tokens_out * self.price.output) / 1_000_000


class Pricing:
    """Per-model prices from ``sources``, asked in order: the first that knows a model wins.

    Build it with :meth:`load`: ``Pricing.load()`` (genai-prices when installed, else the
    bundled table), ``Pricing.load(source="bundled")``, ``Pricing.load(overrides)`` with
    yours on top, from a mapping ``{"model": {"input": 0.15, "output": 0.6}}`` (or
    ``[0.15, 0.6]``), or from the path of a JSON file holding such a mapping or
    ``{"models": {...}, "as_of": "..."}``. Prices are USD per 1M tokens.
    """

    def __init__(self, *sources: PriceSource, as_of: str | None = None) -> None:
        if not sources:
            raise CacheConfigError("Pricing needs at least one price source")
        self.sources: tuple[PriceSource, ...] = sources
        self._as_of = as_of
        self._memo: dict[str, PriceMatch | None] = {}
        # Tables price a name the same at any time: their answers can be kept.
        self._fixed = all(isinstance(s, PriceTable) for s in sources)

    @classmethod
    def load(
        cls,
        overrides: Pricing | Mapping[str, Any] | str | os.PathLike[str] | None = None,
        *,
        source: SourceName = "auto",
    ) -> Pricing:
        """Prices from ``source`` (``auto``, ``bundled``, ``genai-prices``), the bundled
        table for models it does not know, and ``overrides`` on top."""
        if isinstance(overrides, Pricing):
            return overrides
        chain: list[PriceSource] = []
        as_of = None
        if overrides is not None:
            table, as_of = _overrides(overrides)
            chain.append(table)
        primary = _primary(source)
        if primary is not None:
            chain.append(primary)
        chain.append(PriceTable.bundled())
        return cls(*chain, as_of=as_of)

    @property
    def source(self) -> str:
        """The chosen source (after overrides): ``genai-prices`` or ``bundled``."""
        named = [s for s in self.sources if s.name != "overrides"]
        return (named or list(self.sources))[0].name

    @property
    def as_of(self) -> str | None:
        """The date of the prices: an overrides file's own, else the chosen source's."""
        if self._as_of is not None:
            return self._as_of
        base = next((s for s in self.sources if s.name == self.source), self.sources[0])
        overridden = any(s.name == "overrides" for s in self.sources)
        return f"{base.as_of} + overrides" if overridden else base.as_of

    @property
    def models(self) -> dict[str, ModelPrice]:
        """The fixed tables' prices merged (overrides over the bundled table)."""
        merged: dict[str, ModelPrice] = {}
        for table in reversed(self.sources):
            if isinstance(table, PriceTable):
                merged.update(table.models)
        return merged

    def match(self, model: str, at: float | None = None) -> PriceMatch | None:
        """The price of ``model`` at Unix time ``at`` (default now), and who priced it."""
        if self._fixed and model in self._memo:
            return self._memo[model]
        found = None
        for src in self.sources:
            got = src.lookup(model, at)
            if got is not None:
                found = PriceMatch(got[0], got[1], src.name)
                break
        if self._fixed and len(self._memo) < 4096:
            self._memo[model] = found
        return found

    def lookup(self, model: str, at: float | None = None) -> tuple[str, ModelPrice] | None:
        """``(priced name, price)`` for a model name as callers spell it, or None."""
        found = self.match(model, at)
        return None if found is None else (found.name, found.price)

    def cost(
        self, model: str, tokens_in: int, tokens_out: int, at: float | None = None
    ) -> float | None:
        """USD for these tokens at the price in force at ``at`` (default now), or None
        for an unpriced model."""
        found = self.match(model, at)
        return None if found is None else found.usd(tokens_in, tokens_out)


def _primary(source: str) -> PriceSource | None:
    """The chosen source, or None when that is the bundled table (always last)."""
    if source not in SOURCES:
        raise CacheConfigError(f"price source must be one of {', '.join(SOURCES)}, got {source!r}")
    if source == "bundled":
        return None
    from . import _prices_genai

    if source == "genai-prices":
        return _prices_genai.GenaiPrices()
    if not _prices_genai.available():
        return None
    try:
        return _prices_genai.GenaiPrices()
    except Exception as exc:  # noqa: BLE001 - a broken optional install must not stop stats
        log.warning(
            "cachekit: genai-prices is installed but failed (%s); using bundled prices", exc
        )
        return None


def _overrides(
    overrides: Mapping[str, Any] | str | os.PathLike[str],
) -> tuple[PriceTable, str | None]:
    """The overrides as a table, and the date their file gives (else None)."""
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
    as_of = None
    if "models" in data and isinstance(data["models"], Mapping):
        as_of = str(data.get("as_of") or "custom")
        data = data["models"]
    models = parse_models(data, origin)
    return PriceTable(models, name="overrides", as_of=as_of, origin=origin), as_of
