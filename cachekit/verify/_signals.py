"""Compare two analysed prompts: the signals that say their answers differ.

Each signal is a number (mostly 0/1) with a short detail for the verdict's reason. The
content comparison follows one principle: align the two prompts' content words; what is
left over after explaining typos, compounds (log in = login), reordering and synonyms is
what the prompts disagree on. A leftover word weighs more the more of the rest agrees
(``overlap``): in a near-copy the one word that differs is the question.
"""

from __future__ import annotations

import gzip
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from . import _lexicon as lx
from ._text import Analysis, Word, polarity_axes, polarity_stem, stem, token_bag

__all__ = ["FEATURES", "HARD_SIGNALS", "SIGNAL_REASONS", "Signals", "compare"]

#: Cues whose exchange for one another changes the question (from / to, than / by);
#: "in" / "on" / "at" / "for" / "with" only count when a role moves to another word.
_DIRECTIONAL = frozenset(("from", "to", "than", "beat", "against", "over", "under", "by"))

#: Features that do not stop a pair from being "clean".
_HARMLESS = frozenset(("cos", "overlap", "near", "typo", "moved", "question_add"))

#: Signals that name a meaning-bearing difference (most telling first).
HARD_SIGNALS: tuple[str, ...] = (
    "number", "identifier", "date", "time", "unit", "negation", "polarity", "entity",
    "order", "swap", "scope", "relation", "question", "modality", "tense",
)  # fmt: skip

#: Words before a name after which its position carries no role (lists, "X and Y").
_ORDER_FREE = frozenset(
    ("and", "or", "between", "&", "<list>", "vs", "versus", "nor", "both", "either")
)

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


def _words(ws: Iterable[Word]) -> str:
    return ", ".join(w.raw for w in ws)


