"""Word classes of the default verifier: opposites (polarity), particles, irregular
forms, negating prefixes and synonym groups (re-exported by ``_lexicon``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ._lexicon_words import _data

#: Opposites: lemma -> (axis, side). A prompt that says one side where the other says the
#: opposite asks the opposite question. Irregular inflections are listed.
_PAIRS = _data("opposites.txt")


def _polarity() -> dict[str, tuple[str, int]]:
    out: dict[str, tuple[str, int]] = {}
    for pair in _PAIRS.split("|"):
        words = pair.split()
        if len(words) != 2:
            continue
        a, b = words
        axis = f"{a}/{b}"
        # a word keeps its first axis: later pairs only add new words
        out.setdefault(a, (axis, 0))
        out.setdefault(b, (axis, 1))
    return out


#: word -> (axis, side). Two different words on one axis with different sides: opposite.
POLARITY: dict[str, tuple[str, int]] = _polarity()
#: Every axis a word is on (a word such as "light" has several opposites).
POLARITY_AXES: dict[str, frozenset[tuple[str, int]]] = {}
for _pair in _PAIRS.split("|"):
    _words = _pair.split()
    if len(_words) == 2:
        _axis = f"{_words[0]}/{_words[1]}"
        for _side, _w in enumerate(_words):
            POLARITY_AXES[_w] = POLARITY_AXES.get(_w, frozenset()) | {(_axis, _side)}
del _pair, _words, _axis, _side, _w

#: Particles whose opposite changes the verb before them (log in / log out, turn on / off).
PARTICLES: dict[str, tuple[str, int]] = {
    "in": ("in/out", 0), "out": ("in/out", 1), "on": ("on/off", 0), "off": ("on/off", 1),
    "up": ("up/down", 0), "down": ("up/down", 1),
}  # fmt: skip

#: Irregular forms -> the lemma their polarity is listed under.
IRREGULAR: dict[str, str] = {
    "bought": "buy", "sold": "sell", "won": "win", "lost": "lose", "rose": "rise",
    "fell": "fall", "sent": "send", "began": "begin", "begun": "begin", "gave": "give",
    "took": "take", "taught": "teach", "learnt": "learn", "forgot": "forget",
    "forgotten": "forget", "lent": "lend", "caught": "catch", "grew": "grow",
    "shrank": "shrink", "hated": "hate", "better": "good", "best": "good",
    "worse": "bad", "worst": "bad",
}  # fmt: skip

#: Prefixes that make an opposite of the word they precede (unlock, disagree, non-stop).
NEG_PREFIXES = ("un", "dis", "non", "in", "im", "il", "ir", "de", "anti", "mis")


#: Synonym groups: every word maps to the first of its group (kept small and safe).
_SYNONYMS = """
fast quick quickly rapidly speedily swiftly | big large huge | biggest largest |
small little tiny | store shop | movie film | buy purchase | begin start commence launch |
gift present |
finish end complete | help assist | fix repair | error issue problem bug | show display |
make create build | get obtain acquire | use utilize utilise | need require |
answer reply respond response | way method | learn study | car automobile vehicle |
kid child | kids children | picture photo image pic | pic picture | job work |
boss manager | phone smartphone cellphone mobile cell | tv television | pc computer |
laptop notebook | doctor physician | couch sofa | sneakers trainers | cancelled canceled |
colour color | favourite favorite | centre center | organise organize | realise realize |
analyse analyze | programme program | travelling traveling | cheque check | grey gray |
summarise summarize | apologise apologize | optimise optimize | prioritise prioritize |
email e-mail mail | website site webpage | app application | wifi wi-fi wireless |
ok okay | permitted allowed | forbidden prohibited banned | shut closed | happen occur |
choose pick select | talk speak | say tell | near nearby | around approximately |
among between | when whenever | where wherever | yearly annual annually | monthly | daily |
cost price | cheap inexpensive affordable | expensive costly pricey | rich wealthy |
smart intelligent clever | hard difficult tough | easy simple | correct right proper |
wrong incorrect | mistake error | delete remove erase | update change modify edit |
speed velocity | number amount quantity | ill sick | begin beginning start |
couple pair | entire whole | nation country | city town | people persons folks |
guy man | lady woman | dad father | mom mother mum | tummy stomach | info information |
quit stop | deliver ship delivery shipping |
inventor invent invented invention | maths math mathematics | uk britain | america usa |
shipping shipment | fee charge | profile account | login logon signin |
logout signout | password passcode | id identifier |
bigger larger | main primary principal | common typical usual | sturdy durable robust |
reduce lessen minimize minimise | merge combine | cause trigger | cancel terminate |
symptom sign | almost nearly | booking reservation | substitute replacement alternative |
faulty defective | home house | verify confirm | attorney lawyer |
medication medicine meds | apartment flat | trash garbage rubbish | folder directory |
fix resolve | huge enormous massive | fast rapid | journey trip |
"""


#: The synonym groups, as word lists.
SYNONYM_GROUPS: tuple[tuple[str, ...], ...] = tuple(
    tuple(g.split()) for g in _SYNONYMS.split("|") if g.split()
)


def union_groups(groups: Iterable[Sequence[str]]) -> dict[str, str]:
    """Union of overlapping groups; every member maps to one representative (members that
    are their own representative are left out)."""
    parent: dict[str, str] = {}

    def root(w: str) -> str:
        while parent.setdefault(w, w) != w:
            w = parent[w]
        return w

    for words in groups:
        for w in words[1:]:
            a, b = root(words[0]), root(w)
            if a != b:
                parent[b] = a
    return {w: root(w) for w in parent if root(w) != w}


#: word -> its group's representative.
SYNONYMS: dict[str, str] = union_groups(SYNONYM_GROUPS)
