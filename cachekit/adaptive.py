"""Adaptive, verified thresholds: the cache learns, per scope, how close a new prompt must
be to a cached one before the cached answer is served, from checks against the real
function (vCache-style).

With ``LLMCache(..., adaptive=AdaptiveThreshold(delta=0.02))`` a semantic candidate that
passed the threshold and the hit verifier is not always served. While the evidence of its
scope cannot show that candidates that close are right often enough, the cache *checks*
instead: it calls the function anyway (a miss, reason ``adaptive check``), compares the
fresh answer with the cached one (``comparator``), and adds the outcome to the scope's
evidence in Redis (``ck:{<namespace>}:adapt:<scope>``), which every worker reads.

The evidence is a count of same/different answers per similarity bin. The learned
threshold is the lowest bin edge ``t`` such that the one-sided upper confidence bound
(Wilson, ``confidence``) of the error rate is at most ``delta`` both among the checks at
or above ``t`` (what is served: everything from ``t`` up) and among those in the
``window`` just above ``t`` (so many clean checks near 1.0 cannot dilute errors near
``t``). Candidates at or above it are served, but an ``audit`` share of them is still
checked, so a drift shows; candidates below it are checked. The share of checks falls as
evidence grows: with no error seen, about ``z^2 / delta`` clean checks in the window
(≈135 at the defaults) establish a threshold.

What is guaranteed, and measured in ``benchmarks/adaptive_threshold.py``: among the
candidates a scope serves, the share with a different answer is at most ``delta`` with
the stated confidence, *as far as the checked candidates are like the served ones* (both
come from the same stream; the audit keeps checking above the threshold) and the
comparator is right. The threshold is re-chosen after every check, a repeated test the
bound does not correct for: while a scope's evidence is thin its served error can exceed
``delta`` (measured: 6.5% at ``delta=0.05`` in one scope, on 0.8% of its requests).
The evidence is per namespace and scope (function, model, system prompt, parameters),
pooled over tenants: it holds counts only, never a prompt or an answer. The static
threshold stays the floor: only candidates above it are considered, so with adaptive on,
set it lower (e.g. 0.85) and let the evidence decide.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from .errors import CacheConfigError

__all__ = [
    "AdaptiveThreshold",
    "AnswerComparator",
    "EmbeddingAnswers",
    "Evidence",
    "exact_answers",
    "normalised_answers",
]

#: ``comparator(cached_answer_text, fresh_answer_text) -> bool`` (or an awaitable of it):
#: may the cached answer stand for the fresh one?
AnswerComparator = Callable[[str, str], "bool | Awaitable[bool]"]

_SPACE: Final = re.compile(r"\s+")
_PUNCT: Final = re.compile(r"[^\w\s]")


def exact_answers(cached: str, fresh: str) -> bool:
    """The two answers are the same text."""
    return cached == fresh


def normalised_answers(cached: str, fresh: str) -> bool:
    """The same text up to case, Unicode form, punctuation and whitespace."""
    return _norm(cached) == _norm(fresh)


def _norm(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold()
    return _SPACE.sub(" ", _PUNCT.sub(" ", text)).strip()


class EmbeddingAnswers:
    """The two answers mean the same: cosine of their embeddings at least ``min_similarity``
    (for free-text answers an LLM words differently each time)."""

    def __init__(self, embedder: Any, min_similarity: float = 0.9) -> None:
        if not callable(getattr(embedder, "embed", None)):
            raise CacheConfigError("EmbeddingAnswers needs an Embedder (with an embed method)")
        if not -1.0 <= min_similarity <= 1.0:
            raise CacheConfigError(f"min_similarity must be in [-1, 1], got {min_similarity!r}")
        self.embedder = embedder
        self.min_similarity = min_similarity

    async def __call__(self, cached: str, fresh: str) -> bool:
        import numpy as np

        vectors = np.asarray(await self.embedder.embed([cached, fresh]), dtype=np.float64)
        a, b = vectors[0], vectors[1]
        denom = float(np.linalg.norm(a) * np.linalg.norm(b))
        return denom > 0 and float(a @ b) / denom >= self.min_similarity


@dataclass(slots=True)
class Evidence:
    """The checks of one scope: per similarity bin, how many answers were the same and
    how many different. ``bin_width`` wide bins, indexed by ``floor(similarity / w)``."""

    bin_width: float
    same: dict[int, int] = field(default_factory=dict)
    different: dict[int, int] = field(default_factory=dict)

    @classmethod
    def from_hash(cls, raw: Mapping[Any, Any], bin_width: float) -> Evidence:
        """Read ``s:<bin>`` / ``d:<bin>`` counters (what :meth:`field` names)."""
        out = cls(bin_width)
        for key, value in raw.items():
            name = key.decode() if isinstance(key, bytes) else str(key)
            kind, _, index = name.partition(":")
            try:
                n, i = int(value), int(index)
            except ValueError:
                continue  # not written by cachekit: ignored
            n = max(0, n)  # a hand-edited negative count is no evidence, not an error
            if kind == "s":
                out.same[i] = out.same.get(i, 0) + n
            elif kind == "d":
                out.different[i] = out.different.get(i, 0) + n
        return out

    def bin_of(self, similarity: float) -> int:
        return math.floor(similarity / self.bin_width + 1e-9)

    @staticmethod
    def field(index: int, same: bool) -> str:
        return f"{'s' if same else 'd'}:{index}"

    def add(self, similarity: float, same: bool) -> None:
        table = self.same if same else self.different
        i = self.bin_of(similarity)
        table[i] = table.get(i, 0) + 1

    @property
    def checks(self) -> int:
        return sum(self.same.values()) + sum(self.different.values())

    def threshold(self, delta: float, z: float, window: float = 1.0) -> float | None:
        """The learned threshold (see the module docstring), or None while no bin edge
        has evidence enough.

        A bin edge qualifies when the bound holds for everything at or above it *and* for
        the ``window`` just above it on its own: many clean checks at 0.99 must not
        dilute errors at 0.90 into a threshold that serves 0.90 at 50% wrong.
        """
        bins = sorted(set(self.same) | set(self.different), reverse=True)
        span = max(1, round(window / self.bin_width))
        n = errors = 0
        best: int | None = None
        for i in bins:  # from the highest similarity down: evidence at or above bin i
            n += self.same.get(i, 0) + self.different.get(i, 0)
            errors += self.different.get(i, 0)
            if upper_bound(errors, n, z) > delta:
                continue
            local_n = local_errors = 0
            for j in range(i, i + span):
                local_n += self.same.get(j, 0) + self.different.get(j, 0)
                local_errors += self.different.get(j, 0)
            if upper_bound(local_errors, local_n, z) <= delta:
                best = i  # serving everything from here up keeps both bounds
        return None if best is None else best * self.bin_width


def upper_bound(errors: int, n: int, z: float) -> float:
    """One-sided Wilson upper bound of a proportion (1.0 with no evidence)."""
    if n <= 0:
        return 1.0
    p = errors / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return min(1.0, centre + half)


def _not_number(value: object) -> bool:
    """Not a real number (``True`` is an int, NaN compares false with everything)."""
    return isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value)


def _z(confidence: float) -> float:
    from statistics import NormalDist

    return NormalDist().inv_cdf(confidence)


@dataclass(frozen=True)
class AdaptiveThreshold:
    """The adaptive mode's settings (see the module docstring).

    ``delta``: the error rate of served semantic hits to stay under; ``confidence``: of
    the one-sided bound; ``comparator``: same answer or not (default
    :func:`normalised_answers`; :class:`EmbeddingAnswers` for free text); ``audit``: share
    of candidates above the learned threshold still checked; ``bin_width``: of the
    similarity bins; ``refresh_s``: how long a worker reuses its copy of the evidence;
    ``window``: the width just above a threshold whose checks must keep the bound on their
    own; ``compare_timeout_s``: the longest an async comparator may take.
    """

    delta: float = 0.02
    confidence: float = 0.95
    comparator: Any = normalised_answers
    audit: float = 0.02
    bin_width: float = 0.005
    refresh_s: float = 5.0
    window: float = 0.02
    compare_timeout_s: float = 30.0
    z: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name, value, low, high in (
            ("delta", self.delta, 0.0, 1.0),
            ("confidence", self.confidence, 0.5, 1.0),
        ):
            if _not_number(value) or not low < value < high:
                raise CacheConfigError(f"{name} must be in ({low}, {high}), got {value!r}")
        if _not_number(self.audit) or not 0.0 <= self.audit <= 1.0:
            raise CacheConfigError(f"audit must be in [0, 1], got {self.audit!r}")
        if _not_number(self.bin_width) or not 0.001 <= self.bin_width <= 0.1:
            # Narrower bins would make one Redis field per check, all read at each refresh.
            raise CacheConfigError(f"bin_width must be in [0.001, 0.1], got {self.bin_width!r}")
        if _not_number(self.refresh_s) or not 0 <= self.refresh_s < math.inf:
            raise CacheConfigError(
                f"refresh_s must be a finite number >= 0, got {self.refresh_s!r}"
            )
        if _not_number(self.window) or not self.bin_width <= self.window <= 1.0:
            raise CacheConfigError(f"window must be in [bin_width, 1], got {self.window!r}")
        if _not_number(self.compare_timeout_s) or not 0 < self.compare_timeout_s < math.inf:
            raise CacheConfigError(
                f"compare_timeout_s must be positive and finite, got {self.compare_timeout_s!r}"
            )
        if not callable(self.comparator):
            raise CacheConfigError("comparator must be callable(cached_text, fresh_text)")
        object.__setattr__(self, "z", _z(self.confidence))

    def learned(self, evidence: Evidence) -> float | None:
        """The threshold ``evidence`` supports under these settings, or None yet."""
        return evidence.threshold(self.delta, self.z, self.window)

    def serve(self, evidence: Evidence, similarity: float, draw: float) -> bool:
        """Serve a candidate of ``similarity`` (else check it); ``draw`` is uniform [0, 1)."""
        learned = self.learned(evidence)
        if learned is None or similarity + 1e-9 < learned:
            return False
        return draw >= self.audit
