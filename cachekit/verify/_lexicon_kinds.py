"""Word classes of the default verifier: dates, times, units, question words, modals,
tense, role cues, abbreviations and known names (re-exported by ``_lexicon``).
"""

from __future__ import annotations

from ._lexicon_words import _data, _wordlist

#: Month names, January first.
MONTHS: tuple[str, ...] = (
    "january", "february", "march", "april", "may", "june", "july", "august", "september",
    "october", "november", "december",
)  # fmt: skip
#: Date words -> canonical value.
DATE_WORDS: dict[str, str] = {
    **{m: f"month:{i}" for i, m in enumerate(MONTHS, start=1)},
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
    "ago": "rel:ago",  # "a year ago" is not "yesterday"
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
    "morning": "ampm:am", "afternoon": "tod:afternoon", "evening": "tod:evening",
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
    "watt": "w", "watts": "w", "kw": "kw", "mw": "mw", "gw": "gw", "v": "v", "volt": "v",
    "volts": "v",
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
    "compulsory": "must", "obligatory": "must",
    "allowed": "may", "permitted": "may", "recommended": "may", "advisable": "may",
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

#: Multi-letter abbreviations -> the word they stand for (matched case-insensitively).
ABBREVIATIONS: dict[str, str] = {
    "yr": "year", "yrs": "year", "hr": "hour", "hrs": "hour", "mins": "minute",
    "approx": "about", "info": "information", "govt": "government", "dept": "department",
    "w/o": "without", "w/": "with", "b4": "before", "thru": "through", "tho": "though",
    "bc": "because", "cuz": "because", "coz": "because", "r": "are", "ppl": "people",
    "msg": "message", "pic": "picture", "pics": "picture", "acct": "account",
    "intl": "international", "dr": "doctor", "js": "javascript",
    "diff": "difference",
}  # fmt: skip

#: Lower-case names that are entities even when typed in lower case (a seed list: the
#: verifier also treats any capitalised word mid-sentence as an entity). A data file.
GAZETTEER = frozenset(_wordlist(_data("gazetteer.txt")))
