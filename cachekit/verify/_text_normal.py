"""Rewrites of a prompt's text before it is read, so that one value written two ways reads
as one value: "6 pm" = "18:00", "$2.5k" = "$2,500", "1 million" = "1,000,000", "the 90s" =
"the 1990s", "12/24/2024" = "December 24, 2024", "5 January" = "January 5th" = "January 5";
and so that a greeting or a polite clause is not read as a time or a negation ("Good
morning!", "if you don't mind", "w/o" = "without").

Each rewrite runs only when a cheap test says it can apply: this is on the hit path.
"""

from __future__ import annotations

import re

from ._lexicon_kinds import DATE_WORDS
from ._lexicon_kinds import MONTHS as _MONTHS

#: Month names and their abbreviations, longest first; "may" only where a day follows.
_MONTH_RE = "|".join(
    sorted(
        (w for w, v in DATE_WORDS.items() if v.startswith("month:") and w != "may"),
        key=lambda w: (-len(w), w),
    )
)

#: "AT&T", "R&D": one name, not "AT and T"
_AMPERSAND = re.compile(r"(?<=[A-Za-z])&(?=[A-Za-z])")
#: "v3.12" = "3.12"
_VERSION = re.compile(r"(?<![\w.])[vV](?=\d+\.\d)")
#: "how 2 make": texting for "how to"
_HOW_2 = re.compile(r"\bhow\s+2\s+(?=[a-z]{2,}\b)", re.IGNORECASE)
#: "w/o cilantro", "coffee w/ milk"
_WITH = re.compile(r"(?<![\w/])w/(o\b)?(?=\s|\w)", re.IGNORECASE)
#: A greeting that opens the text or a sentence: "Good morning!" is not a time of day.
_GREETING = re.compile(
    r"(?:^|(?<=[.!?]\s))good\s+(?:morning|afternoon|evening|night|day)\s*(?:[!.,;:]+|$)",
    re.IGNORECASE,
)
#: Polite clauses whose negation is not the question's ("If it's not too much trouble, ...").
_POLITE = re.compile(
    r"\b(?:if\s+(?:it'?s|it\s+is)\s+not\s+too\s+much\s+(?:trouble|to\s+ask)|"
    r"if\s+you\s+(?:don'?t|do\s+not)\s+mind)\b[\s,]*",
    re.IGNORECASE,
)
#: A clock time with am/pm ("6 pm", "9:30am", "7 a.m."), read as 24h ("18:00").
_AMPM = re.compile(r"(?<![\d:.,])(\d{1,2})(?::([0-5]\d))?\s*([ap])\.?m\b\.?", re.IGNORECASE)
#: "at 6 in the morning", "by 10 at night": only after a time cue ("take 2 in the
#: morning" is a dose, not a time).
_PART_OF_DAY = re.compile(
    r"\b(at|by|for|until|till|before|after|around|about|from|to|between)\s+(\d{1,2})"
    r"(?::([0-5]\d))?\s+(?:o'clock\s+)?(?:in\s+the\s+(morning|afternoon|evening)|at\s+(night))\b",
    re.IGNORECASE,
)
#: "$2.5k", "10k", "1.5M users", "3 million", "2 bn"
_MULTIPLIED = re.compile(
    r"(?<![\w.,])(\d+(?:\.\d+)?)(?:([kK]|M|bn|mn)\b|\s+(thousand|million|billion|trillion)\b)"
)
_FACTOR = {
    "k": 1_000,
    "thousand": 1_000,
    "m": 1_000_000,
    "mn": 1_000_000,
    "million": 1_000_000,
    "bn": 1_000_000_000,
    "billion": 1_000_000_000,
    "trillion": 1_000_000_000_000,
}
#: "the 90s", "the '80s", "early 70s": a decade of the twentieth century.
_DECADE = re.compile(r"\b(the\s+(?:(?:early|mid|late)[\s-]+)?)'?([3-9]0)'?s\b", re.IGNORECASE)
#: "12/24/2024", "2024-12-24" (a two-digit year or no year stays as written).
_SLASH_DATE = re.compile(r"(?<![\d/])(\d{1,2})/(\d{1,2})/(\d{4})(?![\d/])")
#: "on 3/14": a month and a day after a date cue (a bare 3/14 may be a fraction).
_CUED_SLASH_DATE = re.compile(
    r"\b(on|by|until|till|before|after|since|from)\s+(\d{1,2})/(\d{1,2})(?![\d/])", re.IGNORECASE
)
_ISO_DATE = re.compile(r"(?<![\d-])(\d{4})-(\d{1,2})-(\d{1,2})(?![\d-])")
#: A day before its month ("5 January", "5th of Jan"), read as "January 5".
_DAY_MONTH = re.compile(
    rf"\b(\d{{1,2}})(?:st|nd|rd|th)?(?:\s+of)?\s+({_MONTH_RE})\b", re.IGNORECASE
)
#: A month and an ordinal day ("July 4th", "Jan. 3rd"), read as "July 4".
_MONTH_ORDINAL = re.compile(
    rf"\b({_MONTH_RE}|may)\.?\s+(\d{{1,2}})(?:st|nd|rd|th)\b", re.IGNORECASE
)
_DIGIT = re.compile(r"\d")


