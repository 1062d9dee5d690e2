"""Word classes of the default verifier: filler, negation, contractions, numbers, scope
and relation words (re-exported by ``_lexicon``).
"""

from __future__ import annotations

from importlib import resources


def _data(name: str) -> str:
    """A word list shipped as a text file of this package (kept out of the code)."""
    return (resources.files(__package__) / name).read_text("utf-8")


def _wordlist(text: str) -> list[str]:
    """The whitespace-separated words of a block of text (keeps the lists compact)."""
    return text.split()


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

#: Modifiers that narrow what a question is about (price tier, condition, origin, diet,
#: audience, channel): "best laptops" / "best *cheap* laptops" is another question, where
#: an added "good" or "really" is not. Only an addition counts (a swap of two is polarity).
RESTRICTING = frozenset(
    _wordlist(
        """
        cheap budget affordable luxury premium used secondhand refurbished international
        domestic frozen fresh organic vegan vegetarian healthy kids children child toddler
        toddlers baby babies infant infants teen teens teenager teenagers senior seniors
        elderly beginner beginners advanced professional commercial residential wireless
        wired electric manual automatic portable indoor outdoor male female diesel petrol
        hybrid free paid
        nonstop direct oneway roundtrip furnished unfurnished shared wooden glass leather
        plastic metal steel stainless cotton wool silk ceramic bamboo marble granite running
        stopped inactive pending archived deleted unread expired failed unpaid overdue
        remote freelance temporary permanent gaming mechanical ergonomic waterproof
        keto halal kosher gluten dairy sugar women men womens mens ladies boys girls
        """
    )
)

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
    "longest": "longest", "shortest": "shortest", "fastest": "fastest", "quickest": "fastest",
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
    "till": "until", "since": "since", "during": "during", "while": "during", "beyond": "beyond",
    "besides": "besides", "instead": "instead", "against": "against", "unlike": "unlike",
    "despite": "despite", "including": "including",
}  # fmt: skip
