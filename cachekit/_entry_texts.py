"""The texts of stored entries read on their own: prompts without their payloads
(listings, near misses), one payload (the console's review).

A prompt lives at the front of its entry's body (``_schema``: a header, the prompt, the
earlier turns, the payload), so a GETRANGE of the body's first bytes reads it; only a
prompt longer than that costs a second, exact GETRANGE. An entry of the earlier layout
keeps its prompt in the hash field ``p``, which is preferred when present. Nothing here
writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from ._body import body_head, split_body
from ._layout import Space
from ._schema import PAYLOAD, PROMPT, text

__all__ = ["PROMPT_PREFIX", "entry_payload", "entry_prompts"]

#: Bytes of a body read at first: its header and all but long prompts.
PROMPT_PREFIX: Final = 1024


async def entry_prompts(
    client: Any, entries: Sequence[tuple[Space, str]], known: Sequence[Any] | None = None
) -> list[str | None]:
    """The prompts of ``entries`` (space, entry id), in order: None for an entry with no
    body (expired, evicted) nor prompt field. ``known``: their hashes' ``p`` fields as
    the caller read them already (None for each entry without one); else read here."""
    if not entries:
        return []
    async with client.pipeline(transaction=False) as pipe:
        for space, entry_id in entries:
            pipe.getrange(space.body_key(entry_id), 0, PROMPT_PREFIX - 1)
            if known is None:
                pipe.hget(space.entry_key(entry_id), PROMPT)
        # A key of another type reads as no prompt, never as a failed listing.
        replies = await pipe.execute(raise_on_error=False)
    heads = replies if known is not None else replies[::2]
    legacy = list(known) if known is not None else replies[1::2]
    out: list[str | None] = [None] * len(entries)
    longer: list[tuple[int, int, int]] = []  # (entry, first byte, last byte) still to read
    for i, (head, old) in enumerate(zip(heads, legacy, strict=True)):
        if old is not None and not isinstance(old, BaseException):
            out[i] = text(old)
            continue
        if not isinstance(head, bytes | bytearray | str) or not head:
            continue
        raw = head.encode() if isinstance(head, str) else bytes(head)
        parsed = body_head(raw)
        if parsed is None:
            continue
        start, length, _ = parsed
        if start + length <= len(raw):
            out[i] = text(raw[start : start + length])
        else:
            longer.append((i, start, start + length - 1))
    if longer:
        async with client.pipeline(transaction=False) as pipe:
            for i, first, last in longer:
                space, entry_id = entries[i]
                pipe.getrange(space.body_key(entry_id), first, last)
            rest = await pipe.execute(raise_on_error=False)
        for (i, _, _), reply in zip(longer, rest, strict=True):
            if isinstance(reply, bytes | str):
                out[i] = text(reply)
    return out


async def entry_payload(client: Any, space: Space, entry_id: str) -> bytes | None:
    """One entry's payload (None: gone, or not one cachekit wrote): from its body, or from
    the hash of an entry of the earlier layout. Both keys are in one slot: one pipeline."""
    async with client.pipeline(transaction=False) as pipe:
        pipe.hget(space.entry_key(entry_id), PAYLOAD)
        pipe.get(space.body_key(entry_id))
        old, body = await pipe.execute(raise_on_error=False)
    if isinstance(old, bytes):
        return old
    if not isinstance(body, bytes):
        return None
    parts = split_body(body)
    return None if parts is None else parts.payload
