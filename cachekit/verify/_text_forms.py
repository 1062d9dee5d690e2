"""Canonical forms of ``_text``: the tokeniser's patterns, folding, stemming, the
polarity axes and synonyms by stem (re-exported by ``_text``).
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from functools import lru_cache

from . import _lexicon as lx

_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "`": "'", "´": "'"})
_DIGIT_S = re.compile(r"(?<=\d)'s\b")
_TOKEN_ALTERNATIVES = r"""
  | (?P<date>\d{4}-\d{1,2}-\d{1,2}|\d{1,2}/\d{1,2}/\d{2,4})
  | (?P<clock>\d{1,2}:\d{2}(?::\d{2})?)
  | (?P<dotted>\d+(?:\.\d+){2,})
  | (?P<code>\d+-[^\W\d_]{1,2}(?![\w-]))
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
            if (
                w.endswith(suffix)
                and len(w) - len(suffix) >= 3
                and any(c in "aeiouy" for c in w[: -len(suffix)])
            ):
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


#: Synonyms by stem: the word groups' union taken again on their stems, since words of
#: two groups can share a stem ("canceled" / "cancel", so "terminate" = "cancelled").
_SYNONYMS = lx.union_groups([[stem(w) for w in g] for g in lx.SYNONYM_GROUPS])
_TIME_UNITS = frozenset(
    ("sec", "minute", "hour", "day", "week", "month", "year", "decade", "century")
)
_NOT_ACRONYMS = frozenset(("ok", "hi", "pm", "am", "tv"))


@lru_cache(maxsize=4096)
def token_bag(folded: tuple[str, ...]) -> Counter[str]:
    """The tokens of a prompt as a multiset (cached with the prompt's analysis)."""
    return Counter(folded)


def polarity_axes(word_stem: str) -> frozenset[tuple[str, int]]:
    """The polarity axes of a word's polarity stem (see ``polarity_stem``)."""
    return _POLARITY.get(word_stem, frozenset())
