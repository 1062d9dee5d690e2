"""How ``_text`` reads one token: plain words (filler, negation, polarity, dates,
units, names ...), letters-and-digits tokens and the dispatch by token shape.
"""

from __future__ import annotations

import re

from . import _lexicon as lx
from ._text_build import _INFOS, Word, _Builder, _info, _is_entity, _number
from ._text_forms import _NOT_ACRONYMS, _ORDINAL_SUFFIX, stem


def _word(b: _Builder, raw: str, folded: str, sentence_start: bool, shouty: bool) -> None:
    """One alphabetic token (contractions and hyphens already split)."""
    info = _INFOS.get(folded) or _info(folded)
    plain = info.plain
    if plain and not (
        len(raw) >= 2 and raw.isupper() and not shouty and folded not in _NOT_ACRONYMS
    ):
        # the common case, most words: a plain filler or content word
        b.folded.append(folded)
        b.stems.add(info.pstem)
        b.last_raw = folded
        if b.pending_numwords:
            b.flush_numwords()
        b.last_was_number = False
        if plain == 1:
            b.prev_entity = False
            return
        entity = _is_entity(raw, info.word, sentence_start, shouty)
        b.content.append(Word(info.key, info.stem, info.word, entity))
        b.mark(info.key, entity)
        return
    b.folded.append(folded)
    b.stems.add(info.pstem)
    for axis, side in info.axes:
        b.polarity.setdefault(axis, set()).add(side)
    particle = info.particle
    if particle is not None:
        if b.content and b.content[-1].raw == b.last_raw:
            # "log in" vs "log out": the particle's axis, bound to the verb before it
            axis, side = particle
            b.polarity.setdefault(f"{b.content[-1].key}:{axis}", set()).add(side)
        elif particle[0] == "up/down" and b.last_raw:
            # "prices are going up" / "going down", "is the server up": bound to the
            # word before it, content word or not
            b.polarity.setdefault(f"{stem(b.last_raw)}:up/down", set()).add(particle[1])
        if not info.cue:
            b.last_raw = folded
            b.flush_numwords()
            b.last_was_number = False
            return  # a particle is not a content word of its own
    b.last_raw = folded
    if info.numword:
        b.pending_numwords.append(folded)
        return
    if b.pending_numwords:
        b.flush_numwords()
    after_number = b.last_was_number
    b.last_was_number = False
    if info.negation:
        b.negations += 1
        b.pending_negations += 1
        b.cue = ""
        return
    if info.how_kind is not None and len(b.folded) >= 2 and b.folded[-2] == "how":
        b.wh.add("how-" + info.how_kind)
        return
    if info.ordinal is not None and not (folded == "second" and after_number):
        key = f"ord:{info.ordinal}"
        b.ordinals[key] += 1
        b.mark(key)
        return
    if after_number and folded in _ORDINAL_SUFFIX:
        return
    if info.unit is not None and (after_number or info.unit_anywhere):
        unit = _cased_unit(raw, info.unit)
        b.units[unit] += 1
        b.mark("unit:" + unit)
        return
    if info.tod is not None and (after_number or folded not in ("am", "pm")):
        b.times[info.tod] += 1
        b.mark("time:" + info.tod)
        return
    if info.date is not None and (
        not info.date_ambiguous
        or (raw[:1].isupper() and not sentence_start)
        or after_number  # "5 may"
        or (len(b.folded) >= 2 and b.folded[-2] in _DATE_CUES)  # "open in may"
    ):
        b.dates[info.date] += 1
        b.mark("date:" + info.date)
        return
    if info.scope is not None:
        b.scope[info.scope] += 1
        b.mark("scope:" + info.scope)
        return
    if info.relation is not None:
        b.relations[info.relation] += 1
        b.mark("rel:" + info.relation)
        if info.cue:
            b.cue = folded  # "against" also marks the role of what follows
        return
    if info.wh is not None:
        b.wh.add(info.wh)
        return
    if info.modal is not None:
        b.modal.add(info.modal)
    if info.tense is not None:
        b.tense.add(info.tense)
    if info.cue:
        b.cue = lx.CUE_CANON.get(folded, folded)
        b.prev_entity = False
        return
    acronym = len(raw) >= 2 and raw.isupper() and not shouty and folded not in _NOT_ACRONYMS
    if (info.filler or (folded == "like" and b.folded[-2:-1] == ["would"])) and not acronym:
        if folded == "one":
            b.ones += 1
        b.prev_entity = False
        return
    entity = acronym or _is_entity(raw, info.word, sentence_start, shouty)
    b.content.append(Word(info.key, info.stem, info.word, entity))
    b.mark(info.key, entity, bool(info.axes))


