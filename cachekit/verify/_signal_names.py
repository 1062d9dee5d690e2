"""The signals' names and record: the features in the model's order, the hard signals,
the reason each feature names, ``Signals`` and the helpers that fill it (re-exported by
``_signals``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from ._text import Word

#: Signals that name a meaning-bearing difference (most telling first).
HARD_SIGNALS: tuple[str, ...] = (
    "number", "identifier", "date", "time", "unit", "negation", "polarity", "entity",
    "order", "swap", "scope", "relation", "question", "lead_modal", "lead_tense", "modality",
    "tense",
)  # fmt: skip

#: Feature names, in the order of the model's weights.
FEATURES: tuple[str, ...] = (
    "cos",
    "clean",
    "number",
    "number_add",
    "identifier",
    "date",
    "date_add",
    "time",
    "unit",
    "negation",
    "polarity",
    "entity",
    "entity_add",
    "order",
    "scope",
    "scope_add",
    "relation",
    "question",
    "question_add",
    "modality",
    "tense",
    "content_sub",
    "content_add",
    "sub_near",
    "lone_sub",
    "add_near",
    "content_n",
    "moved",
    "swap",
    "typo",
    "overlap",
    "near",
    "hard_near",
    "lead_modal",
    "lead_tense",
)
#: Feature -> the reason a rejection names when that feature weighs most against a hit.
SIGNAL_REASONS: dict[str, str] = {
    "number": "number",
    "number_add": "number",
    "identifier": "identifier",
    "date": "date",
    "date_add": "date",
    "time": "time",
    "unit": "unit",
    "negation": "negation",
    "polarity": "polarity",
    "entity": "entity",
    "entity_add": "entity",
    "order": "order",
    "scope": "scope",
    "scope_add": "scope",
    "relation": "relation",
    "question": "question",
    "question_add": "question",
    "modality": "modality",
    "tense": "tense",
    "lead_modal": "modality",
    "lead_tense": "tense",
    "content_sub": "content",
    "content_add": "content",
    "sub_near": "content",
    "lone_sub": "content",
    "add_near": "content",
    "content_n": "content",
    "moved": "order",
    "swap": "order",
    "typo": "content",
    "hard_near": "content",
    "overlap": "content",
    "near": "content",
    "cos": "similarity",
    "clean": "similarity",
}


@dataclass(slots=True)
class Signals:
    values: dict[str, float]
    details: dict[str, str]

    def vector(self) -> list[float]:
        return [self.values.get(name, 0.0) for name in FEATURES]


def _fmt(counter: Counter[str]) -> str:
    return ", ".join(sorted(counter.elements())) or "nothing"


def _counted(name: str, a: Counter[str], b: Counter[str], out: Signals) -> None:
    if _ne(a, b):
        out.values[name] = 1.0
        out.details[name] = f"{_fmt(a - b)} vs {_fmt(b - a)}"


def _ne(x: Counter[str], y: Counter[str]) -> bool:
    """Two counters differ (dict comparison in C; empty ones first, the common case)."""
    return bool(x or y) and dict.__ne__(x, y)


def _words(ws: Iterable[Word]) -> str:
    return ", ".join(w.raw for w in ws)