def compare(a: Analysis, b: Analysis, cos: float) -> Signals:
    out = Signals({"cos": cos}, {})
    v, d = out.values, out.details

    # --- numbers, identifiers, dates, times, units: multisets must agree
    na, nb = a.numbers, b.numbers
    if _ne(na, nb):
        only_a, only_b = na - nb, nb - na
        # "one" may stand for 1 ("one order" = "1 order")
        if (not only_b and set(only_a) == {"1"} and b.ones >= only_a["1"]) or (
            not only_a and set(only_b) == {"1"} and a.ones >= only_b["1"]
        ):
            pass
        else:
            name = "number" if only_a and only_b else "number_add"
            v[name] = 1.0
            d[name] = f"{_fmt(only_a)} vs {_fmt(only_b)}"
    if _ne(a.ordinals, b.ordinals):
        if a.ordinals and b.ordinals:
            v["number"] = 1.0
            d.setdefault(
                "number", f"{_fmt(a.ordinals - b.ordinals)} vs {_fmt(b.ordinals - a.ordinals)}"
            )
        else:
            v["scope"] = 1.0
            d["scope"] = f"{_fmt(a.ordinals)} vs {_fmt(b.ordinals)}"
    _counted("identifier", a.identifiers, b.identifiers, out)
    if _ne(a.dates, b.dates):
        only_a, only_b = a.dates - b.dates, b.dates - a.dates
        name = "date" if only_a and only_b else "date_add"
        v[name] = 1.0
        d[name] = f"{_fmt(only_a)} vs {_fmt(only_b)}"
    _counted("time", a.times, b.times, out)
    _counted("unit", a.units, b.units, out)
    if _ne(a.scope, b.scope):
        only_a, only_b = a.scope - b.scope, b.scope - a.scope
        # "first" vs "last", "all" vs "any": a substitution; one extra word: an addition
        name = "scope" if only_a and only_b else "scope_add"
        v[name] = 1.0
        d.setdefault(name, f"{_fmt(only_a)} vs {_fmt(only_b)}")
    _counted("relation", a.relations, b.relations, out)
    if a.wh != b.wh and a.wh and b.wh:
        v["question"] = 1.0
        d["question"] = f"{', '.join(sorted(a.wh))} vs {', '.join(sorted(b.wh))}"
    elif a.wh != b.wh:
        v["question_add"] = 1.0
        d["question_add"] = (
            f"{', '.join(sorted(a.wh)) or 'none'} vs {', '.join(sorted(b.wh)) or 'none'}"
        )
    if a.modal and b.modal and a.modal != b.modal:
        v["modality"] = 1.0
        d["modality"] = f"{', '.join(sorted(a.modal))} vs {', '.join(sorted(b.modal))}"
    if a.tense and b.tense and a.tense != b.tense:
        v["tense"] = 1.0
        d["tense"] = f"{', '.join(sorted(a.tense))} vs {', '.join(sorted(b.tense))}"

    # --- polarity: an axis on which the two prompts take only opposite sides
    flipped = [
        axis
        for axis, sides in a.polarity.items()
        if (sides_b := b.polarity.get(axis)) is not None and sides.isdisjoint(sides_b)
    ]

    # --- how near-identical the two texts are, word for word (filler included): the
    # share of tokens they have in common (a multiset Dice coefficient)
    if a.folded == b.folded:
        near = 1.0
    else:
        size = len(a.folded) + len(b.folded)
        near = 2.0 * sum((token_bag(a.folded) & token_bag(b.folded)).values()) / size
    v["near"] = near

    # --- content words: align, explain what can be explained, weigh the rest
    ca, cb = a.content, b.content
    ka = [w.key for w in ca]
    kb = [w.key for w in cb]
    left_a: list[Word] = []
    left_b: list[Word] = []
    if ka != kb:
        # match each word with one of the same key in the other prompt (first come first);
        # the rest are the words only one prompt has, in their order
        left_a, order_a = _match(ca, kb)
        left_b, order_b = _match(cb, ka)
        if left_a and left_b and "".join(w.raw for w in left_a) == "".join(w.raw for w in left_b):
            left_a, left_b = [], []  # "wi fi" = "wifi"
        # moved words: in both, in another order (an order change, not a different word)
        if order_a != order_b:
            v["moved"] = 1.0
            moved = {x for x, y in zip(order_a, order_b, strict=True) if x != y}
            d["moved"] = ", ".join(sorted(moved))
        # compounds across the filler boundary: "log in" = "login", "e mail" = "email"
        if left_a or left_b:
            used: set[str] = set()
            for words, tokens in ((left_b, a.folded), (left_a, b.folded)):
                for w in words:
                    parts = _joined(w.raw, tokens)
                    if parts is not None:
                        used.update(parts)
                        used.add(w.raw)
            if used:
                left_a = [w for w in left_a if w.raw not in used]
                left_b = [w for w in left_b if w.raw not in used]
        # a word the other prompt has too, only not as a content word (US / us, like)
        if left_a or left_b:
            fa, fb = set(a.folded), set(b.folded)
            left_a = [w for w in left_a if w.raw not in fb]
            left_b = [w for w in left_b if w.raw not in fa]
        # initials: "United States" = "US", "two factor authentication" = "2FA" aside
        if left_a and left_b:
            left_a, left_b = _initials(left_a, left_b)
            left_b, left_a = _initials(left_b, left_a)
        # derived forms: Japan / Japanese, India / Indian, paradox / paradoxic
        if left_a and left_b:
            left_a, left_b, derived = _derived(left_a, left_b)
            # India ... Japan vs Japanese ... Indian: the derived forms changed places
            if len(derived) >= 2:
                pos = sorted((ca.index(x), cb.index(y)) for x, y in derived)
                if [q for _, q in pos] != sorted(q for _, q in pos):
                    v["swap"] = 1.0
                    d["swap"] = ", ".join(f"{x.raw}/{y.raw}" for x, y in derived)
        # typos: a leftover word one edit away from a leftover word of the other side
        typos = 0
        if left_a and left_b:
            rest_b = list(left_b)
            keep_a = []
            for w in left_a:
                match = next((x for x in rest_b if _typo(w, x)), None)
                if match is None:
                    keep_a.append(w)
                else:
                    rest_b.remove(match)
                    typos += 1
            left_a, left_b = keep_a, rest_b
        # a leftover that is a mistyped word of the other prompt (matched elsewhere, or
        # not a content word there: "woud" / "would")
        for side, there in ((left_a, b), (left_b, a)):
            for w in list(side):
                if not _known(w.raw) and any(
                    _typo_str(w.raw, t) for t in set(there.folded) if t[:1] == w.raw[:1]
                ):
                    side.remove(w)
                    typos += 1
        # a mistyped filler word ("thnaks", "pleese")
        for side in (left_a, left_b):
            for w in [x for x in side if _filler_typo(x.raw)]:
                side.remove(w)
                typos += 1
        if typos:
            v["typo"] = float(min(typos, 3))
        # opposites among the leftovers are the polarity signal's, not unknown words
        if left_a and left_b:
            keep_a = []
            for w in left_a:
                match = next((x for x in left_b if _opposite(w, x)), None)
                if match is None:
                    keep_a.append(w)
                else:
                    left_b = [x for x in left_b if x is not match]
                    flipped.append(f"{w.raw}/{match.raw}")
            left_a = keep_a
        # un-/dis- opposites among the leftovers (able / unable, like / dislike)
        for words, mine, theirs in ((left_a, a, b), (left_b, b, a)):
            for w in words:
                base = w.raw
                for p in lx.NEG_PREFIXES:
                    if base.startswith(p) and len(base) - len(p) >= 3:
                        rest = polarity_stem(base[len(p) :])
                        if rest in theirs.stems and rest not in mine.stems:
                            flipped.append(f"{base}/prefix")
                            break
        # what is left: names (entities), other content words
        ent_a = [w for w in left_a if w.entity]
        ent_b = [w for w in left_b if w.entity]
        if ent_a or ent_b:
            name = "entity" if ent_a and ent_b else "entity_add"
            v[name] = 1.0
            d[name] = f"{_words(ent_a) or 'nothing'} vs {_words(ent_b) or 'nothing'}"
        rest_a = [w for w in left_a if not w.entity]
        rest_b = [w for w in left_b if not w.entity]
        total = len(ka) + len(kb)
        unexplained = len(left_a) + len(left_b)
        overlap = 1.0 - unexplained / total if total else 1.0
        v["overlap"] = overlap
        if rest_a and rest_b:
            v["content_sub"] = 1.0
            v["sub_near"] = near
            d["content_sub"] = f"{_words(rest_a)} vs {_words(rest_b)}"
        elif rest_a or rest_b:
            v["content_add"] = 1.0
            v["add_near"] = near
            d["content_add"] = (
                f"{_words(rest_a)} only in the cached prompt"
                if rest_a
                else f"{_words(rest_b)} only in the new prompt"
            )
        if len(left_a) == 1 and len(left_b) == 1:
            v["lone_sub"] = 1.0  # one word (or name) for another, the rest the same
            d["lone_sub"] = f"{left_a[0].raw} vs {left_b[0].raw}"
        if rest_a or rest_b:
            v["content_n"] = min(len(rest_a) + len(rest_b), 6) / 6.0
            d["content_n"] = d.get("content_sub") or d.get("content_add", "")
            for name in ("sub_near", "add_near", "overlap", "near"):
                d[name] = d["content_n"]
    else:
        v["overlap"] = 1.0

    # --- negation and polarity, together: "not open" = "closed"
    neg_diff = (a.negations - b.negations) % 2 == 1
    # the same number of negations, applied to other words ("connected but no internet"
    # vs "not connected but internet")
    moved_neg = (
        not neg_diff
        and a.negations > 0
        and a.negations == b.negations
        and a.neg_targets
        and b.neg_targets
        and a.neg_targets.isdisjoint(b.neg_targets)
        and (a.neg_targets | b.neg_targets) <= (a.keys & b.keys)
    )
    if neg_diff and flipped:
        pass  # one opposite word plus one negation: the same question
    elif neg_diff:
        v["negation"] = 1.0
        d["negation"] = f"{a.negations} negation(s) vs {b.negations}"
    elif moved_neg:
        v["negation"] = 1.0
        d["negation"] = (
            f"not {', '.join(sorted(a.neg_targets))} vs not {', '.join(sorted(b.neg_targets))}"
        )
    elif flipped:
        v["polarity"] = 1.0
        d["polarity"] = ", ".join(sorted(set(flipped)))

    # --- order: a role (from, to, than, of ...) that moved from one word to another
    ra, rb = a.roles, b.roles
    swapped = []
    changed = {
        k: (ra.get(k, ""), rb.get(k, ""))
        for k in set(ra) | set(rb)
        if ra.get(k, "") != rb.get(k, "")
        and k in a.once
        and k in b.once
        # "of" is a role only for numbers (15% of 80); "issues of X" = "X issues"
        and (k[0] == "#" or "of" not in (ra.get(k), rb.get(k)))
    }
    if changed:
        for k, (role_a, role_b) in changed.items():
            if role_a in _DIRECTIONAL and role_b in _DIRECTIONAL:
                swapped.append(f"{k}: {role_a} → {role_b}")  # from Paris / to Paris
            elif role_a and any(rb2 == role_a for k2, (_, rb2) in changed.items() if k2 != k):
                swapped.append(f"{k}: {role_a} → none")
    if swapped:
        v["order"] = 1.0
        d["order"] = "; ".join(sorted(swapped))
    # names or numbers that moved and now follow other words ("Swiss money ... Indian
    # bank" vs "Indian money ... Swiss bank"); lists and "X and Y" are order-free
    moved_names = [
        k
        for k, before in a.left.items()
        if (after := b.left.get(k)) is not None
        and after != before
        and before not in _ORDER_FREE
        and after not in _ORDER_FREE
    ]
    # ... and took the place of another name: an exchange, not a rephrasing
    old_places = {before: k for k, before in a.left.items()}
    exchanged = [k for k in moved_names if (o := old_places.get(b.left[k])) is not None and o != k]
    pure_reorder = v.get("overlap", 1.0) == 1.0  # same words, other order
    if pure_reorder and exchanged:
        v["swap"] = 1.0
        d["swap"] = ", ".join(sorted(exchanged))

    # nothing differs but typos, compounds, casing, punctuation, filler and word order
    if not any(value for name, value in v.items() if name not in _HARMLESS):
        v["clean"] = 1.0
    else:
        hard = [name for name in HARD_SIGNALS if v.get(name)]
        if hard:
            # a meaning-bearing difference in an otherwise near-identical pair
            v["hard_near"] = near
            d["hard_near"] = d[hard[0]]
    return out


