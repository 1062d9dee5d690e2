"""Word classes of the default verifier: small, closed lists of English function words.

Everything here is about *which words may differ* between two prompts with the same
answer. Filler words may come and go; words of the other classes carry meaning and must
agree (numbers, negation, polarity, scope, dates and times, question words). A word in
none of the lists is a content word: the verifier accepts its absence or substitution
only when the rest of the prompt shows a paraphrase rather than a near-copy.

Forms are lower-case. Polarity pairs are listed by lemma and a few irregular forms; the
stemmer in ``_text`` maps regular inflections (buys, buying, closed) to the lemma.
"""

from __future__ import annotations


def _wordlist(text: str) -> list[str]:
    """The whitespace-separated words of a block of text (keeps the lists compact)."""
    return text.split()


__all__ = [
    "ABBREVIATIONS",
    "AMBIGUOUS_DATES",
    "CONTRACTIONS",
    "CUES",
    "CUE_CANON",
    "DATE_WORDS",
    "FILLER",
    "GAZETTEER",
    "HOW_KIND",
    "IRREGULAR",
    "MODAL",
    "NEGATION",
    "NEG_PREFIXES",
    "NUMBER_WORDS",
    "NUMERIC_ONLY_UNITS",
    "ORDINAL_WORDS",
    "PARTICLES",
    "POLARITY",
    "POLARITY_AXES",
    "RELATIONS",
    "SCOPE",
    "SYNONYMS",
    "S_IS",
    "TENSE",
    "TIME_WORDS",
    "UNITS",
    "WH",
]

#: Words whose presence or absence does not change what is asked.
FILLER = frozenset(
    _wordlist(
        """
        a an the this that these those please pls plz kindly hi hello hey hiya thanks thank
        thx ty cheers you u ur your yours i me my mine we us our one ones someone somebody
        is are am was were be been being do does did done doing have has had having can
        could would will shall should may might must get got to of in on at for with by
        about as and or but so if then than also too just really actually basically very
        quite some any there here it its it's what which how tell know want wanted wondering
        wonder question quick like need let lets help ok okay oh um uh well hmm sir madam
        dear guys regarding re again now currently sorry bother asap urgent urgently curious
        wondering appreciate appreciated advance greetings folks everyone think ever need
        needs believe feel guess suppose reckon opinion according exactly specifically
        particular particularly generally typically kind basically honestly seriously
        literally anyone anybody possible way ways best good great give show find explain
        describe list provide share suggest
        """
    )
) - frozenset(("now", "best", "good", "great", "like"))
# "now", "best", "good", "great", "like" stay meaningful (POLARITY).

#: Negation words; a prompt's negation parity must agree.
NEGATION = frozenset(
    _wordlist(
        """
        not no never none nobody nothing nowhere neither nor without except excluding non
        n't cannot unless
        """
    )
)

#: Expansions of contracted forms (apostrophes already normalised to ').
CONTRACTIONS: dict[str, tuple[str, ...]] = {
    "can't": ("can", "not"),
    "cannot": ("can", "not"),
    "won't": ("will", "not"),
    "shan't": ("shall", "not"),
    "ain't": ("is", "not"),
    "let's": ("let", "us"),
    "dont": ("do", "not"),
    "doesnt": ("does", "not"),
    "didnt": ("did", "not"),
    "isnt": ("is", "not"),
    "arent": ("are", "not"),
    "wasnt": ("was", "not"),
    "werent": ("were", "not"),
    "cant": ("can", "not"),
    "wont": ("will", "not"),
    "couldnt": ("could", "not"),
    "shouldnt": ("should", "not"),
    "wouldnt": ("would", "not"),
    "havent": ("have", "not"),
    "hasnt": ("has", "not"),
    "hadnt": ("had", "not"),
    "im": ("i", "am"),
    "ive": ("i", "have"),
    "youre": ("you", "are"),
    "whats": ("what", "is"),
    "thats": ("that", "is"),
    "hows": ("how", "is"),
    "wheres": ("where", "is"),
    "whos": ("who", "is"),
    "theres": ("there", "is"),
}
#: Words after which 's means "is" (elsewhere it is a possessive and dropped).
S_IS = frozenset(
    _wordlist(
        """
        it that what who where when how there here he she which why this
        """
    )
)

