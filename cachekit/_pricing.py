"""Model prices: the bundled table (``cachekit/pricing.json``), overrides, name matching, USD.

Part of :mod:`cachekit.stats` (import from there).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Final

from .errors import CacheConfigError

__all__ = ["ModelPrice", "Pricing"]


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
