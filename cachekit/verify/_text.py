"""One prompt, read once: tokens, their canonical forms and the meaning-bearing classes.

``analyse(text)`` is pure and cached (a cached prompt is verified against many new ones).
Canonical forms ignore what does not change a question: case, accents, punctuation,
contractions (don't = do not), thousands separators (5,000 = 5000), number words
(fourteen = 14), currency symbols ($50 = 50 usd), light inflection (flights = flight) and
a short list of synonyms. What remains is split into:

- ``content``: the plain content words, in order (filler words dropped);
- multisets that must agree between two prompts: numbers, identifiers, dates, times,
  units, ordinals, scope words, question kinds, modal and tense auxiliaries;
- the negation count and the polarity words (for opposite-word checks);
- ``roles``: for each token, the cue word that governs it ("from" Paris, "to" London),
  for order checks.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

from . import _lexicon as lx

__all__ = ["Analysis", "analyse", "stem", "token_bag"]

_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "`": "'", "´": "'"})
_DIGIT_S = re.compile(r"(?<=\d)'s\b")
_TOKEN_ALTERNATIVES = r"""
  | (?P<date>\d{4}-\d{1,2}-\d{1,2}|\d{1,2}/\d{1,2}/\d{2,4})
  | (?P<clock>\d{1,2}:\d{2}(?::\d{2})?)
  | (?P<number>(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+\.\d+|\d+)(?P<suffix>[^\W\d_]+)?)
  | (?P<word>[^\W\d_]+(?:['-]?[^\W_]+)*|[^\W_]*\d[^\W_]*(?:-[^\W_]+)*)
  | (?P<sym>[$€£¥₹%°#&+/])
  | (?P<stop>[.?!;:])
  | (?P<comma>,)
"""
#: Plain words first: most tokens are words, and the regex tries alternatives in order.
_WORDS_FIRST = re.compile(r"(?P<plain>[^\W\d_]+(?![\w'-]))" + _TOKEN_ALTERNATIVES, re.VERBOSE)
#: With URLs and e-mail addresses (only used when the text has "@" or "://" or "www.").
_TOKEN = re.compile(
    r"""
    (?P<url>https?://\S+|www\.\S+)
  | (?P<email>[\w.+-]+@[\w-]+(?:\.[\w-]+)+)"""
    + _TOKEN_ALTERNATIVES,
    re.VERBOSE,
)
_ORDINAL_SUFFIX = frozenset(("st", "nd", "rd", "th"))
_AND_OR = frozenset(("and", "or"))
_SENTENCE_END = frozenset(".?!:;")


def _fold(word: str) -> str:
    """Lower case without accents (café = cafe)."""
    low = word.lower()
    if low.isascii():
        return low
    return "".join(c for c in unicodedata.normalize("NFKD", low) if not unicodedata.combining(c))


_SUFFIXES = (("ies", "y"), ("ied", "y"), ("ing", ""), ("es", ""), ("ed", ""), ("s", ""))


@lru_cache(maxsize=8192)
def stem(word: str) -> str:
    """A light stemmer: flights = flight, booking = book, closed = close = closes."""
    w = word
    if len(w) <= 3 or not w.isalpha():
        return w
    for _ in range(2):  # racings -> racing -> rac
        before = w
        for suffix, repl in _SUFFIXES:
            if w.endswith(suffix) and len(w) - len(suffix) >= 3:
                if suffix == "s" and w.endswith(("ss", "us", "is")):
                    break
                if suffix == "es" and not w.endswith(("ses", "xes", "zes", "ches", "shes", "oes")):
                    continue
                w = w[: -len(suffix)] + repl
                break
        if w == before or not w.endswith(("ing", "ed")):
            break
    if len(w) > 3 and w[-1] == w[-2] and w[-1] not in "aeiouls":
        w = w[:-1]  # stopp -> stop, runn -> run
    if len(w) > 3 and w.endswith("e"):
        w = w[:-1]  # make, making -> mak; close, closed -> clos
    return w


def polarity_stem(folded: str) -> str:
    return stem(lx.IRREGULAR.get(folded, folded))


def _degrees(word: str) -> tuple[str, ...]:
    """Comparative and superlative forms of an adjective (big -> bigger, biggest)."""
    if not word.isalpha() or len(word) < 3:
        return ()
    if word.endswith("y"):
        base = word[:-1] + "i"
    elif word.endswith("e"):
        base = word[:-1]
    elif (
        len(word) <= 4
        and word[-1] not in "aeiouwxy"
        and word[-2] in "aeiou"
        and word[-3] not in "aeiou"
    ):
        base = word + word[-1]  # big -> bigg(er)
    else:
        base = word
    return (base + "er", base + "est")


#: Polarity axes by stem (open, opened, opens -> the same axes; big, bigger, biggest).
_POLARITY: dict[str, frozenset[tuple[str, int]]] = {}
for _w, _axes in lx.POLARITY_AXES.items():
    for _form in (_w, *_degrees(_w)):
        _s = polarity_stem(_form)
        _POLARITY[_s] = _POLARITY.get(_s, frozenset()) | _axes
del _w, _axes, _form, _s
_SYNONYMS = {stem(k): stem(v) for k, v in lx.SYNONYMS.items()}
_TIME_UNITS = frozenset(
    ("sec", "minute", "hour", "day", "week", "month", "year", "decade", "century")
)
_NOT_ACRONYMS = frozenset(("ok", "hi", "pm", "am", "tv"))


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

    def add_number(self, value: str) -> None:
        if len(value) == 4 and value.isdigit() and 1000 <= int(value) <= 2100:
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


def _word(b: _Builder, raw: str, folded: str, sentence_start: bool, shouty: bool) -> None:
    """One alphabetic token (contractions and hyphens already split)."""
    info = _INFOS.get(folded) or _info(folded)
    plain = info.plain
    if plain and not (
        len(raw) >= 2 and raw.isupper() and not shouty and folded not in _NOT_ACRONYMS
    ):
        # the common case, most words: a plain filler or content word
        b.folded.append(folded)
        b.stems.add(info.pstem)
        b.last_raw = folded
        if b.pending_numwords:
            b.flush_numwords()
        b.last_was_number = False
        if plain == 1:
            b.prev_entity = False
            return
        entity = _is_entity(raw, info.word, sentence_start, shouty)
        b.content.append(Word(info.key, info.stem, info.word, entity))
        b.mark(info.key, entity)
        return
    b.folded.append(folded)
    b.stems.add(info.pstem)
    for axis, side in info.axes:
        b.polarity.setdefault(axis, set()).add(side)
    particle = info.particle
    if particle is not None:
        if b.content and b.content[-1].raw == b.last_raw:
            # "log in" vs "log out": the particle's axis, bound to the verb before it
            axis, side = particle
            b.polarity.setdefault(f"{b.content[-1].key}:{axis}", set()).add(side)
        if not info.cue:
            b.last_raw = folded
            b.flush_numwords()
            b.last_was_number = False
            return  # a particle is not a content word of its own
    b.last_raw = folded
    if info.numword:
        b.pending_numwords.append(folded)
        return
    if b.pending_numwords:
        b.flush_numwords()
    after_number = b.last_was_number
    b.last_was_number = False
    if info.negation:
        b.negations += 1
        b.pending_negations += 1
        b.cue = ""
        return
    if info.how_kind is not None and len(b.folded) >= 2 and b.folded[-2] == "how":
        b.wh.add("how-" + info.how_kind)
        return
    if info.ordinal is not None and not (folded == "second" and after_number):
        key = f"ord:{info.ordinal}"
        b.ordinals[key] += 1
        b.mark(key)
        return
    if after_number and folded in _ORDINAL_SUFFIX:
        return
    if info.unit is not None and (after_number or info.unit_anywhere):
        b.units[info.unit] += 1
        b.mark("unit:" + info.unit)
        return
    if info.tod is not None and (after_number or folded not in ("am", "pm")):
        b.times[info.tod] += 1
        b.mark("time:" + info.tod)
        return
    if info.date is not None and (
        not info.date_ambiguous or (raw[:1].isupper() and not sentence_start)
    ):
        b.dates[info.date] += 1
        b.mark("date:" + info.date)
        return
    if info.scope is not None:
        b.scope[info.scope] += 1
        b.mark("scope:" + info.scope)
        return
    if info.relation is not None:
        b.relations[info.relation] += 1
        b.mark("rel:" + info.relation)
        if info.cue:
            b.cue = folded  # "against" also marks the role of what follows
        return
    if info.wh is not None:
        b.wh.add(info.wh)
        return
    if info.modal is not None:
        b.modal.add(info.modal)
    if info.tense is not None:
        b.tense.add(info.tense)
    if info.cue:
        b.cue = lx.CUE_CANON.get(folded, folded)
        b.prev_entity = False
        return
    acronym = len(raw) >= 2 and raw.isupper() and not shouty and folded not in _NOT_ACRONYMS
    if (info.filler or (folded == "like" and b.folded[-2:-1] == ["would"])) and not acronym:
        if folded == "one":
            b.ones += 1
        b.prev_entity = False
        return
    entity = acronym or _is_entity(raw, info.word, sentence_start, shouty)
    b.content.append(Word(info.key, info.stem, info.word, entity))
    b.mark(info.key, entity, bool(info.axes))


def _alnum(b: _Builder, raw: str, folded: str, sentence_start: bool, shouty: bool) -> None:
    """A token mixing letters and digits: an identifier (BA117, iPhone15, M-1), or a
    number with a unit or suffix (5kg, 3pm, 16th) handled by the caller."""
    parts = folded.split("-")
    if all(p.isdigit() for p in parts):
        for p in parts:
            b.folded.append(p)
            b.add_number(_number(p))
        return
    if len(parts) > 1 and not any(any(c.isdigit() for c in p) for p in parts[:1]):
        head = parts[0]
        if not (len(head) <= 4 and len(parts) == 2 and parts[1].isdigit()):
            # thirty-year-old, usb-c, covid-19 style: split, keep the numbers as numbers
            for p in parts:
                _dispatch(b, p, p, sentence_start, shouty)
                sentence_start = False
            return
    ident = folded.replace("-", "")
    b.folded.append(ident)
    b.flush_numwords()
    b.identifiers[ident] += 1
    b.mark(f"id:{ident}")
    b.last_was_number = False


_HAS_DIGIT = re.compile(r"\d").search
_UPPER = re.compile(r"[^\W\d_a-z]").findall  # upper case (and caseless) letters
_LETTER = re.compile(r"[^\W\d_]").findall
_CAPITALISED = re.compile(r"(?<!\S)[\"'(\[]*[^\W\d_a-z]").findall  # words starting upper-case


def _dispatch(b: _Builder, raw: str, folded: str, sentence_start: bool, shouty: bool) -> None:
    if _HAS_DIGIT(folded):
        m = re.fullmatch(r"(\d+(?:\.\d+)?)([a-z]+)", folded)
        if m and (
            m.group(2) in lx.UNITS
            or m.group(2) in lx.TIME_WORDS
            or m.group(2) in _ORDINAL_SUFFIX
            or m.group(2) == "s"
        ):
            b.flush_numwords()
            num, suffix = m.group(1), m.group(2)
            b.folded.append(num)
            if suffix in _ORDINAL_SUFFIX:
                b.ordinals[f"ord:{_number(num)}"] += 1
                b.mark(f"ord:{_number(num)}")
                b.last_was_number = False
                return
            if suffix == "s" and len(num) == 4:  # 1990s
                b.dates[f"decade:{num}"] += 1
                b.mark(f"date:{num}s")
                return
            b.add_number(_number(num))
            _word(b, suffix, suffix, False, shouty)
            return
        _alnum(b, raw, folded, sentence_start, shouty)
        return
    if "'" in folded:
        if folded in lx.CONTRACTIONS:
            for part in lx.CONTRACTIONS[folded]:
                _word(b, part, part, sentence_start, shouty)
            return
        base, _, tail = folded.partition("'")
        if tail == "t" and base.endswith("n"):
            _word(b, base[:-1], base[:-1], sentence_start, shouty)
            _word(b, "not", "not", False, shouty)
            return
        more = {"re": "are", "ve": "have", "ll": "will", "d": "would", "m": "am"}
        if tail in more:
            _word(b, raw.partition("'")[0], base, sentence_start, shouty)
            _word(b, more[tail], more[tail], False, shouty)
            return
        if tail == "s":
            _word(b, raw.partition("'")[0], base, sentence_start, shouty)
            if base in lx.S_IS:
                _word(b, "is", "is", False, shouty)
            return
        folded = folded.replace("'", "")
        raw = raw.replace("'", "")
    if folded in lx.CONTRACTIONS:
        for part in lx.CONTRACTIONS[folded]:
            _word(b, part, part, sentence_start, shouty)
        return
    if "-" in folded:
        parts = [p for p in folded.split("-") if p]
        raws = [p for p in raw.split("-") if p]
        if len(parts) == len(raws):
            for i, (r, p) in enumerate(zip(raws, parts, strict=True)):
                _word(b, r, p, sentence_start and i == 0, shouty)
            return
    _word(b, raw, folded, sentence_start, shouty)


def _shouty(text: str, words: list[str]) -> bool:
    """All capitals, or Every Word Capitalised: then capitals say nothing about names."""
    if text.isupper():
        return True
    if len(words) < 4:
        return False
    capitalised = len(_CAPITALISED(text))
    if capitalised / len(words) > 0.8:
        return True
    if capitalised / len(words) < 0.4:
        return False  # the common case: no need to count letters
    upper = len(_UPPER(text))
    letters = len(_LETTER(text))
    return letters >= 8 and upper / letters > 0.6


def _matched(b: _Builder, m: re.Match[str], sentence_start: bool, shouty: bool) -> bool:
    """One token of the full tokenizer; returns the new ``sentence_start``."""
    kind = m.lastgroup
    raw = m.group()
    if kind == "plain":
        folded = raw.lower() if raw.isascii() else _fold(raw)
        parts = lx.CONTRACTIONS.get(folded)
        if parts is not None:
            for part in parts:
                _word(b, part, part, sentence_start, shouty)
        else:
            _word(b, raw, folded, sentence_start, shouty)
        return False
    if kind == "comma":
        b.comma = True
        return sentence_start
    if kind == "stop":
        b.flush_numwords()
        b.last_was_number = False
        return True
    if kind in ("url", "email"):
        b.flush_numwords()
        b.identifiers[raw.lower().rstrip("/.")] += 1
        b.mark(f"id:{raw.lower()}")
    elif kind == "date":
        b.flush_numwords()
        b.dates[f"date:{raw}"] += 1
        b.mark(f"date:{raw}")
    elif kind == "clock":
        b.flush_numwords()
        hh, _, rest = raw.partition(":")
        b.times[f"clock:{int(hh)}:{rest}"] += 1
        b.mark(f"time:{raw}")
        b.last_was_number = True
    elif kind == "number":
        b.flush_numwords()
        if m.group("suffix") is None:
            value = _number(m.group("num"))
            b.folded.append(value)
            b.add_number(value)
        else:
            _dispatch(b, raw, _fold(raw), sentence_start, shouty)
    elif kind == "word":
        _dispatch(b, raw, _fold(raw), sentence_start, shouty)
    elif kind == "sym":
        b.flush_numwords()
        if raw in lx.UNITS:
            b.units[lx.UNITS[raw]] += 1
            b.mark(f"unit:{lx.UNITS[raw]}")
        elif raw in "&+":
            b.folded.append("and")
        if raw not in ("%", "°"):
            b.last_was_number = False
        return sentence_start
    return False


#: Punctuation around a word that does not change it ("(Korean," -> Korean).
_EDGE = "\"'()[]{}<>*,.?!;:"
_STOPS = frozenset(".?!;:")


@lru_cache(maxsize=4096)
def analyse(text: str) -> Analysis:
    """Read one prompt (pure; the result is shared, do not mutate its counters)."""
    text_n = _DIGIT_S.sub("", unicodedata.normalize("NFKC", text).translate(_APOSTROPHES))
    b = _Builder(text)
    chunks = text_n.split()
    shouty = _shouty(text_n, chunks)
    sentence_start = True
    pattern = _TOKEN if ("@" in text_n or "://" in text_n or "www." in text_n) else _WORDS_FIRST
    contractions = lx.CONTRACTIONS
    word = _word
    for chunk in chunks:
        core = chunk.strip(_EDGE)
        if core.isalpha() and pattern is _WORDS_FIRST:
            # the common case: a word, maybe with punctuation around it
            if core is not chunk and chunk[0] in _EDGE:
                lead = chunk[: chunk.index(core)]
                if any(c in _STOPS for c in lead):
                    b.flush_numwords()
                    b.last_was_number = False
                    sentence_start = True
                if "," in lead:
                    b.comma = True
            folded = core.lower() if core.isascii() else _fold(core)
            parts = contractions.get(folded)
            if parts is not None:
                for part in parts:
                    word(b, part, part, sentence_start, shouty)
            else:
                word(b, core, folded, sentence_start, shouty)
            sentence_start = False
            if core is not chunk and chunk[-1] in _EDGE:
                trail = chunk[chunk.rindex(core) + len(core) :]
                if any(c in _STOPS for c in trail):
                    b.flush_numwords()
                    b.last_was_number = False
                    sentence_start = True
                elif "," in trail:
                    b.comma = True
            continue
        for m in pattern.finditer(chunk):
            sentence_start = _matched(b, m, sentence_start, shouty)
    b.flush_numwords()
    counts = b.counts
    roles = {k: cue for k, cue in b.keyed if cue and counts[k] == 1}
    once = frozenset(k for k, n in counts.items() if n == 1)
    left = {k: v for k, v in b.left.items() if k in once}
    return Analysis(
        text=text,
        content=tuple(b.content),
        numbers=b.numbers,
        ones=b.ones,
        identifiers=b.identifiers,
        dates=b.dates,
        times=b.times,
        units=b.units,
        ordinals=b.ordinals,
        scope=+b.scope,
        relations=b.relations,
        wh=frozenset(b.wh),
        modal=frozenset(b.modal),
        tense=frozenset(b.tense),
        negations=b.negations,
        neg_targets=frozenset(b.neg_targets),
        stems=frozenset(b.stems),
        polarity={axis: frozenset(sides) for axis, sides in b.polarity.items()},
        folded=tuple(b.folded),
        roles=roles,
        once=once,
        keys=frozenset(counts),
        left=left,
    )


@lru_cache(maxsize=4096)
def token_bag(folded: tuple[str, ...]) -> Counter[str]:
    """The tokens of a prompt as a multiset (cached with the prompt's analysis)."""
    return Counter(folded)


def polarity_axes(word_stem: str) -> frozenset[tuple[str, int]]:
    """The polarity axes of a word's polarity stem (see ``polarity_stem``)."""
    return _POLARITY.get(word_stem, frozenset())