#: Number words -> value (combined by _text: "twenty five" = 25, "two hundred" = 200).
NUMBER_WORDS: dict[str, int] = {
    "zero": 0, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
    "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60,
    "seventy": 70, "eighty": 80, "ninety": 90, "hundred": 100, "thousand": 1000,
    "million": 1_000_000, "billion": 1_000_000_000, "dozen": 12, "twice": 2,
}  # fmt: skip
#: "one" is a pronoun as often as a number: it is a number only next to a digit's place
#: (handled in _text: "one" matches "1" but is not a number on its own).

ORDINAL_WORDS: dict[str, int] = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6,
    "seventh": 7, "eighth": 8, "ninth": 9, "tenth": 10, "eleventh": 11, "twelfth": 12,
    "thirteenth": 13, "fourteenth": 14, "fifteenth": 15, "sixteenth": 16,
    "seventeenth": 17, "eighteenth": 18, "nineteenth": 19, "twentieth": 20,
    "thirtieth": 30, "fortieth": 40, "fiftieth": 50, "hundredth": 100,
}  # fmt: skip

#: Scope and quantity words -> their class (words of one class are interchangeable).
SCOPE: dict[str, str] = {
    "all": "all", "every": "all", "each": "all", "entire": "all", "whole": "all",
    "any": "any", "only": "only", "solely": "only", "exclusively": "only",
    "both": "both", "either": "either", "neither": "neither", "most": "most",
    "least": "least", "more": "more", "less": "less", "fewer": "less", "many": "many",
    "few": "few", "several": "several", "last": "last", "final": "last", "next": "next",
    "previous": "previous", "prior": "previous", "top": "top", "bottom": "bottom",
    "max": "max", "maximum": "max", "min": "min", "minimum": "min", "half": "half",
    "double": "double", "single": "single", "once": "once", "always": "always",
    "sometimes": "sometimes", "often": "often", "frequently": "often", "usually": "often",
    "rarely": "rarely", "seldom": "rarely", "largest": "largest", "biggest": "largest",
    "smallest": "smallest", "highest": "highest", "lowest": "lowest", "oldest": "oldest",
    "newest": "newest", "youngest": "youngest", "latest": "latest", "earliest": "earliest",
    "longest": "longest", "shortest": "shortest", "fastest": "fastest",
    "slowest": "slowest", "cheapest": "cheapest", "richest": "richest",
    "poorest": "poorest", "tallest": "tallest", "greatest": "greatest",
    "hardest": "hardest", "easiest": "easiest", "closest": "closest",
    "nearest": "closest", "farthest": "farthest", "furthest": "farthest",
    "heaviest": "heaviest", "lightest": "lightest", "strongest": "strongest",
    "weakest": "weakest", "safest": "safest", "hottest": "hottest",
    "coldest": "coldest", "deepest": "deepest", "busiest": "busiest",
    "total": "total", "average": "average", "annual": "annual",
    "yearly": "annual", "monthly": "monthly", "weekly": "weekly", "daily": "daily",
    "hourly": "hourly",
}  # fmt: skip

#: Relation words: when, where or for what the rest holds (before 1848, after it has
#: shipped, an essay against X). Their multiset must agree.
RELATIONS: dict[str, str] = {
    "before": "before", "after": "after", "within": "within", "until": "until",
    "till": "until", "since": "since", "during": "during", "beyond": "beyond",
    "besides": "besides", "instead": "instead", "against": "against", "unlike": "unlike",
    "despite": "despite", "including": "including",
}  # fmt: skip

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

