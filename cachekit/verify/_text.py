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
from functools import lru_cache

from . import _lexicon as lx
from ._text_build import Analysis, Word, _Builder, _number
from ._text_forms import (
    _APOSTROPHES,
    _DIGIT_S,
    _TOKEN,
    _WORDS_FIRST,
    _fold,
    polarity_axes,
    polarity_stem,
    stem,
    token_bag,
)
from ._text_lead import leads, who_role
from ._text_normal import normalise
from ._text_words import _CAPITALISED, _LETTER, _UPPER, _dispatch, _word

__all__ = ["Analysis", "Word", "analyse", "polarity_axes", "polarity_stem", "stem", "token_bag"]


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
    if kind in ("code", "dotted"):  # 7731-A; an IP address or a version: 192.168.1.10
        ident = raw.lower()
        b.flush_numwords()
        b.identifiers[ident] += 1
        b.folded.append(ident)
        b.mark(f"id:{ident}")
        return False
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
            num = m.group("num")
            if m.start() == 0 and num[-1] == "0" and "." in num and not num.endswith(".0"):
                # "Python 3.10" is not 3.1 (a version); "$3.10" is $3.1 (after a symbol)
                value = num.replace(",", "")
            else:
                value = _number(num)
            b.folded.append(value)
            b.add_number(
                value, "," in num or (m.start() > 0 and m.string[m.start() - 1] in "$€£¥₹")
            )
        else:
            _dispatch(b, raw, _fold(raw), sentence_start, shouty)
    elif kind == "word":
        _dispatch(b, raw, _fold(raw), sentence_start, shouty)
    elif kind == "sym":
        b.flush_numwords()
        if raw in lx.UNITS:
            b.units[lx.UNITS[raw]] += 1
            # "on $85" = "on 85 dollars": the cue is the amount's, not the symbol's
            cue, b.cue = b.cue, ""
            b.mark(f"unit:{lx.UNITS[raw]}")
            b.cue = cue
        elif raw in "&+":
            b.folded.append("and")
        if raw not in ("%", "°"):
            b.last_was_number = False
        return sentence_start
    return False


#: Punctuation around a word that does not change it ("(Korean," -> Korean).
_EDGE = "\"'()[]{}<>*,.?!;:"
_STOPS = frozenset(".?!;:")


def _punctuation(b: _Builder, marks: str, comma_after_stop: bool) -> bool:
    """Punctuation before or after a word: True when it ends a sentence (numbers in
    words stop there); a comma is noted (after a stop too, before a word)."""
    stop = any(c in _STOPS for c in marks)
    if stop:
        b.flush_numwords()
        b.last_was_number = False
    if "," in marks and (comma_after_stop or not stop):
        b.comma = True
    return stop


#: The operators and numbers of a formula ("x^2 - 5x + 6 = 0" -> "^2-5+6=0").
_FORMULA = re.compile(r"[-+*/^=<>!]+|\d+(?:\.\d+)?").findall


@lru_cache(maxsize=4096)
def analyse(text: str) -> Analysis:
    """Read one prompt (pure; the result is shared, do not mutate its counters)."""
    text_n = _DIGIT_S.sub("", unicodedata.normalize("NFKC", text).translate(_APOSTROPHES))
    text_n = normalise(text_n)
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
                sentence_start = _punctuation(b, chunk[: chunk.index(core)], True) or (
                    sentence_start
                )
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
                sentence_start = _punctuation(b, trail, False)
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
        lead=leads(text_n),
        who=who_role(text_n),
        formula="".join(_FORMULA(text_n)) if ("=" in text_n or "^" in text_n) else "",
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
