"""Word classes of the default verifier: small, closed lists of English function words.

Everything here is about *which words may differ* between two prompts with the same
answer. Filler words may come and go; words of the other classes carry meaning and must
agree (numbers, negation, polarity, scope, dates and times, question words). A word in
none of the lists is a content word: the verifier accepts its absence or substitution
only when the rest of the prompt shows a paraphrase rather than a near-copy.

Forms are lower-case. Polarity pairs are listed by lemma and a few irregular forms; the
stemmer in ``_text`` maps regular inflections (buys, buying, closed) to the lemma.
"""

from __future__ import annotations

from ._lexicon_kinds import (
    ABBREVIATIONS,
    AMBIGUOUS_DATES,
    CUE_CANON,
    CUES,
    DATE_WORDS,
    GAZETTEER,
    HOW_KIND,
    MODAL,
    NUMERIC_ONLY_UNITS,
    TENSE,
    TIME_WORDS,
    UNITS,
    WH,
)
from ._lexicon_pairs import (
    IRREGULAR,
    NEG_PREFIXES,
    PARTICLES,
    POLARITY,
    POLARITY_AXES,
    SYNONYM_GROUPS,
    SYNONYMS,
    union_groups,
)
from ._lexicon_words import (
    CONTRACTIONS,
    FILLER,
    NEGATION,
    NUMBER_WORDS,
    ORDINAL_WORDS,
    RELATIONS,
    RESTRICTING,
    S_IS,
    SCOPE,
)

__all__ = [
    "ABBREVIATIONS",
    "AMBIGUOUS_DATES",
    "CONTRACTIONS",
    "CUES",
    "CUE_CANON",
    "DATE_WORDS",
    "FILLER",
    "GAZETTEER",
    "HOW_KIND",
    "IRREGULAR",
    "MODAL",
    "NEGATION",
    "NEG_PREFIXES",
    "NUMBER_WORDS",
    "NUMERIC_ONLY_UNITS",
    "ORDINAL_WORDS",
    "PARTICLES",
    "POLARITY",
    "POLARITY_AXES",
    "RELATIONS",
    "RESTRICTING",
    "SCOPE",
    "SYNONYMS",
    "SYNONYM_GROUPS",
    "S_IS",
    "TENSE",
    "TIME_WORDS",
    "UNITS",
    "WH",
    "union_groups",
]