#: Date words -> canonical value.
DATE_WORDS: dict[str, str] = {
    **{
        m: f"month:{i}"
        for i, m in enumerate(
            [
                "january",
                "february",
                "march",
                "april",
                "may",
                "june",
                "july",
                "august",
                "september",
                "october",
                "november",
                "december",
            ],
            start=1,
        )
    },
    **{
        m: f"month:{i}"
        for i, m in enumerate(
            ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], 1
        )
    },
    "sept": "month:9",
    **{
        d: f"weekday:{i}"
        for i, d in enumerate(
            ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"], 1
        )
    },
    **{
        d: f"weekday:{i}"
        for i, d in enumerate(["mon", "tue", "wed", "thu", "fri", "sat", "sun"], 1)
    },
    "today": "rel:today",
    "tomorrow": "rel:tomorrow",
    "yesterday": "rel:yesterday",
    "tonight": "rel:tonight",
    "weekend": "rel:weekend",
    "weekday": "rel:weekday",
    "spring": "season:spring",
    "summer": "season:summer",
    "autumn": "season:autumn",
    "fall": "season:autumn",
    "winter": "season:winter",
    "christmas": "holiday:christmas",
    "easter": "holiday:easter",
    "halloween": "holiday:halloween",
    "thanksgiving": "holiday:thanksgiving",
}
#: Words that are dates only when capitalised mid-sentence (may = the modal verb, etc.).
AMBIGUOUS_DATES = frozenset(("may", "mar", "sat", "sun", "wed", "fall", "jan", "mon"))

#: Time-of-day words -> canonical value.
TIME_WORDS: dict[str, str] = {
    "am": "ampm:am", "a.m": "ampm:am", "pm": "ampm:pm", "p.m": "ampm:pm",
    "noon": "tod:noon", "midday": "tod:noon", "midnight": "tod:midnight",
    "morning": "tod:morning", "afternoon": "tod:afternoon", "evening": "tod:evening",
    "night": "tod:night", "overnight": "tod:night", "dawn": "tod:morning",
    "dusk": "tod:evening",
}  # fmt: skip