def _match(words: tuple[Word, ...], other: list[str]) -> tuple[list[Word], list[str]]:
    """(words whose key ``other`` lacks, keys of the others in order), counting repeats."""
    have: dict[str, int] = {}
    for k in other:
        have[k] = have.get(k, 0) + 1
    left: list[Word] = []
    matched: list[str] = []
    for w in words:
        n = have.get(w.key, 0)
        if n:
            have[w.key] = n - 1
            matched.append(w.key)
        else:
            left.append(w)
    return left, matched


def _ne(x: Counter[str], y: Counter[str]) -> bool:
    """Two counters differ (dict comparison in C; empty ones first, the common case)."""
    return bool(x or y) and dict.__ne__(x, y)


def _joined(word: str, folded: tuple[str, ...]) -> tuple[str, str] | None:
    """Two adjacent tokens of ``folded`` that spell ``word`` ("log" "in" = "login")."""
    for i in range(len(folded) - 1):
        x = folded[i]
        if x and word.startswith(x) and len(x) < len(word) and word[len(x) :] == folded[i + 1]:
            return x, folded[i + 1]
    return None


_DERIVATIONS = ("ese", "an", "ian", "ans", "ians", "ish", "i", "is", "n", "ns", "ness", "ic",
                "ical", "al", "ally", "ity", "ese")  # fmt: skip


