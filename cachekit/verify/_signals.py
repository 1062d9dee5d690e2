"""Compare two analysed prompts: the signals that say their answers differ.

Each signal is a number (mostly 0/1) with a short detail for the verdict's reason. The
content comparison follows one principle: align the two prompts' content words; what is
left over after explaining typos, compounds (log in = login), reordering and synonyms is
what the prompts disagree on. A leftover word weighs more the more of the rest agrees
(``overlap``): in a near-copy the one word that differs is the question.
"""

from __future__ import annotations

from ._content import align_content
from ._signal_names import FEATURES, HARD_SIGNALS, SIGNAL_REASONS, Signals, _counted, _fmt, _ne
from ._text import Analysis, token_bag
from ._text_lead import TENSES, clash
from ._token_edits import token_edits

__all__ = ["FEATURES", "HARD_SIGNALS", "SIGNAL_REASONS", "Signals", "compare"]

#: Cues whose exchange for one another changes the question (from / to, than / by);
#: "in" / "on" / "at" / "for" / "with" only count when a role moves to another word.
_DIRECTIONAL = frozenset(("from", "to", "than", "beat", "against", "over", "under", "by"))

#: Features that do not stop a pair from being "clean".
_HARMLESS = frozenset(("cos", "overlap", "near", "typo", "moved", "question_add"))

#: Words before a name after which its position carries no role (lists, "X and Y").
_ORDER_FREE = frozenset(
    ("and", "or", "between", "&", "<list>", "vs", "versus", "nor", "both", "either")
)


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
    if a.formula and b.formula and a.formula != b.formula:
        # "x^2 - 5x + 6 = 0" / "x^2 - 5x - 6 = 0": an operator is a number's sign
        v["number"] = 1.0
        d.setdefault("number", f"{a.formula} vs {b.formula}")
    if _ne(a.dates, b.dates):
        only_a, only_b = a.dates - b.dates, b.dates - a.dates
        name = "date" if only_a and only_b else "date_add"
        if name == "date_add" and a.times and a.times == b.times:
            # "move my meeting to 4pm" / "... to 4pm tomorrow": a clock time without a day
            # means the next one, so a day added to the same time names another moment
            name = "date"
        v[name] = 1.0
        d[name] = f"{_fmt(only_a)} vs {_fmt(only_b)}"
    _counted("time", a.times, b.times, out)
    # a unit for another (Celsius / Fahrenheit, GB / TB); a unit only one prompt names
    # ("under 25000" / "under 25000 INR") is nearly always the same question
    if (ua := a.units - b.units) and (ub := b.units - a.units):
        v["unit"] = 1.0
        d["unit"] = f"{_fmt(ua)} vs {_fmt(ub)}"
    if _ne(a.scope, b.scope):
        only_a, only_b = a.scope - b.scope, b.scope - a.scope
        # "first" vs "last", "all" vs "any": a substitution; one extra word: an addition.
        # "some" is filler on its own ("what are (some) good books") but "some" for
        # "all" is a substitution
        name = "scope" if only_a and only_b else "scope_add"
        left, right = _fmt(only_a), _fmt(only_b)
        if name == "scope_add" and _some(b if only_a else a, a if only_a else b):
            name = "scope"
            left, right = (left, "some") if only_a else ("some", right)
        v[name] = 1.0
        d.setdefault(name, f"{left} vs {right}")
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
    if a.who and b.who and a.who != b.who:
        # "Who killed Hector?" / "Who did Hector kill?": the same words, the other role
        v["swap"] = 1.0
        d["swap"] = f"who as {a.who} vs who as {b.who}"
    if a.lead and b.lead and (lead := clash(a.lead, b.lead)) is not None:
        # "Can I ...?" / "Should I ...?": the opening auxiliary is the question
        name = "lead_tense" if lead[0] in TENSES and lead[1] in TENSES else "lead_modal"
        v[name] = 1.0
        d[name] = f"{lead[0]} vs {lead[1]} (opening the question)"

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
    align_content(a, b, out, near, flipped)

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

    token_edits(a, b, out)

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


def _some(lacking: Analysis, having: Analysis) -> bool:
    """``lacking`` says "some" where ``having`` says "all" (or every, each ...)."""
    return (
        "some" in lacking.folded
        and "some" not in having.folded
        and "all" in having.scope
        and "all" not in lacking.scope
    )
