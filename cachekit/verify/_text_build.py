"""What ``_text`` builds for one prompt: the ``Word`` and ``Analysis`` records, number
parsing, the per-prompt ``_Builder`` and the cached per-word facts (``_Info``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import NamedTuple

from . import _lexicon as lx
from ._text_forms import (
    _AND_OR,
    _ORDINAL_SUFFIX,
    _POLARITY,
    _SYNONYMS,
    _TIME_UNITS,
    polarity_stem,
    stem,
)


class Word(NamedTuple):
    """A plain content word: its canonical key, its stem and whether it names something."""

    key: str
    stem: str
    raw: str  # folded (lower case) surface form
    entity: bool


@dataclass(frozen=True, slots=True)
class Analysis:
    text: str
    content: tuple[Word, ...]
    numbers: Counter[str]
    ones: int  # "one" used as a word (may stand for 1)
    identifiers: Counter[str]
    dates: Counter[str]
    times: Counter[str]
    units: Counter[str]
    ordinals: Counter[str]
    scope: Counter[str]
    relations: Counter[str]
    wh: frozenset[str]
    modal: frozenset[str]
    tense: frozenset[str]
    lead: frozenset[str]  # classes of the auxiliaries opening yes/no questions
    formula: str  # operators and numbers in order, when the text has "=" or "^"
    who: str  # "subject" / "object": what "who" asks for ("who killed X" / "who did X kill")
    negations: int
    neg_targets: frozenset[str]  # the words negations apply to
    stems: frozenset[str]  # every token's polarity stem, filler included
    polarity: dict[str, frozenset[int]]  # polarity axis -> the sides this text takes
    folded: tuple[str, ...]  # every token, folded, in order (for compound joins)
    roles: dict[str, str]  # token key -> governing cue, for keys that occur once
    once: frozenset[str]  # token keys (content, numbers, units, ...) that occur once
    keys: frozenset[str]  # every token key
    left: dict[str, str]  # once-key of a name or number -> the token before it


def _number(text: str) -> str:
    plain = text.replace(",", "")
    if "." in plain:
        plain = plain.rstrip("0").rstrip(".") or "0"
    if len(plain) > 1:
        plain = plain.lstrip("0") or "0"
    return plain


def _words_to_number(words: list[str]) -> str:
    total, current = 0, 0
    for w in words:
        v = lx.NUMBER_WORDS[w]
        if v in (100, 1000, 1_000_000, 1_000_000_000):
            current = max(current, 1) * v
            if v >= 1000:
                total, current = total + current, 0
        else:
            current += v
    return str(total + current)


class _Builder:
    """Mutable state while one text is read (kept off the frozen result)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.content: list[Word] = []
        self.numbers: Counter[str] = Counter()
        self.ones = 0
        self.identifiers: Counter[str] = Counter()
        self.dates: Counter[str] = Counter()
        self.times: Counter[str] = Counter()
        self.units: Counter[str] = Counter()
        self.ordinals: Counter[str] = Counter()
        self.scope: Counter[str] = Counter()
        self.relations: Counter[str] = Counter()
        self.wh: set[str] = set()
        self.modal: set[str] = set()
        self.tense: set[str] = set()
        self.negations = 0
        self.stems: set[str] = set()
        self.polarity: dict[str, set[int]] = {}
        self.folded: list[str] = []
        # (key, cue) for every meaningful token, in order, for the roles
        self.keyed: list[tuple[str, str]] = []
        self.counts: dict[str, int] = {}
        self.cue = ""  # the last cue word seen, until a meaningful token takes it
        self.left: dict[str, str] = {}  # names and numbers -> the token before them
        self.prev_entity = False
        self.name_cue = ""  # the cue the last name took
        self.pending_negations = 0
        self.negated = 0
        self.neg_targets: set[str] = set()
        self.comma = False  # a comma since the last meaningful token
        self.pending_numwords: list[str] = []
        self.last_was_number = False
        self.last_raw = ""  # the previous alphabetic token, folded

    # -- helpers
    def mark(self, key: str, name: bool = False, track: bool = False) -> None:
        cue = self.cue
        if not cue and key[0] == "#" and self.prev_entity:
            cue = self.name_cue  # "than the RTX 3090": the number is the name's
        if not cue and self.keyed and len(self.folded) >= 2 and self.folded[-2] in _AND_OR:
            cue = self.keyed[-1][1]  # "of 500 and 1000": both have the role
        self.keyed.append((key, cue))
        self.counts[key] = self.counts.get(key, 0) + 1
        self.cue = ""
        if name:
            self.name_cue = cue
        if self.pending_negations:
            # what a negation applies to: the next word, and the next that is not a name
            # ("isn't England returning" = "England is not returning")
            self.neg_targets.add(key)
            if not name:
                self.negated += 1
                self.pending_negations = 0
        if name or track or key[0] == "#":
            before = self.folded[-2] if len(self.folded) >= 2 else ""
            self.left[key] = "<list>" if self.prev_entity and self.comma else before
        self.prev_entity = name
        self.comma = False

    def flush_numwords(self) -> None:
        if self.pending_numwords:
            value = _words_to_number(self.pending_numwords)
            self.numbers[value] += 1
            self.mark(f"#{value}")
            self.pending_numwords = []
            self.last_was_number = True

    def add_number(self, value: str, amount: bool = False) -> None:
        """``amount``: written as one ("1,000", "$2024"), so never a year."""
        if not amount and len(value) == 4 and value.isdigit() and 1000 <= int(value) <= 2100:
            self.dates[f"year:{value}"] += 1
        elif len(value) >= 5 and value.isdigit():
            self.identifiers[value] += 1
        else:
            self.numbers[value] += 1
        self.mark(f"#{value}")
        self.last_was_number = True


