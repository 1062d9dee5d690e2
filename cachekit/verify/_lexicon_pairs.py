"""Word classes of the default verifier: opposites (polarity), particles, irregular
forms, negating prefixes and synonym groups (re-exported by ``_lexicon``).
"""

from __future__ import annotations

#: Opposites: lemma -> (axis, side). A prompt that says one side where the other says the
#: opposite asks the opposite question. Irregular inflections are listed.
_PAIRS = """
buy sell | buyer seller | purchase sell | open close | opened closed |
open shut | before after | increase decrease | raise lower | raise cut | allow forbid |
allow prohibit | allow ban | allow block | allowed forbidden | permit forbid | start stop |
start end | begin end | enable disable | add remove | add delete | import export |
upload download | win lose | won lost | win loss | best worst | better worse |
cheap expensive | cheaper pricier | maximize minimize | maximise minimise | positive negative |
hot cold | high low | higher lower | good bad | lock unlock | accept reject | accept decline |
approve reject | approve deny | send receive | sent received | hire fire | rise fall |
rose fell | true false | legal illegal | safe unsafe | safe dangerous | easy hard |
easy difficult | fast slow | faster slower | gain lose | love hate | like dislike |
strong weak | rich poor | old new | old young | early late | earlier later | inside outside |
left right | north south | east west | male female | man woman | men women | boy girl |
husband wife | father mother | son daughter | brother sister | king queen | pros cons |
advantage disadvantage | success failure | succeed fail | happy sad | join leave |
arrive depart | arrival departure | encrypt decrypt | install uninstall | subscribe unsubscribe |
online offline | public private | include exclude | included excluded | borrow lend |
debit credit | income expense | profit loss | light dark | wet dry | big small |
large small | long short | heavy light |
above below | over under | push pull | input output | internal external |
deposit withdraw | attack defend | teacher student | employer employee | landlord tenant |
import export | inbound outbound |
incoming outgoing | entry exit | enter exit |
plus minus | add subtract | multiply divide | ascending descending | asc desc | upper lower |
uppercase lowercase | horizontal vertical | front back | forward backward | future past |
majority minority | checkin checkout | login logout | sign-in sign-out |
signin signout | connect disconnect | connected disconnected | mount unmount | zip unzip |
compress decompress | encode decode | charge discharge | agree disagree | like unlike |
possible impossible | available unavailable | able unable | valid invalid | visible invisible |
legal unlawful | true untrue | fair unfair | happy unhappy | healthy unhealthy | wanted unwanted |
pass fail | passed failed | present absent | remember forget | include omit | catch miss |
accept refuse | give take | lend borrow | teach learn | ask answer | question answer |
buy rent | own rent | refund charge | rural urban | domestic international | domestic foreign |
native foreign | local global | local remote | client server | sender recipient |
senior junior | adult child | adults children | parent child | full empty | full partial |
hard soft | thick thin | wide narrow | deep shallow | tall short | fat thin | loud quiet |
dead alive | sweet sour | sweet salty | raw cooked | fresh frozen | gas electric |
manual automatic | odd even | beginner advanced | cheap premium | free paid | gain loss |
profit deficit | surplus deficit | acid base | acidic alkaline | export import |
increase reduce | grow shrink | expand shrink | upgrade downgrade | overweight underweight |
overpaid underpaid | overestimate underestimate | overrated underrated | pre post |
"""


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
small little tiny | store shop | movie film | buy purchase | begin start commence |
finish end complete | help assist | fix repair | error issue problem bug | show display |
make create build | get obtain acquire | use utilize utilise | need require |
answer reply respond response | way method | learn study | car automobile vehicle |
kid child | kids children | picture photo image pic | pic picture | job work |
boss manager | phone smartphone cellphone mobile | tv television | pc computer |
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
quit stop | deliver ship | delivery shipping |
inventor invent invented invention | maths math mathematics | uk britain | america usa |
shipping shipment | fee charge | profile account | login logon signin |
logout signout | password passcode | id identifier |
"""


def _synonyms() -> dict[str, str]:
    """Union of overlapping groups; every word maps to one representative."""
    parent: dict[str, str] = {}

    def root(w: str) -> str:
        while parent.setdefault(w, w) != w:
            w = parent[w]
        return w

    for group in _SYNONYMS.split("|"):
        words = group.split()
        for w in words[1:]:
            a, b = root(words[0]), root(w)
            if a != b:
                parent[b] = a
    return {w: root(w) for w in parent if root(w) != w}


#: word -> its group's representative.
SYNONYMS: dict[str, str] = _synonyms()
