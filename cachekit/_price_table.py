"""A price table matched by model name: the bundled ``cachekit/pricing.json`` and overrides.

One of the two :class:`~cachekit._pricing.PriceSource` implementations (the other is
genai-prices, :mod:`cachekit._prices_genai`). Part of :mod:`cachekit.stats`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any, Final

from .errors import CacheConfigError

__all__ = ["PROVIDER_RE", "ModelPrice", "PriceTable", "parse_models"]


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
#: Routing prefixes that do not change the model: "openai/gpt-4o", "anthropic.claude-...",
#: "us.anthropic.claude-..." (Bedrock cross-region).
PROVIDER_RE: Final = re.compile(
    r"^(?:[\w.-]+/)+|^(?:[a-z]{2,4}\.)?(?:anthropic|openai|meta|mistral|cohere|amazon)\."
)


class PriceTable:
    """Fixed per-model prices, matched by name, dated snapshot names included.

    ``name`` says in reports which table priced a model (``bundled``, ``overrides``);
    ``as_of`` is the date of its prices, ``origin`` where they came from.
    """

    def __init__(
        self,
        models: Mapping[str, ModelPrice],
        *,
        name: str,
        as_of: str | None = None,
        origin: str | None = None,
    ) -> None:
        self.models: dict[str, ModelPrice] = {k.lower(): v for k, v in models.items()}
        self.name = name
        self.as_of = as_of
        self.origin = origin
        # Longest names first, so "gpt-4o-mini-2024-07-18" finds gpt-4o-mini, not gpt-4o.
        self._by_length = sorted(self.models, key=len, reverse=True)
        self._memo: dict[str, tuple[str, ModelPrice] | None] = {}

    @classmethod
    def bundled(cls) -> PriceTable:
        raw = resources.files("cachekit").joinpath("pricing.json").read_text(encoding="utf-8")
        data = json.loads(raw)
        return cls(
            parse_models(data["models"], "cachekit/pricing.json"),
            name="bundled",
            as_of=data.get("as_of"),
            origin=data.get("source"),
        )

    def lookup(self, model: str, at: float | None = None) -> tuple[str, ModelPrice] | None:
        """``(priced name, price)`` for a model name as callers spell it, or None.

        ``at`` is ignored: a table has one price per model.
        """
        if model in self._memo:
            return self._memo[model]
        name = model.strip().lower()
        found = self._match(name)
        if found is None:
            stripped = PROVIDER_RE.sub("", name)
            if stripped != name:
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


def parse_models(data: Mapping[str, Any], origin: str) -> dict[str, ModelPrice]:
    """``{"model": {"input": x, "output": y}}`` (or ``[x, y]``) -> prices, checked."""
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
