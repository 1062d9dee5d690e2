"""An entry's body ``ck:{ns:T}:b:<id>``: one string with the texts of any length.

Framed as ``<prompt bytes>,<history bytes>\n<prompt><history><payload>`` (UTF-8; the
history is the JSON list of earlier turns of ``history="similar"``, else empty; the
payload is typed JSON, see ``_codec``). The prompt comes first so that listings read it
with GETRANGE and never transfer the payload. The exact lookup script splits it too
(``_scripts.LOOKUP_LUA``), by the same rule as :func:`split_body`.
"""

from __future__ import annotations

import re
from typing import Any, Final, NamedTuple

__all__ = ["BODY_HEAD_MAX", "Body", "EncodedEntry", "body_head", "encode_body", "split_body"]

#: The longest header a body can start with (two lengths, a comma, a newline): readers
#: look for it in this many leading bytes (the lookup script too).
BODY_HEAD_MAX: Final = 48
_BODY_HEAD: Final = re.compile(rb"^(\d+),(\d+)\n")


class EncodedEntry(NamedTuple):
    """A new entry: the fields of its hash and its body."""

    fields: dict[str, Any]
    body: bytes


class Body(NamedTuple):
    """An entry body split into its parts (bytes, as stored)."""

    prompt: bytes
    history: bytes
    payload: bytes


def encode_body(prompt: str, history: str, payload: str) -> bytes:
    """``<prompt bytes>,<history bytes>\\n<prompt><history><payload>`` (see the module doc)."""
    p, h = prompt.encode("utf-8"), history.encode("utf-8")
    return b"%d,%d\n" % (len(p), len(h)) + p + h + payload.encode("utf-8")


def body_head(raw: bytes) -> tuple[int, int, int] | None:
    """(header length, prompt bytes, history bytes) of a body or of its first bytes;
    None when it does not start with a header cachekit writes."""
    match = _BODY_HEAD.match(raw[:BODY_HEAD_MAX])
    if match is None:
        return None
    return match.end(), int(match[1]), int(match[2])


def split_body(raw: bytes) -> Body | None:
    """A whole body's parts; None when it is not one cachekit wrote (no header, or
    shorter than the header says: a payload is never empty)."""
    head = body_head(raw)
    if head is None:
        return None
    start, plen, hlen = head
    end = start + plen + hlen
    if end >= len(raw):
        return None
    return Body(raw[start : start + plen], raw[start + plen : end], raw[end:])
