"""The calibrated score: a logistic model over the signals, weights from a JSON file.

``model.json`` (next to this module) is written by ``benchmarks/fit_verifier.py``:
``{"version": 1, "features": [...], "weights": {...}, "bias": b, "accept_at": t, ...}``.
The probability that the cached answer is right for the new prompt is
``sigmoid(bias + sum(weights[f] * x[f]))``; a hit is served when it is at least
``accept_at``. ``min_similarity`` is the lowest cosine the model was fitted on: below it
the verifier does not extrapolate and rejects. Extra keys (how and on what it was
fitted) are kept in ``meta`` and ignored by the score.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import CacheConfigError
from ._signals import FEATURES

__all__ = ["DEFAULT_MODEL_FILE", "VerifierModel"]

DEFAULT_MODEL_FILE = "model.json"


@dataclass(frozen=True)
class VerifierModel:
    weights: Mapping[str, float]
    bias: float
    accept_at: float
    meta: Mapping[str, Any] = field(default_factory=dict)
    #: Below this cosine the model was not fitted (no pair there): candidates are rejected.
    min_similarity: float = -1.0
    #: Signals that reject a near-copy outright (``near`` >= ``veto_near``): when two
    #: prompts are near-identical as text, a different number, name, negation, order or
    #: scope word is a different question whatever the score says.
    veto: tuple[str, ...] = ()
    veto_near: float = 1.0

    def __post_init__(self) -> None:
        unknown = set(self.weights) - set(FEATURES)
        if unknown:
            raise CacheConfigError(
                f"verifier model: unknown feature(s) {', '.join(sorted(unknown))}; "
                f"known: {', '.join(FEATURES)}"
            )
        for name, w in (*self.weights.items(), ("bias", self.bias)):
            if not isinstance(w, (int, float)) or not math.isfinite(w):
                raise CacheConfigError(f"verifier model: weight {name!r} is not a finite number")
        if not isinstance(self.min_similarity, (int, float)) or not (
            -1.0 <= self.min_similarity <= 1.0
        ):
            raise CacheConfigError(
                f"verifier model: min_similarity must be in [-1, 1], got {self.min_similarity!r}"
            )
        unknown_veto = set(self.veto) - set(FEATURES)
        if unknown_veto:
            raise CacheConfigError(
                f"verifier model: unknown veto signal(s) {', '.join(sorted(unknown_veto))}"
            )
        if not isinstance(self.veto_near, (int, float)) or not 0.0 <= self.veto_near <= 1.0:
            raise CacheConfigError(
                f"verifier model: veto_near must be in [0, 1], got {self.veto_near!r}"
            )
        if not isinstance(self.accept_at, (int, float)) or not 0.0 < self.accept_at < 1.0:
            raise CacheConfigError(
                f"verifier model: accept_at must be in (0, 1), got {self.accept_at!r}"
            )

    def vetoed(self, x: Mapping[str, float]) -> str | None:
        """The first veto signal present in a near-copy, if any."""
        if x.get("near", 0.0) >= self.veto_near:
            for name in self.veto:
                if x.get(name):
                    return name
        return None

    def logit(self, x: Mapping[str, float]) -> float:
        weights = self.weights
        return self.bias + sum(weights.get(name, 0.0) * value for name, value in x.items())

    def score(self, x: Mapping[str, float]) -> float:
        z = self.logit(x)
        if z >= 0:
            return 1.0 / (1.0 + math.exp(-z))
        e = math.exp(z)
        return e / (1.0 + e)

    def contributions(self, x: Mapping[str, float]) -> dict[str, float]:
        return {name: w * x[name] for name, w in self.weights.items() if x.get(name)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "verifier model") -> VerifierModel:
        if not isinstance(data, Mapping):
            raise CacheConfigError(f"{source}: expected a JSON object")
        try:
            version = data["version"]
            weights = data["weights"]
            bias = data["bias"]
            accept_at = data["accept_at"]
        except KeyError as exc:
            raise CacheConfigError(f"{source}: missing key {exc.args[0]!r}") from None
        if version != 1:
            raise CacheConfigError(f"{source}: unsupported version {version!r} (expected 1)")
        if not isinstance(weights, Mapping):
            raise CacheConfigError(f"{source}: 'weights' must be an object")
        skip = ("weights", "bias", "accept_at", "min_similarity", "veto", "veto_near")
        meta = {k: v for k, v in data.items() if k not in skip}
        return cls(
            {str(k): v for k, v in weights.items()},
            bias,
            accept_at,
            meta,
            data.get("min_similarity", -1.0),
            tuple(data.get("veto", ())),
            data.get("veto_near", 1.0),
        )

    @classmethod
    def load(cls, path: str | Path | None = None) -> VerifierModel:
        """The shipped model, or the one in ``path``."""
        try:
            if path is None:
                text = resources.files(__package__).joinpath(DEFAULT_MODEL_FILE).read_text("utf-8")
                source = f"cachekit/verify/{DEFAULT_MODEL_FILE}"
            else:
                text = Path(path).read_text(encoding="utf-8")
                source = str(path)
            data = json.loads(text)
        except (OSError, ValueError) as exc:
            raise CacheConfigError(f"verifier model {path or DEFAULT_MODEL_FILE}: {exc}") from exc
        return cls.from_dict(data, source)

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.meta,
            "version": 1,
            "features": [f for f in FEATURES if f in self.weights],
            "weights": dict(self.weights),
            "bias": self.bias,
            "accept_at": self.accept_at,
            "min_similarity": self.min_similarity,
            "veto": list(self.veto),
            "veto_near": self.veto_near,
        }
