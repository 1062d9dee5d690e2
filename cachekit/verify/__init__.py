"""Verified semantic hits: a second look at a nearest neighbour before its answer is served.

The vector search finds the cached prompt closest to the new one; a cosine above the
threshold says the two are *about* the same thing, not that they *ask* the same thing
("order 12345" vs "order 12346", "Paris to London" vs "London to Paris" score 0.95+). A
:class:`HitVerifier` is asked, for every semantic candidate, whether the cached answer is
right for the new prompt::

    verdict = verifier.verify(new_prompt, cached_prompt, similarity, scope)
    if not verdict.accept:   # verdict.reason: "number", "order", "negation", ...
        ...                  # treat the candidate as a miss

:class:`TextVerifier` (the default) reads both prompts, compares what must agree
(numbers, identifiers, dates and times, units, negation and opposite words, named
entities and their roles, scope words, question words, the auxiliary that opens a yes/no
question: "Can I" vs "Should I") after reading equal values one way ("6 pm" = "18:00",
"$2.5k" = "$2,500", "12/24/2024" = "December 24, 2024"), and what is left over after
typos, casing, punctuation, filler and reordering, and combines those signals with the
cosine in a small logistic model (``model.json``, fitted by
``benchmarks/fit_verifier.py``). No model call, no network, pure Python: about 0.1 ms
for two 200-character prompts (``benchmarks/RESULTS.md``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from ..errors import VerifierInputError
from ._model import VerifierModel
from ._signals import FEATURES, HARD_SIGNALS, SIGNAL_REASONS, Signals, compare
from ._text import analyse

__all__ = [
    "FEATURES",
    "REASONS",
    "AcceptAll",
    "HitVerifier",
    "TextVerifier",
    "Verdict",
    "VerifierModel",
    "VerifyScope",
    "default_verifier",
]

#: Every reason a rejection can name.
REASONS: frozenset[str] = frozenset(SIGNAL_REASONS.values())
#: Features that describe how alike the prompts are, never why they differ.
_NOT_REASONS = frozenset(("cos", "clean", "overlap", "near", "typo", "moved"))


@dataclass(frozen=True, slots=True)
class VerifyScope:
    """Where the candidate was found (the search only looks inside one scope).

    The default verifier does not use it; it is there for verifiers that learn per
    namespace, model or tenant (adaptive thresholds, issue #11 item 4).
    """

    namespace: str = ""
    model: str | None = None
    tenant: str | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    """Serve the candidate (``accept``) or not, and why.

    ``score`` is the verifier's probability that the cached answer is right for the new
    prompt (for :class:`AcceptAll`, the similarity). ``reason`` names the signal that
    weighed most against the hit (``"number"``, ``"identifier"``, ``"date"``, ``"time"``,
    ``"unit"``, ``"negation"``, ``"polarity"``, ``"entity"``, ``"order"``, ``"scope"``,
    ``"relation"``, ``"question"``, ``"modality"``, ``"tense"``, ``"content"``,
    ``"similarity"``); None when accepted. ``detail`` says what differed, e.g. ``"12345 vs 12346"``.
    """

    accept: bool
    reason: str | None
    score: float
    detail: str | None = None


@runtime_checkable
class HitVerifier(Protocol):
    """Decides whether a semantic candidate's answer may be served for a new prompt."""

    def verify(
        self, new_prompt: str, cached_prompt: str, similarity: float, scope: VerifyScope
    ) -> Verdict: ...


def _check(new_prompt: Any, cached_prompt: Any, similarity: Any) -> float:
    for name, value in (("new_prompt", new_prompt), ("cached_prompt", cached_prompt)):
        if not isinstance(value, str):
            raise VerifierInputError(
                f"{name} must be a str, got {type(value).__name__}", argument=name
            )
    if isinstance(similarity, bool) or not isinstance(similarity, (int, float)):
        raise VerifierInputError(
            f"similarity must be a number (cosine in [-1, 1]), got {type(similarity).__name__}",
            argument="similarity",
        )
    sim = float(similarity)
    if not math.isfinite(sim) or not -1.0 - 1e-6 <= sim <= 1.0 + 1e-6:
        raise VerifierInputError(
            f"similarity must be a cosine in [-1, 1], got {similarity!r}", argument="similarity"
        )
    return min(1.0, max(-1.0, sim))


class AcceptAll:
    """Serve every candidate above the threshold (cachekit before verification)."""

    def verify(
        self, new_prompt: str, cached_prompt: str, similarity: float, scope: VerifyScope
    ) -> Verdict:
        return Verdict(True, None, _check(new_prompt, cached_prompt, similarity))


class TextVerifier:
    """The default verifier: text signals + cosine -> one calibrated score.

    ``model``: the weights (default: the shipped ``model.json``); ``accept_at``: serve when
    the score is at least this (default: the model's own, chosen when it was fitted).
    """

    def __init__(
        self, model: VerifierModel | str | Path | None = None, *, accept_at: float | None = None
    ) -> None:
        if not isinstance(model, VerifierModel):
            model = VerifierModel.load(model)
        if accept_at is not None:
            model = VerifierModel(
                model.weights,
                model.bias,
                accept_at,
                model.meta,
                model.min_similarity,
                model.veto,
                model.veto_near,
            )
        self.model = model

    @property
    def accept_at(self) -> float:
        return self.model.accept_at

    def signals(self, new_prompt: str, cached_prompt: str, similarity: float) -> Signals:
        """The raw signals (for ``explain`` and for fitting)."""
        sim = _check(new_prompt, cached_prompt, similarity)
        return compare(analyse(cached_prompt), analyse(new_prompt), sim)

    def verify(
        self, new_prompt: str, cached_prompt: str, similarity: float, scope: VerifyScope
    ) -> Verdict:
        sim = _check(new_prompt, cached_prompt, similarity)
        if new_prompt == cached_prompt:
            return Verdict(True, None, 1.0)
        if sim < self.model.min_similarity:
            return Verdict(
                False,
                "similarity",
                0.0,
                f"similarity {sim:.3f} is below {self.model.min_similarity:g}, the lowest "
                "the verifier's model was fitted on",
            )
        sig = compare(analyse(cached_prompt), analyse(new_prompt), sim)
        score = self.model.score(sig.values)
        veto = self.model.vetoed(sig.values)
        if veto is not None:
            return Verdict(False, SIGNAL_REASONS[veto], min(score, 0.0), sig.details.get(veto))
        if score >= self.model.accept_at:
            return Verdict(True, None, score)
        reason, detail = self._reason(sig)
        return Verdict(False, reason, score, detail)

    def _reason(self, sig: Signals) -> tuple[str, str | None]:
        """The signal that weighed most against the hit (the cosine if none did).

        A named difference (``HARD_SIGNALS``: number, identifier, date, ..., tense) is the
        reason whenever one is present, the one that costs most; otherwise the content
        feature that costs most ("content"), else "similarity".
        """
        contributions = self.model.contributions(sig.values)
        # a named difference (number, entity, order ...) is the reason when there is one
        hard = [h for h in HARD_SIGNALS if sig.values.get(h)]
        if hard:
            worst = min(hard, key=lambda h: (contributions.get(h, 0.0), HARD_SIGNALS.index(h)))
            return SIGNAL_REASONS[worst], sig.details.get(worst)
        worst, worst_w = "", 0.0
        for name, c in contributions.items():
            if name in _NOT_REASONS:
                continue
            if c < worst_w:
                worst, worst_w = name, c
        if not worst:
            return "similarity", f"similarity {sig.values['cos']:.3f}"
        return SIGNAL_REASONS[worst], sig.details.get(worst)


@lru_cache(maxsize=1)
def default_verifier() -> TextVerifier:
    """The shared default verifier (the shipped model, loaded once)."""
    return TextVerifier()
