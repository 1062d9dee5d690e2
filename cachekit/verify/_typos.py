"""Typos and opposites for ``_signals``: edit distance, typing-kind edits, the shipped
word list (a known word is not a typo) and opposite words (un-/dis- forms included).
"""

from __future__ import annotations

import gzip
from functools import lru_cache
from importlib import resources

from . import _lexicon as lx
from ._text import Word, polarity_axes, polarity_stem, stem


def _damerau1(a: str, b: str, limit: int) -> bool:
    """Edit distance (with adjacent transpositions) of a and b is at most ``limit``."""
    if abs(len(a) - len(b)) > limit:
        return False
    la, lb = len(a), len(b)
    prev2: list[int] = []
    prev = list(range(lb + 1))
    for i in range(1, la + 1):
        cur = [i] + [0] * lb
        best = cur[0]
        for j in range(1, lb + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            v = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                v = min(v, prev2[j - 2] + 1)
            cur[j] = v
            best = min(best, v)
        if best > limit:
            return False
        prev2, prev = prev, cur
    return prev[lb] <= limit


def _opposite(wa: Word, wb: Word) -> bool:
    """wa and wb are opposites: listed on one axis with other sides, or un-/dis- forms."""
    axes_a = polarity_axes(polarity_stem(wa.raw))
    if axes_a:
        axes_b = polarity_axes(polarity_stem(wb.raw))
        for axis, side in axes_a:
            if (axis, 1 - side) in axes_b:
                return True
    return _prefixed(wa.raw, wb.raw) or _prefixed(wb.raw, wa.raw)


def _prefixed(neg: str, base: str) -> bool:
    for p in lx.NEG_PREFIXES:
        if neg.startswith(p) and len(neg) - len(p) >= 3 and stem(neg[len(p) :]) == stem(base):
            return True
    return False


_VOWELS = frozenset("aeiouy")
_KEYS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
_NEIGHBOURS: dict[str, frozenset[str]] = {}
for _r, _row in enumerate(_KEYS):
    for _c, _ch in enumerate(_row):
        _near = {_row[i] for i in (_c - 1, _c + 1) if 0 <= i < len(_row)}
        for _rr in (_r - 1, _r + 1):
            if 0 <= _rr < len(_KEYS):
                _near |= {_KEYS[_rr][i] for i in (_c - 1, _c, _c + 1) if 0 <= i < len(_KEYS[_rr])}
        _NEIGHBOURS[_ch] = frozenset(_near)
del _r, _row, _c, _ch, _near, _rr


def _typo_pair(a: str, b: str) -> bool:
    """b is a plausible typo of a (or the reverse): one edit of a kind people make.

    Two real words are often one edit apart (hotel / hostel, fight / flight), so a single
    edit counts as a typo only when it is of a typing kind: two letters swapped, a letter
    doubled or undoubled, a neighbouring key, a vowel (in longer words); any single edit
    in words of 8+ letters, two edits in words of 10+.
    """
    if a == b:
        return True
    short = min(len(a), len(b))
    if short < 4 or not (a.isalpha() and b.isalpha()):
        return False
    if short >= 10 and _damerau1(a, b, 2):
        return True
    if not _damerau1(a, b, 1):
        return False
    if short >= 8:
        return True
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        if len(diff) == 2:  # transposition
            return True
        i = diff[0]
        x, y = a[i], b[i]
        if y in _NEIGHBOURS.get(x, ()) and short >= 5:
            return True
        return x in _VOWELS and y in _VOWELS and short >= 6
    longer, shorter = (a, b) if len(a) > len(b) else (b, a)
    i = next((k for k in range(len(shorter)) if longer[k] != shorter[k]), len(shorter))
    extra = longer[i]
    if (i > 0 and longer[i - 1] == extra) or (i + 1 < len(longer) and longer[i + 1] == extra):
        return True  # doubled / undoubled letter
    return extra in _VOWELS and short >= 5


@lru_cache(maxsize=1)
def _dictionary() -> frozenset[str]:
    """English words of 4+ letters (the whole-word entries of BERT's uncased vocabulary,
    Apache-2.0, shipped as words.txt.gz): a known word is not a typo of another."""
    raw = resources.files(__package__).joinpath("words.txt.gz").read_bytes()
    return frozenset(gzip.decompress(raw).decode("ascii").split())


def _known(word: str) -> bool:
    words = _dictionary()
    if word in words:
        return True
    for suffix, repl in (("s", ""), ("es", ""), ("ed", ""), ("ed", "e"), ("ing", ""),
                         ("ing", "e"), ("ly", ""), ("ies", "y"), ("ied", "y")):  # fmt: skip
        if (
            word.endswith(suffix)
            and len(word) - len(suffix) >= 3
            and word[: -len(suffix)] + repl in words
        ):
            return True
    return False


def _typo_str(a: str, b: str) -> bool:
    short = min(len(a), len(b))
    return (
        short >= 4
        and abs(len(a) - len(b)) <= 1
        and a.isalpha()
        and b.isalpha()
        and _damerau1(a, b, 2 if short >= 8 else 1)
    )


def _typo(wa: Word, wb: Word) -> bool:
    """wb is a mistyped wa (or the reverse): one edit apart and not two real words."""
    a, b = wa.raw, wb.raw
    if a[0] != b[0] and a[:2] != b[1::-1]:
        return False
    short = min(len(a), len(b))
    if short < 4 or not (a.isalpha() and b.isalpha()):
        return False
    if not _damerau1(a, b, 2 if short >= 8 else 1):
        return False
    known_a, known_b = _known(a), _known(b)
    if known_a and known_b:
        return False  # hotel / hostel, fight / flight: two words, not a typo
    if not known_a and not known_b and not _typo_pair(a, b):
        return False  # two unknown names: only an edit of a typing kind
    return not _opposite(wa, wb)


#: Filler words long enough to recognise with a typo in them (thnaks, pleese).
_LONG_FILLER = tuple(sorted(w for w in lx.FILLER if len(w) >= 5 and w.isalpha()))


def _filler_typo(word: str) -> bool:
    return (
        len(word) >= 5
        and not _known(word)
        and any(
            f[0] == word[0] and abs(len(f) - len(word)) <= 1 and _damerau1(f, word, 1)
            for f in _LONG_FILLER
        )
    )
