"""Edits only a token-by-token view of two equally long prompts shows (for ``_signals``).

The content alignment compares content words as multisets, so it cannot see two words
that changed places ("Summer of Code" / "Code of Summer") or a filler word replaced by a
content word ("find a job" / "lose a job"); this module reads the two token sequences
position by position for those.
"""

from __future__ import annotations

from . import _lexicon as lx
from ._lexicon_words import _wordlist
from ._signal_names import Signals
from ._text import Analysis, stem
from ._typos import _known, _typo_str

__all__ = ["token_edits"]

#: Words in the middle of two exchanged blocks that make them a list ("X and Y").
_CONJUNCTIONS = frozenset(("and", "or", "&", "vs", "versus", "nor"))
#: Signals that already name a single changed word (the token check adds nothing).
_NAMED = ("number", "number_add", "identifier", "date", "date_add", "time", "unit",
          "negation", "polarity", "scope", "scope_add", "relation", "question",
          "question_add", "modality", "tense", "lone_sub", "swap", "order")  # fmt: skip


#: Filler words too light to carry a question: a word put in their place is wording
#: ("become" / "be", "the story behind" / "of"), not another question.
_LIGHT = frozenset(
    _wordlist(
        """
        a an the this that these those i me my mine we us our you your yours it its one
        ones some any is are am was were be been being do does did done doing have has had
        having get got can could would will shall should may might must to of in on at for
        with by about as and or but so if then than also too there here what which how
        """
    )
)

#: Articles: a filler word after one is used as a noun ("a list").
_ARTICLES = frozenset(("a", "an", "the"))
#: Words a noun phrase may hold besides its plain words ("the battle of the Somme").
_PHRASE = _ARTICLES | frozenset(
    ("my", "your", "our", "his", "her", "their", "its", "this", "that", "these", "those", "of")
)


#: A personal pronoun's subject and object forms, as one token per person.
_PERSON = {"i": "<i>", "me": "<i>", "we": "<we>", "us": "<we>", "you": "<you>",
           "he": "<he>", "him": "<he>", "they": "<they>", "them": "<they>"}  # fmt: skip


