"""The labelled development set of the hit verifier (issue #11), built deterministically.

Pairs are (cached prompt, new prompt, label): label 1 = the cached answer is right for the
new prompt (a hit should be served), 0 = it is another question's answer (a trap). Sources:

- ``qqp``, ``mrpc``, ``gptcache``: the labelled pairs in ``../shared/data`` (read from
  there, never copied into the repository);
- ``trap``: controlled meaning-changing edits of seed prompts taken from the positives of
  those sets: negate, change a number or a date, replace an entity, swap two entities
  around a directional word, swap a polarity word for its opposite, change a scope
  word, or replace one content word with an unrelated one (the principle: in a near-copy,
  the word that differs is the question). Each is paired either with its own seed (a
  near-repeat: ``near``) or with the seed's paraphrase partner (``para``: the edited word
  occurs in both);
- ``variant``: harmless edits that must still hit: typo, casing, filler, punctuation,
  contraction, swapping the two sides of a symmetric "X and Y";
- ``everyday``: hand-written support/chat/search pairs (``data/everyday_pairs.json``);
- ``multiturn``: hand-written conversations (``data/multiturn_pairs.json``), kept apart.

Every pair belongs to a *group* (its seed pair, or its hand-written family) and the split
(fit / test) is a hash of the group, fixed before any result was looked at: a trap and its
seed are always on the same side.

    python benchmarks/verify_devset.py   # summary; writes the set as JSONL outside the
                                         # repository (--out, default next to the
                                         # embedding cache of benchmarks/_embcache.py)
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import random
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
from _embcache import DEFAULT_CACHE  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "data"
EVERYDAY = HERE / "data" / "everyday_pairs.json"
MULTITURN = HERE / "data" / "multiturn_pairs.json"
SEED = 1111
TEST_SHARE = 50  # percent of groups in the test split

#: Seed pairs taken from each source for controlled edits.
SEEDS = {"qqp": 4000, "gptcache": 999, "mrpc": 1200}


@dataclass(frozen=True)
class Pair:
    source: str  # qqp, mrpc, gptcache, trap, variant, everyday
    kind: str  # e.g. "dup", "nondup", "negate/near", "typo/para", "paraphrase"
    label: int  # 1 = should hit, 0 = must not
    a: str  # cached prompt
    b: str  # new prompt
    group: str
    split: str


@dataclass(frozen=True)
class Conversation:
    kind: str
    label: int
    a: tuple[str, ...]  # user turns of the cached conversation (last = the prompt)
    b: tuple[str, ...]
    group: str
    split: str


def split_of(group: str) -> str:
    h = int(hashlib.sha256(f"verify-devset:{group}".encode()).hexdigest(), 16)
    return "test" if h % 100 < TEST_SHARE else "fit"


# ------------------------------------------------------------------------- shared data


def read_qqp(root: Path) -> list[tuple[str, str, int]]:
    rows = json.loads((root / "qqp" / "qqp_pairs.json").read_text(encoding="utf-8"))
    return [(str(r["text_a"]), str(r["text_b"]), int(r["label"])) for r in rows]


def read_mrpc(root: Path) -> list[tuple[str, str, int]]:
    out: list[tuple[str, str, int]] = []
    for part in ("train", "val"):
        path = root / "mrpc" / f"msr-para-{part}.tsv"
        with path.open(encoding="utf-8-sig", newline="") as fh:
            reader = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
            next(reader)
            for row in reader:
                if len(row) == 5:
                    out.append((row[3].strip(), row[4].strip(), int(row[0])))
    return out


def read_gptcache(root: Path) -> list[tuple[str, str, int]]:
    rows = json.loads((root / "gptcache_mock" / "mock_data.json").read_text(encoding="utf-8"))
    return [(str(r["origin"]), str(r["similar"]), 1) for r in rows]


# --------------------------------------------------------------------- controlled edits
# Word lists of the *generator*. They are deliberately written apart from the verifier's
# lexicon (cachekit/verify/_lexicon.py) and include pairs that lexicon does not list, so
# the benchmark also measures the general rule (a substituted content word in an
# otherwise identical prompt), not only the lists.

ANTONYMS = [
    ("buy", "sell"),
    ("open", "close"),
    ("opened", "closed"),
    ("before", "after"),
    ("increase", "decrease"),
    ("allow", "forbid"),
    ("allowed", "forbidden"),
    ("start", "stop"),
    ("enable", "disable"),
    ("add", "remove"),
    ("import", "export"),
    ("upload", "download"),
    ("win", "lose"),
    ("best", "worst"),
    ("cheap", "expensive"),
    ("maximize", "minimize"),
    ("positive", "negative"),
    ("hot", "cold"),
    ("high", "low"),
    ("good", "bad"),
    ("lock", "unlock"),
    ("accept", "reject"),
    ("send", "receive"),
    ("hire", "fire"),
    ("rise", "fall"),
    ("true", "false"),
    ("legal", "illegal"),
    ("safe", "dangerous"),
    ("easy", "hard"),
    ("fast", "slow"),
    ("gain", "lose"),
    ("love", "hate"),
    ("like", "dislike"),
    ("strong", "weak"),
    ("rich", "poor"),
    ("old", "new"),
    ("early", "late"),
    ("inside", "outside"),
    ("up", "down"),
    ("left", "right"),
    ("north", "south"),
    ("east", "west"),
    ("male", "female"),
    ("men", "women"),
    ("boy", "girl"),
    ("husband", "wife"),
    ("father", "mother"),
    ("pros", "cons"),
    ("advantages", "disadvantages"),
    ("success", "failure"),
    ("happy", "sad"),
    ("true", "fake"),
    ("join", "leave"),
    ("arrive", "depart"),
    ("encrypt", "decrypt"),
    ("install", "uninstall"),
    ("subscribe", "unsubscribe"),
    ("online", "offline"),
    ("public", "private"),
    ("include", "exclude"),
    ("borrow", "lend"),
    ("debit", "credit"),
    ("income", "expense"),
    ("profit", "loss"),
    ("top", "bottom"),
    ("light", "dark"),
    ("wet", "dry"),
    ("big", "small"),
    ("long", "short"),
    ("heavy", "light"),
    ("first", "last"),
    ("more", "less"),
    ("most", "least"),
    ("above", "below"),
    ("over", "under"),
    ("with", "without"),
    ("always", "never"),
    ("push", "pull"),
    ("input", "output"),
    ("internal", "external"),
    ("deposit", "withdraw"),
    ("attack", "defend"),
    ("teacher", "student"),
    ("employer", "employee"),
    ("landlord", "tenant"),
    ("buyer", "seller"),
    ("import", "export"),
    ("summer", "winter"),
    ("day", "night"),
    ("morning", "evening"),
]
SCOPE_SWAPS = [
    ("all", "some"),
    ("every", "some"),
    ("first", "last"),
    ("most", "least"),
    ("more", "fewer"),
    ("always", "sometimes"),
    ("many", "few"),
    ("maximum", "minimum"),
    ("highest", "lowest"),
    ("oldest", "newest"),
    ("next", "previous"),
    ("any", "every"),
    ("each", "one"),
    ("both", "either"),
    ("only", "also"),
    ("largest", "smallest"),
    ("biggest", "smallest"),
    ("top", "bottom"),
    ("latest", "earliest"),
    ("cheapest", "most expensive"),
    ("fastest", "slowest"),
    ("best", "second best"),
]
SUPERLATIVE = re.compile(
    r"\b(largest|biggest|smallest|best|worst|highest|lowest|richest|poorest|tallest|"
    r"oldest|youngest|fastest|slowest|longest|shortest|cheapest|greatest|most)\b",
    re.I,
)
ORDINALS = ["second", "third", "fourth", "fifth"]
MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
RELATIVE_DAYS = ["today", "tomorrow", "yesterday", "tonight"]
NUMBER_WORDS = [
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "twenty",
    "hundred",
    "thousand",
    "million",
]
AUX = re.compile(
    r"\b(is|are|was|were|can|could|should|would|will|do|does|did|has|have|must)\b", re.I
)
PRONOUN = {"i", "you", "we", "they", "he", "she", "it", "one", "people", "someone"}
ENTITY_POOLS = {
    "city": [
        "Paris",
        "London",
        "Berlin",
        "Tokyo",
        "Delhi",
        "Mumbai",
        "Sydney",
        "Toronto",
        "Chicago",
        "Boston",
        "Madrid",
        "Rome",
        "Dubai",
        "Singapore",
        "Bangalore",
        "Seattle",
        "Amsterdam",
        "Vienna",
        "Prague",
        "Lisbon",
        "Austin",
        "Denver",
        "Osaka",
        "Cairo",
    ],
    "country": [
        "India",
        "China",
        "Canada",
        "Germany",
        "France",
        "Japan",
        "Brazil",
        "Mexico",
        "Australia",
        "Russia",
        "Pakistan",
        "Nigeria",
        "Italy",
        "Spain",
        "Sweden",
        "Norway",
        "Kenya",
        "Egypt",
        "Turkey",
        "Vietnam",
        "Poland",
        "Ireland",
        "Argentina",
        "Chile",
    ],
    "language": [
        "Python",
        "Java",
        "JavaScript",
        "Rust",
        "Go",
        "Ruby",
        "Kotlin",
        "Swift",
        "PHP",
        "Scala",
        "Haskell",
        "Perl",
        "TypeScript",
        "English",
        "French",
        "Spanish",
        "German",
        "Hindi",
        "Mandarin",
        "Japanese",
        "Arabic",
        "Portuguese",
    ],
    "org": [
        "Google",
        "Apple",
        "Microsoft",
        "Amazon",
        "Facebook",
        "Netflix",
        "Tesla",
        "Uber",
        "Quora",
        "YouTube",
        "Instagram",
        "Twitter",
        "LinkedIn",
        "Samsung",
        "Intel",
        "IBM",
        "Oracle",
        "Spotify",
        "Airbnb",
        "PayPal",
        "Reddit",
        "WhatsApp",
        "Snapchat",
        "Flipkart",
    ],
    "person": [
        "Trump",
        "Obama",
        "Clinton",
        "Modi",
        "Putin",
        "Einstein",
        "Newton",
        "Gandhi",
        "Shakespeare",
        "Messi",
        "Ronaldo",
        "Federer",
        "Lincoln",
        "Churchill",
        "Hitler",
        "Napoleon",
        "Darwin",
        "Tesla",
        "Musk",
        "Gates",
        "Jobs",
        "Bezos",
        "Zuckerberg",
    ],
}
POOL_OF = {name.lower(): kind for kind, names in ENTITY_POOLS.items() for name in names}
DIRECTIONAL = {"to", "than", "into", "over", "from", "beat", "beats", "vs", "versus", "for"}
SYMMETRIC = {"and", "or", "&"}

WORD = re.compile(r"[A-Za-z][A-Za-z'’-]*|\d+(?:[.,:]\d+)*|[^\sA-Za-z\d]")


def tokens(text: str) -> list[tuple[int, int, str]]:
    return [(m.start(), m.end(), m.group()) for m in WORD.finditer(text)]


def replace_span(text: str, start: int, end: int, new: str) -> str:
    return text[:start] + new + text[end:]


def keep_case(old: str, new: str) -> str:
    if old.isupper() and len(old) > 1:
        return new.upper()
    if old[:1].isupper():
        return new[:1].upper() + new[1:]
    return new


def word_sub(rng: random.Random, text: str, pairs: list[tuple[str, str]]) -> str | None:
    found: list[tuple[int, int, str]] = []
    for a, b in pairs:
        for x, y in ((a, b), (b, a)):
            for m in re.finditer(rf"\b{re.escape(x)}\b", text, re.I):
                found.append((m.start(), m.end(), y))
    if not found:
        return None
    start, end, new = rng.choice(sorted(found))
    return replace_span(text, start, end, keep_case(text[start:end], new))


def edit_negate(rng: random.Random, text: str) -> str | None:
    removals = [
        (r"\b(\w+)n't\b", lambda m: m.group(1) if m.group(1).lower() != "ca" else "can"),
        (r"\b(\w+) not\b", lambda m: m.group(1)),
        (r"\bnever\b", lambda m: keep_case(m.group(), "ever")),
        (r"\bwithout\b", lambda m: keep_case(m.group(), "with")),
    ]
    for pattern, repl in removals:
        if re.search(pattern, text, re.I):
            m = next(re.finditer(pattern, text, re.I))
            return replace_span(text, m.start(), m.end(), repl(m))
    aux = list(AUX.finditer(text))
    if not aux:
        return None
    m = rng.choice(aux)
    rest = text[m.end() :]
    nxt = re.match(r"\s+([A-Za-z]+)", rest)
    if nxt and nxt.group(1).lower() in PRONOUN:
        pos = m.end() + nxt.end()
        return text[:pos] + " not" + text[pos:]
    if rng.random() < 0.3 and m.group().lower() in {"is", "are", "was", "were"}:
        return text[: m.end()] + "n't" + text[m.end() :]
    return text[: m.end()] + " not" + text[m.end() :]


def edit_number(rng: random.Random, text: str) -> str | None:
    nums = [
        m
        for m in re.finditer(r"(?<![\w.])\d+(?:[.,]\d+)*", text)
        if re.fullmatch(r"\d{1,3}(,\d{3})*(\.\d+)?|\d+(\.\d+)?", m.group())
    ]
    words = [m for m in re.finditer(rf"\b({'|'.join(NUMBER_WORDS)})\b", text, re.I)]
    if nums and (not words or rng.random() < 0.8):
        m = rng.choice(nums)
        digits = m.group()
        if 1900 <= int(re.sub(r"\D", "", digits) or 0) <= 2099 and len(digits) == 4:
            new = str(int(digits) + rng.choice([-2, -1, 1, 2]))
        elif len(re.sub(r"\D", "", digits)) >= 4 and rng.random() < 0.6:
            # an identifier-like number: change one digit (order 12345 -> 12346)
            i = rng.choice([k for k, ch in enumerate(digits) if ch.isdigit()])
            d = str((int(digits[i]) + rng.randint(1, 9)) % 10)
            new = digits[:i] + d + digits[i + 1 :]
        else:
            value = (
                float(digits.replace(",", "")) if "." in digits else int(digits.replace(",", ""))
            )
            choice = rng.random()
            if choice < 0.4:
                value = value + rng.randint(1, 3)
            elif choice < 0.7:
                value = max(0, value - rng.randint(1, 3)) if value > 1 else value + 1
            else:
                value = value * 10
            new = f"{value:g}" if isinstance(value, float) else str(value)
            if new == digits:
                new = str(int(float(value)) + 1)
        return replace_span(text, m.start(), m.end(), new)
    if words:
        m = rng.choice(words)
        new = rng.choice([w for w in NUMBER_WORDS if w != m.group().lower()])
        return replace_span(text, m.start(), m.end(), keep_case(m.group(), new))
    return None


def edit_date(rng: random.Random, text: str) -> str | None:
    for names in (MONTHS, WEEKDAYS, RELATIVE_DAYS):
        found = list(re.finditer(rf"\b({'|'.join(names)})\b", text, re.I))
        if names is MONTHS:
            # "may" is a modal verb unless capitalised mid-sentence
            found = [
                m
                for m in found
                if m.group().lower() != "may" or (m.group() == "May" and m.start() > 0)
            ]
        if found:
            m = rng.choice(found)
            new = rng.choice([n for n in names if n.lower() != m.group().lower()])
            return replace_span(text, m.start(), m.end(), keep_case(m.group(), new))
    years = list(re.finditer(r"\b(19[5-9]\d|20[0-4]\d)\b", text))
    if years:
        m = rng.choice(years)
        return replace_span(text, m.start(), m.end(), str(int(m.group()) + rng.choice([-1, 1, 2])))
    return None


def entity_spans(text: str) -> list[tuple[int, int, str]]:
    """Capitalised words that are not the first word of a sentence (and not 'I')."""
    out = []
    toks = tokens(text)
    for i, (s, e, w) in enumerate(toks):
        if not w[:1].isupper() or w in {"I", "I'm", "I've", "I'd"} or len(w) < 2:
            continue
        prev = toks[i - 1][2] if i else "."
        if prev in {".", "?", "!", ":", '"'} and w.lower() not in POOL_OF:
            continue
        if w.isalpha():
            out.append((s, e, w))
    return out


def edit_entity(rng: random.Random, text: str) -> str | None:
    spans = entity_spans(text)
    if not spans:
        return None
    s, e, w = rng.choice(spans)
    kind = POOL_OF.get(w.lower()) or rng.choice(sorted(ENTITY_POOLS))
    new = rng.choice([n for n in ENTITY_POOLS[kind] if n.lower() != w.lower()])
    return replace_span(text, s, e, new)


def find_pairs(text: str, joiners: set[str]) -> list[tuple[int, int, int, int]]:
    """(s1, e1, s2, e2) of two different entity/number tokens joined by one joiner word."""
    toks = tokens(text)
    ents = {s for s, _, _ in entity_spans(text)}
    out = []
    for i in range(len(toks) - 2):
        (s1, e1, w1), (_, _, mid), (s2, e2, w2) = toks[i], toks[i + 1], toks[i + 2]
        if mid.lower() not in joiners or w1.lower() == w2.lower():
            continue
        ok1 = s1 in ents or w1[:1].isdigit()
        ok2 = s2 in ents or w2[:1].isdigit()
        if ok1 and ok2:
            out.append((s1, e1, s2, e2))
    # "from X to Y" with X, Y further apart
    for m in re.finditer(r"\bfrom ([A-Z]\w+) to ([A-Z]\w+)", text):
        if m.group(1).lower() != m.group(2).lower():
            out.append((m.start(1), m.end(1), m.start(2), m.end(2)))
    return out


def swap(text: str, s1: int, e1: int, s2: int, e2: int) -> str:
    return text[:s1] + text[s2:e2] + text[e1:s2] + text[s1:e1] + text[e2:]


def edit_order(rng: random.Random, text: str) -> str | None:
    """Swap two entities (or numbers) around a directional word, else any two entities
    that are not coordinated ("X and Y", "X or Y", "between X and Y") nor one name."""
    pairs = find_pairs(text, DIRECTIONAL - {"for"})
    if pairs:
        return swap(text, *rng.choice(pairs))
    spans = entity_spans(text)
    toks = tokens(text)
    starts = {s: i for i, (s, _, _) in enumerate(toks)}
    options = []
    for x in range(len(spans)):
        for y in range(x + 1, len(spans)):
            (s1, e1, w1), (s2, e2, w2) = spans[x], spans[y]
            i, j = starts[s1], starts[s2]
            between = [w.lower() for _, _, w in toks[i + 1 : j]]
            if w1.lower() == w2.lower() or not between or j - i > 8:
                continue
            if set(between) & (SYMMETRIC | {",", "between", "/", "-"}):
                continue
            if all(w[:1].isupper() for _, _, w in toks[i + 1 : j]):
                continue  # parts of one name
            options.append((s1, e1, s2, e2))
    if not options:
        return None
    return swap(text, *rng.choice(options))


def edit_polarity(rng: random.Random, text: str) -> str | None:
    return word_sub(rng, text, ANTONYMS)


def edit_scope(rng: random.Random, text: str) -> str | None:
    sup = list(SUPERLATIVE.finditer(text))
    if sup and rng.random() < 0.5:
        m = rng.choice(sup)
        if not re.search(r"\b(second|third|fourth|fifth)\s+$", text[: m.start()], re.I):
            return text[: m.start()] + rng.choice(ORDINALS) + " " + text[m.start() :]
    out = word_sub(rng, text, SCOPE_SWAPS)
    if out is None and sup:
        m = rng.choice(sup)
        return text[: m.start()] + rng.choice(ORDINALS) + " " + text[m.start() :]
    return out


#: Words the "content" trap never replaces (function words, question words, auxiliaries).
STOPWORDS = frozenset(
    """
    about above after again against also although always among another anyone anything
    because been before being below best between both could does doing done down during
    each either else even ever every from further have having here how into itself just
    know like made make many more most much must need only other over please really same
    should since some such than that their them then there these they thing things this
    those though through under until very want were what when where which while whom
    whose will with within without would your yours
    """.split()  # noqa: SIM905
)
CONTENT_WORD = re.compile(r"\b[a-z]{4,}\b")


def content_pool(texts: list[str]) -> list[str]:
    """Content words of the seed prompts, for substitutions (a fixed, sorted pool)."""
    words: Counter[str] = Counter()
    for t in texts:
        words.update(w for w in CONTENT_WORD.findall(t) if w not in STOPWORDS)
    return sorted(w for w, n in words.items() if n >= 3)


POOL: list[str] = []


def edit_content(rng: random.Random, text: str) -> str | None:
    """Replace one content word with an unrelated one (cancel my order -> cancel my invoice)."""
    spans = [m for m in CONTENT_WORD.finditer(text) if m.group() not in STOPWORDS]
    if not spans or not POOL:
        return None
    m = rng.choice(spans)
    old = m.group()
    for _ in range(40):
        new = rng.choice(POOL)
        same_kind = word_kind(new) == word_kind(old)
        if same_kind and new[:3] != old[:3] and abs(len(new) - len(old)) <= 4:
            return replace_span(text, m.start(), m.end(), new)
    return None


def word_kind(word: str) -> str:
    """A crude part of speech from the ending, so a noun replaces a noun (mostly)."""
    for end in ("ing", "ed", "ly", "tion", "ness", "ment", "ity", "al", "ous", "ful", "er", "s"):
        if word.endswith(end):
            return end
    return ""


TRAPS: dict[str, Callable[[random.Random, str], str | None]] = {
    "negate": edit_negate,
    "number": edit_number,
    "date": edit_date,
    "entity": edit_entity,
    "order": edit_order,
    "polarity": edit_polarity,
    "scope": edit_scope,
    "content": edit_content,
}

# ---------------------------------------------------------------------- harmless edits

KEYBOARD = {
    "a": "qs",
    "b": "vn",
    "c": "xv",
    "d": "sf",
    "e": "wr",
    "f": "dg",
    "g": "fh",
    "h": "gj",
    "i": "uo",
    "j": "hk",
    "k": "jl",
    "l": "k",
    "m": "n",
    "n": "bm",
    "o": "ip",
    "p": "o",
    "q": "w",
    "r": "et",
    "s": "ad",
    "t": "ry",
    "u": "yi",
    "v": "cb",
    "w": "qe",
    "x": "zc",
    "y": "tu",
    "z": "x",
}
PREFIXES = [
    "Hey, ",
    "Hi! ",
    "Quick question: ",
    "Hello, ",
    "Question: ",
    "Hi there, ",
    "Um, ",
    "So, ",
    "Hey there! ",
    "Sorry to bother you, ",
]
ASK_PREFIXES = ["Can you tell me ", "Please tell me ", "I'd like to know ", "Could you tell me "]
SUFFIXES = [" please", " thanks", " Thank you!", " pls", " thx", ", please?", " :)", " asap"]
CONTRACTIONS = [
    ("do not", "don't"),
    ("does not", "doesn't"),
    ("is not", "isn't"),
    ("can not", "can't"),
    ("cannot", "can't"),
    ("I am", "I'm"),
    ("what is", "what's"),
    ("it is", "it's"),
    ("are not", "aren't"),
    ("will not", "won't"),
    ("I have", "I've"),
    ("did not", "didn't"),
]


def edit_typo(rng: random.Random, text: str) -> str | None:
    words = [(s, e, w) for s, e, w in tokens(text) if w.isalpha() and len(w) >= 5 and w.islower()]
    if not words:
        return None
    s, e, w = rng.choice(words)
    i = rng.randint(1, len(w) - 2)
    op = rng.random()
    if op < 0.3:
        new = w[:i] + w[i + 1] + w[i] + w[i + 2 :]
    elif op < 0.55:
        new = w[:i] + w[i + 1 :]
    elif op < 0.75:
        new = w[:i] + w[i] + w[i:]
    else:
        new = w[:i] + rng.choice(KEYBOARD.get(w[i], "e")) + w[i + 1 :]
    return None if new == w else replace_span(text, s, e, new)


def edit_casing(rng: random.Random, text: str) -> str | None:
    op = rng.random()
    if op < 0.5:
        new = text.lower()
    elif op < 0.7:
        new = text.upper()
    elif op < 0.85:
        new = text[:1].lower() + text[1:]
    else:
        new = " ".join(w[:1].upper() + w[1:] for w in text.split(" "))
    return None if new == text else new


def edit_filler(rng: random.Random, text: str) -> str | None:
    op = rng.random()
    if op < 0.35:
        return rng.choice(PREFIXES) + text
    if op < 0.55 and re.match(r"(what|how|where|when|who|which|why)\b", text, re.I):
        body = text.rstrip("?").rstrip()
        return rng.choice(ASK_PREFIXES) + body[:1].lower() + body[1:] + "?"
    if op < 0.85:
        body = text.rstrip()
        end = body[-1:] if body[-1:] in "?.!" else ""
        core = body[: len(body) - len(end)]
        return core + rng.choice(SUFFIXES) + end
    if re.search(r"\bplease\b", text, re.I):
        return re.sub(r"\s*\bplease\b,?", "", text, count=1, flags=re.I)
    return rng.choice(PREFIXES) + text + rng.choice(SUFFIXES)


def edit_punct(rng: random.Random, text: str) -> str | None:
    op = rng.random()
    if op < 0.3 and text.rstrip().endswith(("?", ".", "!")):
        return text.rstrip()[:-1]
    if op < 0.5:
        return text.rstrip().rstrip("?.!") + rng.choice(["??", "?!", "...", " ?"])
    if op < 0.75 and "," in text:
        return text.replace(",", "")
    if op < 0.9 and "'" in text:
        return text.replace("'", "")
    return re.sub(r" ", "  ", text, count=2)


def edit_contraction(rng: random.Random, text: str) -> str | None:
    found = []
    for long, short in CONTRACTIONS:
        for x, y in ((long, short), (short, long)):
            for m in re.finditer(rf"\b{re.escape(x)}\b", text, re.I):
                found.append((m.start(), m.end(), y))
    if not found:
        return None
    s, e, new = rng.choice(sorted(found))
    return replace_span(text, s, e, keep_case(text[s:e], new))


def edit_symmetric(rng: random.Random, text: str) -> str | None:
    pairs = [
        p
        for p in find_pairs(text, SYMMETRIC)
        # "between X and Y", "X and Y" after "compare"/"difference": order-free
        if re.search(r"\b(between|compare|difference|vs|and|or)\b", text[: p[0]] + " and", re.I)
    ]
    if not pairs:
        return None
    return swap(text, *rng.choice(pairs))


VARIANTS: dict[str, Callable[[random.Random, str], str | None]] = {
    "typo": edit_typo,
    "casing": edit_casing,
    "filler": edit_filler,
    "punct": edit_punct,
    "contraction": edit_contraction,
    "symmetric": edit_symmetric,
}


def shared_word(edited: str, original: str, partner: str) -> bool:
    """The words the edit changed all occur in the partner (so the edit is meaningful there)."""
    before = Counter(w.lower() for _, _, w in tokens(original))
    after = Counter(w.lower() for _, _, w in tokens(edited))
    removed = before - after
    have = {w.lower() for _, _, w in tokens(partner)}
    return bool(removed) and all(w in have for w in removed)


# ------------------------------------------------------------------------------ build


def seed_pairs(root: Path) -> Iterator[tuple[str, str, str, str]]:
    """(source, group, a, b) of positive pairs used as seeds for edits."""
    rng = random.Random(SEED)
    qqp = [(i, a, b) for i, (a, b, y) in enumerate(read_qqp(root)) if y == 1]
    for i, a, b in sorted(rng.sample(qqp, SEEDS["qqp"])):
        yield "qqp", f"qqp:{i}", a, b
    for i, (a, b, _) in enumerate(read_gptcache(root)[: SEEDS["gptcache"]]):
        yield "gptcache", f"gptcache:{i}", a, b
    mrpc = [(i, a, b) for i, (a, b, y) in enumerate(read_mrpc(root)) if y == 1]
    for i, a, b in sorted(rng.sample(mrpc, SEEDS["mrpc"])):
        yield "mrpc", f"mrpc:{i}", a, b


def build_edits(root: Path) -> list[Pair]:
    out: list[Pair] = []
    seeds = list(seed_pairs(root))
    POOL[:] = content_pool([t for _, _, a, b in seeds for t in (a, b)])
    for source, group, a, b in seeds:
        rng = random.Random(f"{SEED}:{group}")
        split = split_of(group)
        for name, fn in TRAPS.items():
            # near-repeat (seed vs its edit) or paraphrase (partner vs the seed's edit)
            para = rng.random() < 0.4
            base, other = (b, a) if para else (a, a)
            edited = fn(rng, base)
            if edited is None or edited.strip() == base.strip():
                continue
            if para and not shared_word(edited, base, other):
                continue
            if name == "entity" and rng.random() < 0.3:
                other, edited = other.lower(), edited.lower()
            form = "para" if para else "near"
            out.append(Pair("trap", f"{name}/{form}/{source}", 0, other, edited, group, split))
        for name, fn in VARIANTS.items():
            para = rng.random() < 0.3
            base, other = (b, a) if para else (a, a)
            edited = fn(rng, base)
            if edited is None or edited == base:
                continue
            if name != "symmetric" and rng.random() < 0.25:
                # two harmless edits at once
                extra = rng.choice(["typo", "casing", "filler", "punct"])
                edited = VARIANTS[extra](rng, edited) or edited
            form = "para" if para else "near"
            out.append(Pair("variant", f"{name}/{form}/{source}", 1, other, edited, group, split))
    return out


def build_labelled(root: Path) -> list[Pair]:
    out = []
    for i, (a, b, y) in enumerate(read_qqp(root)):
        g = f"qqp:{i}"
        out.append(Pair("qqp", "dup" if y else "nondup", y, a, b, g, split_of(g)))
    for i, (a, b, y) in enumerate(read_mrpc(root)):
        g = f"mrpc:{i}"
        out.append(Pair("mrpc", "para" if y else "nonpara", y, a, b, g, split_of(g)))
    for i, (a, b, y) in enumerate(read_gptcache(root)):
        g = f"gptcache:{i}"
        out.append(Pair("gptcache", "rewrite", y, a, b, g, split_of(g)))
    return out


def build_everyday(path: Path = EVERYDAY) -> list[Pair]:
    """Hand-written families: a base prompt, prompts that must hit it, prompts that must not."""
    data = json.loads(path.read_text(encoding="utf-8"))
    out = []
    for fam in data["families"]:
        g = f"everyday:{fam['id']}"
        split = split_of(g)
        for text, kind in fam.get("hit", []):
            out.append(Pair("everyday", kind, 1, fam["base"], text, g, split))
        for text, kind in fam.get("miss", []):
            out.append(Pair("everyday", kind, 0, fam["base"], text, g, split))
    return out


def build_multiturn(path: Path = MULTITURN) -> list[Conversation]:
    data = json.loads(path.read_text(encoding="utf-8"))
    out = []
    for fam in data["families"]:
        g = f"multiturn:{fam['id']}"
        split = split_of(g)
        base = tuple(fam["base"])
        for turns, kind in fam.get("hit", []):
            out.append(Conversation(kind, 1, base, tuple(turns), g, split))
        for turns, kind in fam.get("miss", []):
            out.append(Conversation(kind, 0, base, tuple(turns), g, split))
    return out


def build(root: Path = DEFAULT_DATA) -> list[Pair]:
    """Every labelled pair (shared data, generated edits, hand-written), in a fixed order."""
    return [*build_labelled(root), *build_edits(root), *build_everyday()]


def check_data(root: Path) -> None:
    need = ["qqp/qqp_pairs.json", "mrpc/msr-para-train.tsv", "gptcache_mock/mock_data.json"]
    missing = [p for p in need if not (root / p).is_file()]
    if missing:
        print(
            f"labelled data not found under {root} (missing {', '.join(missing)}); pass "
            "--data /path/to/shared/data. The data is deliberately not in this repository.",
            file=sys.stderr,
        )
        sys.exit(2)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_CACHE / "devset.jsonl",
        help="where to write the pairs (outside the repository; default: the embedding "
        "cache directory, $CACHEKIT_VERIFY_CACHE or /work/.cache-verify)",
    )
    args = p.parse_args(argv)
    check_data(args.data)
    pairs = build(args.data)
    convs = build_multiturn()
    count = Counter((x.source, x.kind.split("/")[0], x.label, x.split) for x in pairs)
    for key in sorted(count):
        print(*key, count[key], sep="\t")
    mt = Counter((c.label, c.split) for c in convs)
    print("multiturn", dict(mt))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", encoding="utf-8") as fh:
        for x in pairs:
            fh.write(json.dumps(asdict(x)) + "\n")
    print(f"wrote {len(pairs)} pairs to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
