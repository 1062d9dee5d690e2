"""The exact layer: one script call reads counters and entry (or the alias a semantic hit
left), and counts the hit.

On one node a lookup is one ``EVALSHA`` (``_scripts.LOOKUP_LUA``). On a cluster the
namespace epoch lives in another hash slot, so it is read concurrently and the script
checks entries against the epoch this worker last saw (see :meth:`ExactLayer.read`).
The read-only mode (:meth:`ExactLayer.peek`) runs the same script without its writes.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable
from typing import Any

from ._cache_config import CacheConfig
from ._entry import Entry, LookupOutcome
from ._layout import Space, epoch_key
from ._manifest import KeyManifest
from ._policy import CACHE_ERRORS, OUTAGES, RateLimitedLog
from ._schema import EntryRow, float_or_none, int_or_none, text
from ._scripts import (
    COUNTER_ONLY_LUA,
    COUNTER_ONLY_SHA,
    LOOKUP_LUA,
    LOOKUP_SHA,
    READ_ONLY,
    run_script,
)
from .errors import CacheBackendError

__all__ = ["ExactLayer"]

#: After a failed epoch read, lookups stop waiting for that shard for this long.
_EPOCH_DOWN_SECONDS = 2.0
#: While it is marked down, one background read of the epoch per this interval.
_EPOCH_PROBE_SECONDS = 0.5


def _entry(reply: Any) -> Entry:
    """The entry of a hit's reply (see ``LOOKUP_LUA``): with what serving it saved and
    its PTTL, except in the read-only reply, which carries its hits instead."""
    entry_id, payload, created = text(reply[2]), bytes(reply[4]), float(reply[5])
    prompt = text(reply[6]) if reply[6] else None
    model = text(reply[7]) if len(reply) > 7 and reply[7] else None
    if len(reply) < 12:
        return Entry(entry_id, payload, created, prompt, model)
    tokens_in, tokens_out = int_or_none(reply[8] or None), int_or_none(reply[9] or None)
    pttl = int_or_none(reply[11])
    return Entry(
        entry_id,
        payload,
        created,
        prompt,
        model,
        tokens=None if tokens_in is None or tokens_out is None else (tokens_in, tokens_out),
        estimated=bool(reply[10]),
        pttl=pttl if pttl is not None and pttl >= 0 else None,
    )


class ExactLayer:
    """Exact lookups and the generation/epoch counters of one cache."""

    def __init__(self, redis: Callable[[], Any], config: CacheConfig, warn: RateLimitedLog) -> None:
        self._redis = redis
        self._cluster = config.cluster
        self._warn = warn
        self._epochs: dict[str, int] = {}
        self._epoch_down_until: dict[str, float] = {}
        self._epoch_probe_at: dict[str, float] = {}

    async def read(
        self, manifest: KeyManifest, space: Space, max_age: float | None
    ) -> LookupOutcome:
        """The outcome of the exact layer: an entry on a hit, else why not (``reason``)."""
        age = "" if max_age is None else repr(float(max_age))
        if self._cluster:
            reply = await self._read_cluster(manifest, space, age)
        else:
            # One EVALSHA: the script reads the namespace epoch itself (one node).
            keys = [space.gen_key, space.stats_key, space.epoch_key]
            args = [space.prefix, manifest.exact_digest, age, ""]
            reply = await run_script(self._redis(), LOOKUP_SHA, LOOKUP_LUA, keys, args)
        return self._outcome(reply, space)

    async def peek(
        self, manifest: KeyManifest, space: Space, client: Any
    ) -> tuple[LookupOutcome, str, str | None, EntryRow | None]:
        """What :meth:`read` would find, with nothing written (read-only, on ``client``).

        Returns the outcome, the script's status for the request's entry (``hit``,
        ``absent``, ``dangling``, ``epoch``, ...; its own, or the one its alias names),
        that entry's id and its fields.
        """
        keys = [space.gen_key, space.stats_key]
        known = ""
        if self._cluster:
            known = str(await self.counter(space.epoch_key, client, read_only=True))
        else:
            keys.append(space.epoch_key)
        args = [space.prefix, manifest.exact_digest, "", known, READ_ONLY]
        reply = await run_script(client, LOOKUP_SHA, LOOKUP_LUA, keys, args)
        outcome = self._outcome(reply, space)
        if len(reply) < 9:  # no entry, or a key cachekit did not write: nothing to show
            return outcome, outcome.reason or "absent", None, None
        payload, created, prompt, model, hits = reply[4:9]
        row = EntryRow(
            payload=bytes(payload) if payload else None,
            created=float_or_none(created or None),
            prompt=text(prompt) if payload else None,
            model=text(model) if model else None,
            hits=int_or_none(hits or None),
        )
        return outcome, text(reply[3]), text(reply[2]), row

    def _outcome(self, reply: Any, space: Space) -> LookupOutcome:
        if reply[0] == b"!" or reply[0] == "!":
            return self._foreign_counter(space, text(reply[1]))
        outcome = LookupOutcome(generation=int(reply[0]), epoch=int(reply[1]))
        if len(reply) >= 4:
            status = text(reply[3])
            if status == "hit":
                outcome.entry = _entry(reply)
                outcome.layer = "exact"
                return outcome
            if status == "foreign":
                self._warn(
                    "foreign-entry",
                    "cachekit: a key of %s holds data cachekit did not write (wrong type); "
                    "treated as a miss",
                    space.tag,
                )
            outcome.reason = status
        return outcome

    def _foreign_counter(self, space: Space, which: str) -> LookupOutcome:
        key = space.epoch_key if which == "epoch" else space.gen_key
        self._warn(
            f"foreign-{which}",
            "cachekit: %s holds a value cachekit did not write; calls for it are not cached "
            "until `cachekit invalidate` resets it",
            key,
        )
        return LookupOutcome(generation=-1, epoch=-1, reason=f"foreign {which} counter")

    async def _read_cluster(self, manifest: KeyManifest, space: Space, age: str) -> Any:
        """Cluster: the epoch key is in another slot, so it is read concurrently.

        The script checks entries against the epoch this worker last saw; the concurrent
        GET tells whether that is still current. After an invalidation the first lookup
        of each worker sees the change and runs once more with the new epoch, so an entry
        of the old epoch is never served.
        """
        namespace = manifest.namespace
        key = epoch_key(namespace)
        keys = [space.gen_key, space.stats_key]
        client = self._redis()
        for _attempt in range(3):
            known = self._epochs.get(namespace, 0)
            args = [space.prefix, manifest.exact_digest, age, str(known)]
            if namespace in self._epochs and time.monotonic() < self._epoch_down_until.get(
                namespace, 0.0
            ):
                # The epoch shard failed moments ago. Every command sent to a dead node
                # makes redis-py's cluster client re-discover the topology, which stalls
                # every shard: serve this tenant with the epoch last seen and let one
                # background probe per interval find out when the shard is back.
                self._probe_epoch(namespace, key)
                return await run_script(client, LOOKUP_SHA, LOOKUP_LUA, keys, args)
            epoch_read = asyncio.ensure_future(self.counter(key))
            epoch_read.add_done_callback(functools.partial(self._epoch_read_done, namespace))
            reply = await run_script(client, LOOKUP_SHA, LOOKUP_LUA, keys, args)
            try:
                epoch = await epoch_read
            except CACHE_ERRORS:
                # The epoch lives on another shard. If that shard is down, keep serving
                # this tenant's shard with the epoch we last saw: an all-tenant
                # invalidate needs that shard too, so it cannot have happened meanwhile
                # (except in the moment before it failed, which is the accepted risk).
                if namespace in self._epochs:
                    return reply
                raise
            if epoch < 0:
                return [b"!", b"epoch"]
            if epoch == known:
                return reply
            self._epochs[namespace] = epoch
        raise CacheBackendError("the namespace epoch kept changing during the lookup")

    def _probe_epoch(self, namespace: str, key: str) -> None:
        now = time.monotonic()
        if now < self._epoch_probe_at.get(namespace, 0.0):
            return
        self._epoch_probe_at[namespace] = now + _EPOCH_PROBE_SECONDS
        probe = asyncio.ensure_future(self.counter(key))
        probe.add_done_callback(functools.partial(self._epoch_read_done, namespace))

    def _epoch_read_done(self, namespace: str, task: asyncio.Future[int]) -> None:
        """Remember whether the namespace's epoch shard answers (see _read_cluster)."""
        if task.cancelled():
            return
        exc = task.exception()
        if exc is None:
            self._epoch_down_until.pop(namespace, None)
            if task.result() >= 0:
                self._epochs[namespace] = task.result()
        elif isinstance(exc, OUTAGES):
            self._epoch_down_until[namespace] = time.monotonic() + _EPOCH_DOWN_SECONDS

    async def counter(self, key: str, client: Any = None, *, read_only: bool = False) -> int:
        """A generation/epoch counter, created from the clock when missing (see the Lua).

        -1 when the key holds something cachekit did not write. ``read_only``: a missing
        counter reads as 0 and stays missing.
        """
        mode = (READ_ONLY,) if read_only else ()
        # EVALSHA: on a cluster every lookup reads the namespace epoch this way, and EVAL
        # would send the whole script text to that one node each time.
        value = await run_script(
            client or self._redis(), COUNTER_ONLY_SHA, COUNTER_ONLY_LUA, [key], mode
        )
        return -1 if value is None else int(value)

    async def counters(self, space: Space) -> LookupOutcome:
        """Generation and epoch for a store without a lookup (``skip_lookup``)."""
        epoch, generation = await asyncio.gather(
            self.counter(space.epoch_key), self.counter(space.gen_key)
        )
        return LookupOutcome(generation=generation, epoch=epoch)
