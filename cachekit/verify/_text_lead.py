"""The auxiliary that opens a yes/no question ("Can I ...?", "Should I ...?", "Has my
refund been ...?"): in such a question it *is* the question, so "Can I bring food?" and
"Should I bring food?" ask different things, while "How can I ..." / "How should I ..."
(the auxiliary inside a wh-question) usually do not.
"""

from __future__ import annotations

import re

#: Opening auxiliary -> its class.
LEAD_CLASS: dict[str, str] = {
    "can": "can", "could": "can", "may": "can", "might": "can", "cannot": "can",
    "should": "should", "shall": "should", "ought": "should",
    "must": "must",
    "will": "will", "would": "will", "won": "will",
    "do": "present", "does": "present", "is": "present", "are": "present", "am": "present",
    "did": "past", "was": "past", "were": "past", "had": "past",
    "has": "perfect", "have": "perfect",
}  # fmt: skip

#: Pairs of classes that ask different questions ("will" vs "is" often asks the same one:
#: "Will the store be open tomorrow?" / "Is the store open tomorrow?").
CLASHES: frozenset[frozenset[str]] = frozenset(
    frozenset(p)
    for p in (
        ("can", "should"),
        ("can", "must"),
        ("should", "must"),
        ("will", "past"),
        ("will", "perfect"),
        ("present", "past"),
    )
)
TENSES = frozenset(("will", "past", "perfect", "present"))

_OPENERS = r"(?:(?:hi|hey|hello|so|ok|okay|also|and|but|please|um|quick\s+question)\b[\s,!.:-]*)*"
_LEAD = re.compile(
    r"(?:^|(?<=[.?!:;])\s*)\s*" + _OPENERS + r"(" + "|".join(LEAD_CLASS) + r")(?:n't|'t|not)?"
    r"\s+(\w+)(?:\s+(\w+))?(?:\s+(\w+))?",
    re.IGNORECASE,
)
_SUBJECT_AFTER_MAY = frozenset(("i", "we", "you", "he", "she", "they", "it", "my", "the", "one"))
#: "Do I have to", "Does he need to": obligation, whatever the auxiliary's tense.
_NEED = frozenset(("have", "has", "need", "needs", "got"))


def leads(text: str) -> frozenset[str]:
    """The classes of the auxiliaries that open the text's yes/no questions."""
    out: set[str] = set()
    for m in _LEAD.finditer(text):
        aux = m.group(1).lower()
        nxt = m.group(2).lower()
        if aux == "may" and nxt not in _SUBJECT_AFTER_MAY:
            continue  # "May 5 is ...": the month
        if aux == "won" and not m.group().lower().startswith("won't"):
            continue
        cls = LEAD_CLASS.get(aux)
        if cls is None:
            continue  # case-insensitive matching took a non-ASCII letter ("İs")
        if (
            cls in ("present", "past", "perfect")
            and {
                (m.group(3) or "").lower(),
                (m.group(4) or "").lower(),
            }
            & _NEED
            and "to" in m.group().lower().split()
        ):
            cls = "must"  # "Do I have to file a return?"
        out.add(cls)
    return frozenset(out)


_AUX = (
    "did|does|do|is|are|was|were|am|has|have|had|will|would|can|could|should|shall|may|might|"
    "must|not"
)
#: "Who did Hector kill?" (who is the object) vs "Who killed Hector?" (who is the subject).
_WHO_OBJECT = re.compile(r"\bwhom?\s+(?:did|does|do)\b", re.IGNORECASE)
_WHO_SUBJECT = re.compile(rf"\bwho\s+(?!(?:{_AUX})\b)[a-z]{{3,}}", re.IGNORECASE)


def who_role(text: str) -> str:
    """Whether "who" asks for the subject ("who killed Hector") or the object ("who did
    Hector kill") of the question's verb; "" when the text does not say."""
    if "who" not in text.lower():
        return ""
    if _WHO_OBJECT.search(text):
        return "object"
    if _WHO_SUBJECT.search(text):
        return "subject"
    return ""


def clash(a: frozenset[str], b: frozenset[str]) -> tuple[str, str] | None:
    """Two opening auxiliaries that ask different questions (None when they agree)."""
    if not a or not b or not a.isdisjoint(b):
        return None
    for x in sorted(a):
        for y in sorted(b):
            if frozenset((x, y)) in CLASHES:
                return x, y
    return None