def _is_entity(raw: str, folded: str, sentence_start: bool, shouty: bool) -> bool:
    if folded in lx.GAZETTEER:
        return True
    if shouty or len(raw) < 2:
        return False
    if raw.isupper() and raw.isalpha():
        return True  # an acronym in a text that is not all capitals
    return raw[0].isupper() and not sentence_start


class _Info(NamedTuple):
    """What the lexicon says about one folded word (cached: words repeat)."""

    axes: frozenset[tuple[str, int]]
    pstem: str
    particle: tuple[str, int] | None
    numword: bool
    negation: bool
    how_kind: str | None
    ordinal: int | None
    unit: str | None
    unit_anywhere: bool  # a unit even without a number before it
    tod: str | None
    date: str | None
    date_ambiguous: bool
    scope: str | None
    relation: str | None
    wh: str | None
    modal: str | None
    tense: str | None
    cue: bool
    filler: bool  # dropped unless it is an acronym (US, IT)
    key: str
    stem: str
    word: str  # after abbreviations (yr -> year)
    plain: int  # 1: a filler word and nothing else, 2: a content word and nothing else


_INFOS: dict[str, _Info] = {}


def _info(folded: str) -> _Info:
    """What the lexicon says about a word (a plain dict cache: it is on the hottest path)."""
    info = _INFOS.get(folded)
    if info is None:
        if len(_INFOS) > 50_000:
            _INFOS.clear()
        info = _INFOS[folded] = _make_info(folded)
    return info


def _make_info(folded: str) -> _Info:
    pst = polarity_stem(folded)
    unit = lx.UNITS.get(folded)
    word = lx.ABBREVIATIONS.get(folded, folded)
    st = stem(word)
    modal = lx.MODAL.get(folded)
    tense = lx.TENSE.get(folded)
    axes = _POLARITY.get(pst, frozenset())
    date = lx.DATE_WORDS.get(folded) or (
        lx.DATE_WORDS.get(folded[:-1]) if folded.endswith("s") and len(folded) > 4 else None
    )
    special = (
        axes
        or folded in lx.PARTICLES
        or folded in lx.NUMBER_WORDS
        or folded in lx.NEGATION
        or folded in lx.HOW_KIND
        or folded in lx.ORDINAL_WORDS
        or folded in _ORDINAL_SUFFIX
        or unit is not None
        or folded in lx.TIME_WORDS
        or date is not None
        or folded in lx.SCOPE
        or folded in lx.RELATIONS
        or folded in lx.WH
        or modal is not None
        or tense is not None
        or folded in lx.CUES
        or folded in ("one", "like")
    )
    filler = folded in lx.FILLER or folded == "one" or modal is not None or tense is not None
    return _Info(
        axes=axes,
        pstem=pst,
        particle=lx.PARTICLES.get(folded),
        numword=folded in lx.NUMBER_WORDS,
        negation=folded in lx.NEGATION,
        how_kind=lx.HOW_KIND.get(folded),
        ordinal=lx.ORDINAL_WORDS.get(folded),
        unit=unit,
        unit_anywhere=unit is not None
        and folded not in lx.NUMERIC_ONLY_UNITS
        and unit not in _TIME_UNITS,
        tod=lx.TIME_WORDS.get(folded),
        date=date,
        date_ambiguous=folded in lx.AMBIGUOUS_DATES,
        scope=lx.SCOPE.get(folded),
        relation=lx.RELATIONS.get(folded),
        wh=lx.WH.get(folded),
        modal=modal,
        tense=tense,
        cue=folded in lx.CUES,
        filler=filler,
        key=_SYNONYMS.get(st, st),
        stem=st,
        word=word,
        plain=0 if special else (1 if filler else 2),
    )