def _alnum(b: _Builder, raw: str, folded: str, sentence_start: bool, shouty: bool) -> None:
    """A token mixing letters and digits: an identifier (BA117, iPhone15, M-1), or a
    number with a unit or suffix (5kg, 3pm, 16th) handled by the caller."""
    parts = folded.split("-")
    if all(p.isdigit() for p in parts):
        for p in parts:
            b.folded.append(p)
            b.add_number(_number(p))
        return
    if len(parts) > 1 and not any(any(c.isdigit() for c in p) for p in parts[:1]):
        head = parts[0]
        if not (len(head) <= 4 and len(parts) == 2 and parts[1].isdigit()):
            # thirty-year-old, usb-c, covid-19 style: split, keep the numbers as numbers
            for p in parts:
                _dispatch(b, p, p, sentence_start, shouty)
                sentence_start = False
            return
    ident = folded.replace("-", "")
    b.folded.append(ident)
    b.flush_numwords()
    b.identifiers[ident] += 1
    b.mark(f"id:{ident}")
    b.last_was_number = False


_HAS_DIGIT = re.compile(r"\d").search
_UPPER = re.compile(r"[^\W\d_a-z]").findall  # upper case (and caseless) letters
_LETTER = re.compile(r"[^\W\d_]").findall
_CAPITALISED = re.compile(r"(?<!\S)[\"'(\[]*[^\W\d_a-z]").findall  # words starting upper-case


def _dispatch(b: _Builder, raw: str, folded: str, sentence_start: bool, shouty: bool) -> None:
    if _HAS_DIGIT(folded):
        m = re.fullmatch(r"(\d+(?:\.\d+)?)([a-z]+)", folded)
        if m and (
            m.group(2) in lx.UNITS
            or m.group(2) in lx.TIME_WORDS
            or m.group(2) in _ORDINAL_SUFFIX
            or m.group(2) == "s"
        ):
            b.flush_numwords()
            num, suffix = m.group(1), m.group(2)
            b.folded.append(num)
            if suffix in _ORDINAL_SUFFIX:
                b.ordinals[f"ord:{_number(num)}"] += 1
                b.mark(f"ord:{_number(num)}")
                b.last_was_number = False
                return
            if suffix == "s" and len(num) == 4:  # 1990s
                b.dates[f"decade:{num}"] += 1
                b.mark(f"date:{num}s")
                return
            b.add_number(_number(num))
            _word(b, suffix, suffix, False, shouty)
            return
        _alnum(b, raw, folded, sentence_start, shouty)
        return
    if "'" in folded:
        if folded in lx.CONTRACTIONS:
            for part in lx.CONTRACTIONS[folded]:
                _word(b, part, part, sentence_start, shouty)
            return
        base, _, tail = folded.partition("'")
        if tail == "t" and base.endswith("n"):
            _word(b, base[:-1], base[:-1], sentence_start, shouty)
            _word(b, "not", "not", False, shouty)
            return
        more = {"re": "are", "ve": "have", "ll": "will", "d": "would", "m": "am"}
        if tail in more:
            _word(b, raw.partition("'")[0], base, sentence_start, shouty)
            _word(b, more[tail], more[tail], False, shouty)
            return
        if tail == "s":
            _word(b, raw.partition("'")[0], base, sentence_start, shouty)
            if base in lx.S_IS:
                _word(b, "is", "is", False, shouty)
            return
        folded = folded.replace("'", "")
        raw = raw.replace("'", "")
    if folded in lx.CONTRACTIONS:
        for part in lx.CONTRACTIONS[folded]:
            _word(b, part, part, sentence_start, shouty)
        return
    if "-" in folded:
        parts = [p for p in folded.split("-") if p]
        raws = [p for p in raw.split("-") if p]
        if len(parts) == 2 and (len(parts[0]) == 1 or parts[0] == "non") and parts[1].isalpha():
            # "e-bike", "x-ray", "non-stop": one word ("e-bike" is not a "bike" plus "e")
            _word(b, raw.replace("-", ""), parts[0] + parts[1], sentence_start, shouty)
            return
        if len(parts) == len(raws):
            for i, (r, p) in enumerate(zip(raws, parts, strict=True)):
                _word(b, r, p, sentence_start and i == 0, shouty)
            return
    _word(b, raw, folded, sentence_start, shouty)


#: Words after which "may", "sun", "mar" ... name a month or a day, not a modal verb.
_DATE_CUES = frozenset(
    ("in", "of", "since", "until", "till", "by", "before", "after", "during", "early", "late",
     "mid", "next", "last", "this", "every", "on")
)  # fmt: skip

#: Data units whose letter b (bits) or B (bytes) is the difference: 100 Mbps is an eighth
#: of 100 MBps. A unit in all lower or all upper case is read as typed casually (MB, mbps).
_DATA_UNITS = frozenset(("kb", "mb", "gb", "tb", "kbps", "mbps", "gbps"))


def _cased_unit(raw: str, unit: str) -> str:
    letters = raw.lstrip("0123456789.,")
    if unit == "mw" and letters == "mW":
        return "milliwatt"  # a 5 mW laser pointer, not a 5 MW power plant
    if unit not in _DATA_UNITS:
        return unit
    if letters.islower() or letters.isupper() or len(letters) < 2:
        return unit
    bits = letters[1] == "b"
    if bits == unit.endswith("ps"):
        return unit  # Mbps, MB: the usual reading
    return unit + ("-bits" if bits else "-bytes")