def _persons(tokens: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(_PERSON.get(t, t) for t in tokens)


def _shown(tokens: tuple[str, ...]) -> str:
    return " ".join(t.strip("<>") for t in tokens)


def _nounish(tokens: tuple[str, ...], i: int) -> bool:
    """tokens[i] can hold a role: a plain word, or a filler word used as a noun after an
    article ("convert a list to a string")."""
    word = tokens[i]
    if word[:1].isdigit():
        return True  # an amount holds a role too ("I paid 60 and she paid 40")
    return _plain(word) or (
        i > 0
        and tokens[i - 1] in _ARTICLES
        and word.isalpha()
        and word not in lx.SCOPE
        and word not in lx.NEGATION
    )


def _phrase_word(word: str) -> bool:
    return word in _PHRASE or word.isdigit() or _plain(word)


def _plain(word: str) -> bool:
    """A word whose place in the prompt can carry a role (not filler or a scope word;
    a person, "<i>", can)."""
    return word.startswith("<") or (
        word not in lx.FILLER
        and word not in lx.SCOPE
        and word not in lx.NEGATION
        and word.isalpha()
    )


def token_edits(a: Analysis, b: Analysis, out: Signals) -> None:
    """What only a token-by-token view of two equally long prompts shows: two words
    that changed places ("Summer of Code" / "Code of Summer": a swap of roles, unless
    they are a list such as "X and Y"), and one word changed for another where one of
    them is a filler word ("do you think" / "do you still"), which the alignment of
    content words cannot see."""
    fa, fb = a.folded, b.folded
    if len(fa) != len(fb) or fa == fb:
        return
    v, d = out.values, out.details
    # positions whose words differ beyond inflection (container / containers)
    diff = [i for i, (x, y) in enumerate(zip(fa, fb, strict=True)) if x != y and stem(x) != stem(y)]
    if len(diff) >= 3 and not v.get("swap"):
        exchanged = _exchanged_everywhere(fa, fb, diff)
        if exchanged is not None:
            v["swap"] = 1.0
            d["swap"] = exchanged
            return
    if len(diff) == 1 and (v.get("scope_add") or v.get("question_add")):
        x, y = fa[diff[0]], fb[diff[0]]
        if (x in lx.SCOPE or y in lx.SCOPE) and lx.SCOPE.get(x) != lx.SCOPE.get(y):
            # a scope word in another word's place ("one" / "each", "also" / "only"):
            # a substitution, not an added word
            v.pop("scope_add", None)
            d.pop("scope_add", None)
            v["scope"] = 1.0
            d["scope"] = f"{x} vs {y}"
            return
    if any(v.get(name) for name in _NAMED):
        return
    if len(diff) >= 2:
        # "my manager yelled at me" / "I yelled at my manager": the speaker and the
        # manager changed roles; "I" and "me" are one person in two cases, so the two
        # prompts are read with one token per person for this
        blocks = _exchanged(_persons(fa), _persons(fb), {w.raw for w in a.content})
        if blocks is not None:
            v["swap"] = 1.0
            d["swap"] = blocks
    elif len(diff) == 1:
        x, y = fa[diff[0]], fb[diff[0]]
        filler, word, there = (x, y, b) if x in lx.FILLER else (y, x, a)
        if (
            filler in lx.FILLER
            and filler not in _LIGHT
            and word not in lx.FILLER
            and word.isalpha()
            and _known(word)
            and any(w.raw == word for w in there.content)
            and lx.SYNONYMS.get(x, x) != lx.SYNONYMS.get(y, y)
            and not _typo_str(x, y)
        ):
            # one word for another, not an addition of the content word
            for name in ("content_add", "add_near"):
                v.pop(name, None)
            v["lone_sub"] = v["content_sub"] = 1.0
            v["sub_near"] = v["near"]
            d["lone_sub"] = d["content_sub"] = d["content_n"] = f"{x} vs {y}"
            v.setdefault("content_n", 1 / 6)


def _a_list(before: str, x: tuple[str, ...], y: tuple[str, ...], mid: tuple[str, ...]) -> bool:
    """The middle of two exchanged blocks ``x`` and ``y`` leaves their order free.

    A conjunction anywhere in it says "a list" ("INNER JOIN and LEFT JOIN": the shared
    "join" hides the blocks' ends), unless the blocks fill one role twice: two amounts each
    counting the word after them ("2 adults and 3 kids"; "between 5 and 10" stays free), or
    two parallel clauses, the word ``before`` the first block coming again in the middle
    ("I paid 60 and she paid 40"). No middle at all: two clauses in the other order.
    """
    if not mid:
        return True
    if _CONJUNCTIONS.isdisjoint(mid):
        return False
    if len(x) == len(y) == 1 and x[0][:1].isdigit() and y[0][:1].isdigit() and _plain(mid[0]):
        return False
    return not (before in mid and _plain(before))


def _exchanged(fa: tuple[str, ...], fb: tuple[str, ...], content: set[str]) -> str | None:
    """Two blocks of words that changed places around the same middle ("the Roman
    Empire conquer Gaul" / "Gaul conquer the Roman Empire"): a swap of roles, unless
    the middle leaves the order free ("X and Y", "X or Y") or there is no middle at all
    (two clauses in the other order say the same)."""
    n = len(fa)
    p = 0
    while p < n and fa[p] == fb[p]:
        p += 1
    q = 0
    while q < n - p and fa[n - 1 - q] == fb[n - 1 - q]:
        q += 1
    ma, mb = [stem(t) for t in fa[p : n - q]], [stem(t) for t in fb[p : n - q]]
    m = len(ma)
    for lx_ in range(1, m):
        if ma[:lx_] != mb[m - lx_ :]:
            continue
        for ly in range(1, m - lx_ + 1):
            if ma[m - ly :] != mb[:ly] or ma[lx_ : m - ly] != mb[ly : m - lx_]:
                continue
            x, y, mid = fa[p : p + lx_], fa[p + m - ly : p + m], fa[p + lx_ : p + m - ly]
            if lx_ == ly == 1 and not mid:
                # two neighbours: only two content words ("Summer Code") are a swap, not
                # "free only" / "only free" or "England not" / "not England"
                free = not (x[0] in content and y[0] in content)
            else:
                free = _a_list(fa[p - 1] if p else "", x, y, mid)
            xs, ys = range(p, p + lx_), range(p + m - ly, p + m)
            if (
                free
                or not any(_nounish(fa, k) for k in xs)
                or not any(_nounish(fa, k) for k in ys)
                # "I forgot my password, how do I reset it?" / "How do I reset my
                # password? I forgot it": clauses in another order, not two names
                or not all(_phrase_word(fa[k]) or _nounish(fa, k) for k in (*xs, *ys))
            ):
                return None
            return f"{_shown(x)} / {_shown(y)}"
    return None


def _exchanged_everywhere(fa: tuple[str, ...], fb: tuple[str, ...], diff: list[int]) -> str | None:
    """Two words exchanged at every place either occurs, more than once ("the employee
    reports to the manager; how does the manager give feedback" / "the manager reports
    to the employee; how does the employee ..."): roles swapped throughout."""
    x, y = fa[diff[0]], fb[diff[0]]
    if not all({fa[i], fb[i]} == {x, y} for i in diff):
        return None
    if not (_nounish(fa, diff[0]) and _nounish(fb, diff[0])):
        return None
    if {fa[i] for i in diff} != {x, y}:
        return None  # one word replaced by the other everywhere: a substitution
    return f"{x} / {y}"
