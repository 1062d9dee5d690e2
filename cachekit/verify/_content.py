"""Content words for ``_signals``: align two prompts' content words, explain what can be
explained (typos, compounds, reordering, initials, derived forms) and weigh the rest.
"""

from __future__ import annotations

from . import _lexicon as lx
from ._signal_names import Signals, _words
from ._text import Analysis, Word, polarity_stem
from ._typos import _filler_typo, _known, _opposite, _typo, _typo_str


def align_content(a: Analysis, b: Analysis, out: Signals, near: float, flipped: list[str]) -> None:
    """Align the content words of ``a`` and ``b``; explain typos, compounds, reordering,
    synonyms, initials and derived forms; weigh what is left (opposites found among the
    leftovers are appended to ``flipped``)."""
    v, d = out.values, out.details
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
        # a word the other prompt has too, only not as a content word (US / us, like);
        # a content word there too is a repeat the other prompt lacks ("rice ... rice"
        # vs "stomach ... rice"): it stays a difference
        if left_a or left_b:
            fa, fb = set(a.folded), set(b.folded)
            sa, sb = set(ka), set(kb)
            left_a = [w for w in left_a if w.raw not in fb or w.key in sb]
            left_b = [w for w in left_b if w.raw not in fa or w.key in sa]
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
            narrowing = [w.raw for w in rest_a or rest_b if w.raw in lx.RESTRICTING]
            if narrowing and not v.get("scope"):
                # "best laptops" / "best cheap laptops": the added word narrows the question
                v["scope"] = 1.0
                which = "cached" if rest_a else "new"
                d["scope"] = f"{', '.join(narrowing)} only in the {which} prompt"
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