def _derived(
    left_a: list[Word], left_b: list[Word]
) -> tuple[list[Word], list[Word], list[tuple[Word, Word]]]:
    """Drop pairs where one word is the other plus a derivational ending (and say which)."""
    rest_b = list(left_b)
    keep_a = []
    pairs: list[tuple[Word, Word]] = []
    for w in left_a:
        match = None
        for x in rest_b:
            short, long_ = (w.raw, x.raw) if len(w.raw) <= len(x.raw) else (x.raw, w.raw)
            if len(short) >= 4 and long_.startswith(short) and long_[len(short) :] in _DERIVATIONS:
                match = x
                break
            if (
                len(short) >= 5
                and short.endswith("e")
                and long_.startswith(short[:-1])
                and long_[len(short) - 1 :] in _DERIVATIONS  # europe / european
            ):
                match = x
                break
        if match is None:
            keep_a.append(w)
        else:
            rest_b = [x for x in rest_b if x is not match]
            pairs.append((w, match))
    return keep_a, rest_b, pairs


def _initials(many: list[Word], few: list[Word]) -> tuple[list[Word], list[Word]]:
    """Drop an acronym in ``few`` spelled by consecutive leftover words of ``many``."""
    for w in list(few):
        n = len(w.raw)
        if n < 2 or n > len(many):
            continue
        for i in range(len(many) - n + 1):
            if "".join(x.raw[0] for x in many[i : i + n]) == w.raw:
                few = [x for x in few if x is not w]
                many = many[:i] + many[i + n :]
                break
    return many, few