#: Units -> canonical unit. Currency symbols included ($ -> usd).
UNITS: dict[str, str] = {
    "$": "usd", "usd": "usd", "dollar": "usd", "dollars": "usd", "bucks": "usd",
    "€": "eur", "eur": "eur", "euro": "eur", "euros": "eur", "£": "gbp", "gbp": "gbp",
    "quid": "gbp", "¥": "jpy", "yen": "jpy", "jpy": "jpy", "₹": "inr", "inr": "inr",
    "rs": "inr", "rupee": "inr", "rupees": "inr", "cad": "cad", "aud": "aud",
    "chf": "chf", "cny": "cny", "yuan": "cny", "btc": "btc", "bitcoin": "btc",
    "%": "percent", "percent": "percent", "percentage": "percent", "pct": "percent",
    "°": "degree", "degree": "degree", "degrees": "degree", "celsius": "celsius",
    "fahrenheit": "fahrenheit",
    "kg": "kg", "kgs": "kg", "kilo": "kg", "kilos": "kg", "kilogram": "kg",
    "kilograms": "kg", "g": "g", "gram": "g", "grams": "g", "mg": "mg",
    "milligram": "mg", "milligrams": "mg", "lb": "lb", "lbs": "lb", "pound": "lb",
    "pounds": "lb", "oz": "oz", "ounce": "oz", "ounces": "oz", "ton": "ton",
    "tons": "ton", "tonne": "ton", "tonnes": "ton",
    "km": "km", "kms": "km", "kilometer": "km", "kilometers": "km", "kilometre": "km",
    "kilometres": "km", "mi": "mile", "mile": "mile", "miles": "mile", "m": "m",
    "meter": "m", "meters": "m", "metre": "m", "metres": "m", "cm": "cm",
    "centimeter": "cm", "centimeters": "cm", "mm": "mm", "millimeter": "mm",
    "inch": "inch", "inches": "inch", "in.": "inch", "ft": "ft", "foot": "ft",
    "feet": "ft", "yard": "yard", "yards": "yard",
    "l": "l", "liter": "l", "liters": "l", "litre": "l", "litres": "l", "ml": "ml",
    "milliliter": "ml", "milliliters": "ml", "gallon": "gallon", "gallons": "gallon",
    "cup": "cup", "cups": "cup", "tbsp": "tbsp", "tablespoon": "tbsp",
    "tablespoons": "tbsp", "tsp": "tsp", "teaspoon": "tsp", "teaspoons": "tsp",
    "s": "sec", "sec": "sec", "secs": "sec", "seconds": "sec", "ms": "ms",
    "min": "minute", "mins": "minute", "minute": "minute", "minutes": "minute",
    "h": "hour", "hr": "hour", "hrs": "hour", "hour": "hour", "hours": "hour",
    "day": "day", "days": "day", "week": "week", "weeks": "week", "wk": "week",
    "month": "month", "months": "month", "mo": "month", "year": "year", "years": "year",
    "yr": "year", "yrs": "year", "decade": "decade", "decades": "decade",
    "century": "century", "centuries": "century",
    "kb": "kb", "mb": "mb", "gb": "gb", "tb": "tb", "mbps": "mbps", "gbps": "gbps",
    "ghz": "ghz", "mhz": "mhz", "mah": "mah", "wh": "wh", "kwh": "kwh", "w": "w",
    "watt": "w", "watts": "w", "kw": "kw", "v": "v", "volt": "v", "volts": "v",
    "hz": "hz", "mph": "mph", "kmh": "kmh", "kph": "kmh", "px": "px", "k": "k",
    "x": "times", "times": "times", "people": "people", "persons": "people",
    "users": "user", "user": "user", "seats": "seat", "seat": "seat",
}  # fmt: skip
#: Units that are ordinary words unless they follow a number ("2 m", "5 s", "3 in").
NUMERIC_ONLY_UNITS = frozenset(
    ("m", "s", "g", "h", "l", "w", "v", "k", "x", "in.", "min", "mi", "times", "mo",
     "people", "persons", "user", "users", "seat", "seats", "cup", "cups")
)  # fmt: skip

#: Question words whose answer is of a specific kind (what/which/how are generic).
WH: dict[str, str] = {
    "where": "place", "when": "time", "who": "person", "whom": "person",
    "whose": "person", "why": "reason",
}  # fmt: skip
#: "how" + one of these asks for a quantity or a manner of its own.
HOW_KIND: dict[str, str] = {
    "many": "quantity", "much": "quantity", "long": "duration", "often": "frequency",
    "far": "distance", "old": "age", "big": "size", "tall": "height", "fast": "speed",
    "large": "size", "soon": "time", "well": "manner", "come": "reason",
}  # fmt: skip

#: Modal verbs by what they ask: may (can, should: what is possible or advisable) vs
#: must (what is required). "How can I" and "How should I" ask the same.
MODAL: dict[str, str] = {
    "can": "may", "could": "may", "may": "may", "might": "may", "should": "may",
    "ought": "may", "shall": "may", "would": "may",
    "must": "must", "required": "must", "require": "must", "mandatory": "must",
    "compulsory": "must",
    "have_to": "must", "has_to": "must",
}  # fmt: skip

#: Auxiliaries by tense (a question about the past is not one about the future).
TENSE: dict[str, str] = {
    "was": "past", "were": "past", "did": "past", "had": "past",
    "will": "future", "going": "future", "shall": "future", "gonna": "future",
}  # fmt: skip

#: Words that mark a role of the word after them (from X to Y, X than Y, 15% of 80).
CUES = frozenset(
    _wordlist(
        """
        from to into than of over above under below against beat beats defeat defeated onto
        per towards toward via by in on at for with
        """
    )
)