def _hhmm(hour: int, minute: str, pm: bool, midnight: bool) -> str | None:
    if not 1 <= hour <= 12:
        return None  # "13 pm", "0 am": not a clock time, leave it to the reader
    if pm and hour < 12:
        hour += 12
    elif midnight and hour == 12:
        hour = 0
    return f"{hour}:{minute}"


def _clock(m: re.Match[str]) -> str:
    pm = m.group(3).lower() == "p"
    out = _hhmm(int(m.group(1)), m.group(2) or "00", pm, not pm)
    return m.group() if out is None else out


def _part_of_day(m: re.Match[str]) -> str:
    part = (m.group(4) or m.group(5)).lower()
    pm = part != "morning"
    hour = int(m.group(2))
    if part == "night" and hour < 6:
        pm = False  # "at 2 at night" is 2:00
    out = _hhmm(hour, m.group(3) or "00", pm, part in ("morning", "night"))
    return m.group() if out is None else f"{m.group(1)} {out}"


def _multiplied(m: re.Match[str]) -> str:
    factor = _FACTOR[(m.group(2) or m.group(3)).lower()]
    number = m.group(1)
    if "." in number:
        whole, _, frac = number.partition(".")
        value = int(whole + frac) * factor
        scale = 10 ** len(frac)
        if value % scale:
            return m.group()  # "1.2345k": not a round amount, leave it as written
        return f"{value // scale:,}"
    # with separators: an amount, never read as a year ("1.5k" is not the year 1500)
    return f"{int(number) * factor:,}"


def _slash_date(m: re.Match[str]) -> str:
    first, second, year = int(m.group(1)), int(m.group(2)), m.group(3)
    month, day = (second, first) if first > 12 >= second else (first, second)
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return m.group()
    return f"{_MONTHS[month - 1].capitalize()} {day} {year}"


def _cued_slash_date(m: re.Match[str]) -> str:
    month, day = int(m.group(2)), int(m.group(3))
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return m.group()
    return f"{m.group(1)} {_MONTHS[month - 1].capitalize()} {day}"


def _iso_date(m: re.Match[str]) -> str:
    year, month, day = m.group(1), int(m.group(2)), int(m.group(3))
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return m.group()
    return f"{_MONTHS[month - 1].capitalize()} {day} {year}"


def normalise(text: str) -> str:
    """The text with equal values written one way (see the module's docstring)."""
    low = text.lower()
    if "w/" in low:
        text = _WITH.sub(lambda m: "without" if m.group(1) else "with", text)
    if "good" in low:
        text = _GREETING.sub("", text).lstrip()
    if "if" in low and ("mind" in low or "too much" in low):
        text = _POLITE.sub("", text)
    if "&" in text:
        text = _AMPERSAND.sub("", text)
    if _DIGIT.search(text) is None:
        return text
    if "v" in low:
        text = _VERSION.sub("", text)
    if "how" in low:
        text = _HOW_2.sub("how to ", text)
    if "m" in low:
        text = _AMPM.sub(_clock, text)
    if "in the" in low or "night" in low:
        text = _PART_OF_DAY.sub(_part_of_day, text)
    text = _MULTIPLIED.sub(_multiplied, text)
    if "0s" in low or "0's" in low:
        text = _DECADE.sub(r"\g<1>19\2s", text)
    if "/" in text:
        text = _SLASH_DATE.sub(_slash_date, text)
        text = _CUED_SLASH_DATE.sub(_cued_slash_date, text)
    if "-" in text:
        text = _ISO_DATE.sub(_iso_date, text)
    text = _DAY_MONTH.sub(r"\2 \1", text)
    return _MONTH_ORDINAL.sub(r"\1 \2", text)
