"""What cachekit's Redis hashes hold: field names, encoding and tolerant decoding, once.

The key names live in ``_layout``; this module names the fields *inside* the keys. The
Lua scripts (``_scripts``), the store, the semantic layer, ``inspect`` and ``explain``
all spell a field through the constants below, never as a literal.

Entry hash ``ck:{ns:T}:e:<id>``, small values only (so Redis keeps it a listpack)::

    c   created (Unix time, repr float)      h   hits                 s   scope digest
    ne  namespace epoch it was stored under  g   tenant generation    m   model
    ti / to  input / output tokens it cost;  te  1 when those are estimates

Entry body ``ck:{ns:T}:b:<id>``, one string with the same TTL: the prompt, earlier turns
and payload, framed as ``_body`` says.

Entries written before the body had a key of its own keep ``v`` (payload), ``p``
(prompt) and ``hx`` (history) in the hash: every reader takes them from there when the
hash has them.

Stats hash ``ck:{ns:T}:stats``: the counters in :data:`COUNTERS`, ``since``, and saved
tokens per model (:func:`tokens_field`). Near-miss stream ``ck:{ns:T}:nearmiss``: the
fields of :data:`NEAR_MISS_FIELDS`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from ._body import EncodedEntry, encode_body, split_body

__all__ = [
    "COUNTERS",
    "LOOKUP_FIELDS",
    "NEAR_MISS_FIELDS",
    "EntryRow",
    "decode_row",
    "encode_entry",
    "float_or_none",
    "int_or_none",
    "parse_reason_field",
    "parse_tokens_field",
    "reason_field",
    "text",
    "tokens_field",
]

# -- entry hash ----------------------------------------------------------------------
#: Entries written before the body key: payload, prompt and history in the hash.
PAYLOAD: Final = "v"
PROMPT: Final = "p"
CREATED: Final = "c"
MODEL: Final = "m"
HITS: Final = "h"
TOKENS_IN: Final = "ti"
TOKENS_OUT: Final = "to"
ESTIMATED: Final = "te"
EPOCH: Final = "ne"
GENERATION: Final = "g"
SCOPE: Final = "s"
#: ``history="similar"`` entries written before the body key: the earlier turns' texts (a
#: JSON list), matched turn by turn before the entry is served for another wording.
HISTORY: Final = "hx"

#: What a lookup reads of an entry hash, in this order (the lookup script indexes them);
#: ``v`` and ``p`` are there for entries of the earlier layout, the script fills them in
#: from the body for the others.
LOOKUP_FIELDS: Final = (
    PAYLOAD,
    CREATED,
    PROMPT,
    EPOCH,
    MODEL,
    TOKENS_IN,
    TOKENS_OUT,
    ESTIMATED,
    GENERATION,
)
#: What a semantic candidate's verification reads of the hash (the lookup's fields plus
#: hits and an earlier layout's history), besides the body.
CANDIDATE_FIELDS: Final = (*LOOKUP_FIELDS, HITS, HISTORY)
#: Every field of the hash but an earlier layout's payload (listings read these; the
#: prompt of a current entry comes from its body).
INFO_FIELDS: Final = (CREATED, MODEL, HITS, TOKENS_IN, TOKENS_OUT, GENERATION, EPOCH, SCOPE, PROMPT)

# -- stats hash ----------------------------------------------------------------------
EXACT_HITS: Final = "exact"
SEMANTIC_HITS: Final = "semantic"
MISSES: Final = "miss"
BYPASSES: Final = "bypass"
ERRORS: Final = "error"
#: The call counters of a stats hash.
COUNTERS: Final = (EXACT_HITS, SEMANTIC_HITS, MISSES, BYPASSES, ERRORS)
#: Unix time counting started (the first store), for projections.
SINCE: Final = "since"

# -- near-miss stream ------------------------------------------------------------------
NM_PROMPT: Final = "prompt"
NM_NEAREST: Final = "nearest"
NM_SIMILARITY: Final = "similarity"
NM_THRESHOLD: Final = "threshold"
NM_MODEL: Final = "model"
#: Why the nearest entry was not served: "" below the threshold, else the hit verifier's
#: reason (``number``, ``order``, ...). Streams written before it existed lack it.
NM_REASON: Final = "reason"
NEAR_MISS_FIELDS: Final = (NM_PROMPT, NM_NEAREST, NM_SIMILARITY, NM_THRESHOLD, NM_MODEL, NM_REASON)
#: What the record is: ``near`` (below the threshold), ``rejected`` (by the verifier) or
#: ``hit`` (a sampled semantic hit, ``review_sample=``). Older records lack it (read as
#: ``rejected`` when they have a reason, else ``near``).
NM_KIND: Final = "kind"
#: The entry id of the nearest (or served) entry, so the review shows its answer.
NM_ENTRY: Final = "entry"
#: The request's scope digest, so a label on the record can count as adaptive evidence.
NM_SCOPE: Final = "scope"
RECORD_KINDS: Final = ("hit", "near", "rejected")


def reason_field(status: str, code: str) -> str:
    """The stats field counting one reason of a status: ``bypass.no_tenant``."""
    return f"{status}.{code}"


def parse_reason_field(name: str) -> tuple[str, str] | None:
    """``bypass.no_tenant`` -> ("bypass", "no_tenant"); None for other fields."""
    status, sep, code = name.partition(".")
    return (status, code) if sep and code and status in (BYPASSES, ERRORS) else None


def tokens_field(direction: str, model: str, *, estimated: bool = False) -> str:
    """The stats field of tokens saved on ``model``: ``tin:<m>``, ``tout:<m>``, ``ein:<m>``..."""
    return f"{'e' if estimated else 't'}{direction}:{model}"


def parse_tokens_field(name: str) -> tuple[str, str, bool] | None:
    """``tin:<m>`` -> ("in", m, False), ``eout:<m>`` -> ("out", m, True); else None."""
    kind, _, model = name.partition(":")
    if not model or kind not in ("tin", "tout", "ein", "eout"):
        return None
    return kind[1:], model, kind[0] == "e"


def encode_entry(
    *,
    payload: str,
    created: float,
    epoch: int,
    generation: int,
    scope_digest: str,
    prompt: str | None,
    model: str | None,
    usage: tuple[int, int] | None,
    usage_estimated: bool,
    history: tuple[str, ...] = (),
) -> EncodedEntry:
    """The fields of a new entry hash (``hits`` starts at 0) and its body."""
    fields: dict[str, Any] = {
        CREATED: repr(created),
        HITS: 0,
        EPOCH: epoch,
        GENERATION: generation,
        SCOPE: scope_digest,
    }
    if model:
        fields[MODEL] = model
    if usage is not None:
        fields[TOKENS_IN], fields[TOKENS_OUT] = usage
        if usage_estimated:
            fields[ESTIMATED] = 1
    turns = json.dumps(list(history), ensure_ascii=False) if history else ""
    return EncodedEntry(fields, encode_body(prompt or "", turns, payload))


def text(value: Any) -> str:
    # errors="replace": a field written by something else may not be UTF-8; it is text
    # for reports (the matched prompt), never a reason for a call to fail.
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def int_or_none(value: Any) -> int | None:
    """An integer field as cachekit writes it, or None for anything else (foreign data)."""
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def float_or_none(value: Any) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True, slots=True)
class EntryRow:
    """An entry (hash and body) as read back: every field tolerant (None when absent or
    foreign)."""

    payload: bytes | None = None
    created: float | None = None
    prompt: str | None = None
    model: str | None = None
    hits: int | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    estimated: bool = False
    epoch: int | None = None
    generation: int | None = None
    scope_digest: str | None = None
    #: The earlier turns it was stored with (``history="similar"``); None when absent.
    history: tuple[str, ...] | None = None
    #: Its body is not one cachekit writes (no header, truncated): never served.
    corrupt: bool = False

    @property
    def exists(self) -> bool:
        """False for a vanished entry (TTL, eviction; the hash or the body, which Redis
        may evict one without the other): every entry has a payload."""
        return self.payload is not None

    def usage(self) -> tuple[str | None, int | None, int | None, bool]:
        """(model, tokens in, tokens out, estimated): what a hit on it saved."""
        return self.model, self.tokens_in, self.tokens_out, self.estimated


def decode_row(fields: Sequence[str], values: Sequence[Any], body: Any = None) -> EntryRow:
    """An ``HMGET`` reply of ``fields`` (and the entry's body, None when it has none or
    it was not read) as an :class:`EntryRow`.

    The payload, prompt and history come from the hash when it has a payload (an entry
    of the earlier layout), else from the body. A body without its hash is no entry.
    """
    got = dict(zip(fields, values, strict=True))
    raw_payload, prompt, history = got.get(PAYLOAD), got.get(PROMPT), got.get(HISTORY)
    corrupt = False
    if raw_payload is None and body is not None and any(v is not None for v in values):
        parts = split_body(bytes(body))
        if parts is None:
            corrupt = True
        else:
            prompt, raw_payload = parts.prompt, parts.payload
            history = parts.history or None
    return EntryRow(
        payload=bytes(raw_payload) if raw_payload is not None else None,
        created=float_or_none(got.get(CREATED)),
        prompt=_text_or_none(prompt),
        model=_text_or_none(got.get(MODEL)),
        hits=int_or_none(got.get(HITS)),
        tokens_in=int_or_none(got.get(TOKENS_IN)),
        tokens_out=int_or_none(got.get(TOKENS_OUT)),
        estimated=got.get(ESTIMATED) is not None,
        epoch=int_or_none(got.get(EPOCH)),
        generation=int_or_none(got.get(GENERATION)),
        scope_digest=_text_or_none(got.get(SCOPE)),
        history=_turns(history),
        corrupt=corrupt,
    )


def _turns(value: Any) -> tuple[str, ...] | None:
    """A stored JSON list of turn texts; None when absent or not one (foreign data)."""
    if value is None:
        return None
    try:
        turns = json.loads(text(value))
    except ValueError:
        return None
    if isinstance(turns, list) and all(isinstance(t, str) for t in turns):
        return tuple(turns)
    return None


def _text_or_none(value: Any) -> str | None:
    return None if value is None else text(value)