#: Cue words that mark the same role.
CUE_CANON: dict[str, str] = {
    "into": "to", "towards": "to", "toward": "to", "onto": "to", "beats": "beat",
    "defeat": "beat", "defeated": "beat", "above": "over", "below": "under",
}  # fmt: skip

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

#: Multi-letter abbreviations -> the word they stand for (matched case-insensitively).
ABBREVIATIONS: dict[str, str] = {
    "yr": "year", "yrs": "year", "hr": "hour", "hrs": "hour", "mins": "minute",
    "approx": "about", "info": "information", "govt": "government", "dept": "department",
    "w/o": "without", "w/": "with", "b4": "before", "thru": "through", "tho": "though",
    "bc": "because", "cuz": "because", "coz": "because", "r": "are", "ppl": "people",
    "msg": "message", "pic": "picture", "pics": "picture", "acct": "account",
    "intl": "international",
}  # fmt: skip

#: Lower-case names that are entities even when typed in lower case (a seed list: the
#: verifier also treats any capitalised word mid-sentence as an entity).
GAZETTEER = frozenset(
    _wordlist(
        """
        afghanistan albania algeria argentina armenia australia austria azerbaijan bahrain
        bangladesh belarus belgium bhutan bolivia bosnia brazil bulgaria cambodia cameroon
        canada chile china colombia croatia cuba cyprus czechia denmark ecuador egypt
        england estonia ethiopia finland france georgia germany ghana greece guatemala haiti
        honduras hungary iceland india indonesia iran iraq ireland israel italy jamaica
        japan jordan kazakhstan kenya korea kuwait laos latvia lebanon libya lithuania
        luxembourg madagascar malaysia maldives mali malta mexico moldova monaco mongolia
        morocco myanmar nepal netherlands holland nigeria norway oman pakistan panama
        paraguay peru philippines poland portugal qatar romania russia rwanda scotland
        senegal serbia singapore slovakia slovenia somalia spain sudan sweden switzerland
        syria taiwan tanzania thailand tunisia turkey uganda ukraine uruguay uzbekistan
        venezuela vietnam wales yemen zambia zimbabwe usa uk uae europe asia africa america
        antarctica oceania paris london berlin madrid rome lisbon dublin amsterdam brussels
        vienna prague warsaw budapest athens istanbul moscow kyiv kiev stockholm oslo
        copenhagen helsinki zurich geneva munich milan barcelona florence venice tokyo osaka
        kyoto seoul beijing shanghai hongkong taipei bangkok manila jakarta hanoi delhi
        mumbai bangalore bengaluru chennai kolkata hyderabad pune karachi lahore dhaka dubai
        doha riyadh cairo lagos nairobi johannesburg sydney melbourne brisbane perth
        auckland toronto vancouver montreal ottawa chicago boston seattle denver austin
        dallas houston miami atlanta phoenix philadelphia detroit portland vegas orlando nyc
        la sf california texas florida oregon washington nevada arizona ohio michigan python
        java javascript typescript golang kotlin php perl scala haskell csharp sql mysql
        postgres postgresql mongodb redis sqlite powershell linux ubuntu debian macos ios
        android firefox powerpoint docker kubernetes aws azure gcp angular vue django nodejs
        pandas numpy tensorflow pytorch english french spanish german italian portuguese
        russian chinese mandarin cantonese japanese korean hindi arabic bengali urdu turkish
        dutch greek hebrew polish swedish google microsoft facebook netflix tesla uber lyft
        airbnb twitter instagram whatsapp youtube linkedin tiktok snapchat reddit quora
        spotify paypal samsung sony intel amd nvidia ibm adobe salesforce mastercard amex
        ebay walmart costco ikea toyota honda bmw audi mercedes volkswagen nissan hyundai
        kia iphone ipad macbook playstation xbox nintendo
        """
    )
)
