"""The semantic layer's read path: a scope's nearest entries, read back and judged.

Shared by the semantic lookup (which then serves the first servable one, writes the
alias and cleans up) and the read-only peek behind ``explain`` (which only reports), so
the two cannot disagree on what a candidate is worth. Nothing here writes.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._entry import Entry, LookupOutcome
from ._layout import Space
from ._manifest import KeyManifest
from ._schema import CANDIDATE_FIELDS, EntryRow, decode_row

if TYPE_CHECKING:
    from ._index import Candidate
    from .verify import HitVerifier, Verdict, VerifyScope

__all__ = ["Neighbour", "read_neighbours", "verify_neighbours"]

log = logging.getLogger("cachekit")


@dataclass(frozen=True, slots=True)
class Neighbour:
    """One candidate of the vector search, with its entry as read back.

    ``verdict``: ``ok`` (servable), ``dangling`` (the entry, its hash or its body, is
    gone), ``corrupt`` (not written by cachekit), ``foreign`` (a key of another type),
    ``epoch`` / ``generation`` (stored before an invalidation), ``stale`` (older than the
    call's ``max_age``), ``rejected`` (the hit verifier says its answer is not the new
    prompt's).
    ``check``: the verifier's :class:`~cachekit.verify.Verdict`, when it was asked.
    """

    entry_id: str
    similarity: float
    verdict: str
    row: EntryRow
    pttl: int
    check: Verdict | None = None

    @property
    def reason(self) -> str | None:
        return self.check.reason if self.check is not None else None

    @property
    def score(self) -> float | None:
        return self.check.score if self.check is not None else None

    @property
    def servable(self) -> bool:
        return self.verdict == "ok"

    def entry(self) -> Entry:
        row = self.row
        assert row.payload is not None and row.created is not None
        tokens = None
        if row.tokens_in is not None and row.tokens_out is not None:
            tokens = (row.tokens_in, row.tokens_out)
        pttl = self.pttl if self.pttl >= 0 else None
        return Entry(
            self.entry_id, row.payload, row.created, row.prompt, row.model, tokens,
            row.estimated, pttl,
        )  # fmt: skip


async def read_neighbours(
    client: Any,
    space: Space,
    found: Sequence[Candidate],
    outcome: LookupOutcome,
    max_age: float | None,
) -> list[Neighbour]:
    """Read the entries of ``found`` (one pipeline) and judge each against ``outcome``.

    Each candidate's body comes whole: the verifier and ``history="similar"`` read its
    prompt and earlier turns, which share the body with the payload (the hash keeps
    small values only, see ``_layout``).
    """
    if not found:
        return []
    async with client.pipeline(transaction=False) as pipe:
        for cand in found:
            pipe.hmget(space.entry_key(cand.entry_id), list(CANDIDATE_FIELDS))
            pipe.pttl(space.entry_key(cand.entry_id))
            pipe.get(space.body_key(cand.entry_id))
        # raise_on_error=False: an entry key of another type is a foreign value (a
        # miss for that candidate), not a failed lookup.
        replies = await pipe.execute(raise_on_error=False)
    now = time.time()
    return [
        _judge(cand, replies[3 * i : 3 * i + 3], outcome, max_age, now)
        for i, cand in enumerate(found)
    ]


def _judge(
    cand: Candidate,
    replies: Sequence[Any],
    outcome: LookupOutcome,
    max_age: float | None,
    now: float,
) -> Neighbour:
    raw, pttl, body = replies
    if any(isinstance(reply, BaseException) for reply in replies):
        return Neighbour(cand.entry_id, cand.similarity, "foreign", EntryRow(), -2)
    row = decode_row(CANDIDATE_FIELDS, raw, body)
    if row.corrupt:
        verdict = "corrupt"  # a body cachekit did not write: never served; all of it goes
    elif not row.exists:
        verdict = "dangling"
    elif row.epoch is None or row.created is None:
        verdict = "corrupt"  # written by something else: never served; entry and vector go
    elif row.epoch != outcome.epoch:
        verdict = "epoch"
    elif row.generation != outcome.generation:
        verdict = "generation"
    elif max_age is not None and now - row.created > max_age:
        verdict = "stale"
    else:
        verdict = "ok"
    return Neighbour(cand.entry_id, cand.similarity, verdict, row, int(pttl))


def verify_neighbours(
    neighbours: list[Neighbour],
    verifier: HitVerifier | None,
    manifest: KeyManifest,
    *,
    threshold: float | None,
    every: bool = False,
) -> list[Neighbour]:
    """Ask ``verifier`` about the servable candidates at or above ``threshold``, best
    first, until one is accepted (``every``: all of them, for ``explain``).

    The request's own entry (an identical request stored meanwhile) is not a
    paraphrase and is not asked. A verifier that raises rejects (the call misses: a
    wrong answer costs more than a miss) and is logged.
    """
    if verifier is None:
        return neighbours
    from .verify import VerifyScope

    prompt, own_id = manifest.prompt or "", manifest.exact_digest
    scope = VerifyScope(manifest.namespace, manifest.model, manifest.tenant)
    out: list[Neighbour] = []
    asking = True
    for n in neighbours:
        above = threshold is None or n.similarity >= threshold
        if asking and above and n.servable and n.entry_id != own_id:
            n = _verified(n, verifier, prompt, scope)
            asking = every or not n.servable
        out.append(n)
    return out


def _verified(n: Neighbour, verifier: HitVerifier, prompt: str, scope: VerifyScope) -> Neighbour:
    try:
        check = verifier.verify(prompt, n.row.prompt or "", n.similarity, scope)
        accept = check.accept
        if not isinstance(accept, bool):
            raise TypeError(f"verify() must return a Verdict, got {type(check).__name__}")
    except Exception as exc:  # noqa: BLE001 - a verifier bug must not serve, nor fail, a call
        log.warning("cachekit: the hit verifier failed; not serving that candidate: %r", exc)
        from .verify import Verdict

        check, accept = Verdict(False, "verifier error", 0.0, repr(exc)[:200]), False
    return dataclasses.replace(n, verdict=n.verdict if accept else "rejected", check=check)
