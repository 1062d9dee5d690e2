"""The entry layout: a hash of small fields (a listpack) beside a body string (prompt,
earlier turns, payload), no exact pointer of its own, one round trip for an exact hit;
and entries of the earlier layout (payload and prompt in the hash, an exact pointer to
every entry) still served, so an upgrade does not start every cache cold."""

from __future__ import annotations

import time
from typing import Any

import pytest
import redis
from redis.asyncio.connection import Connection

from cachekit import LLMCache
from cachekit._body import split_body
from cachekit._codec import decode, encode
from cachekit._entry_texts import PROMPT_PREFIX, entry_payload
from cachekit._explanation import explain
from cachekit._index import make_index
from cachekit._inspect import list_entries
from cachekit._layout import Space
from cachekit._manifest import KeyManifest, build_manifest
from tests._helpers import GENEROUS, MakeCache, bow_embedder

NS = "lay"
THRESHOLD = 0.8  # the paraphrase below is at 0.83 under the bag-of-words embedder
FRANCE, PARAPHRASE = "What is the capital of France?", "capital of France, what is it?"
#: A prompt like an application's (past 64 B: it would make a hash a hashtable).
LONG = (
    "You are a helpful assistant. Summarise, in three short sentences, what the following "
    "customer wrote about the delivery of order 1234 and whether a refund is due."
)
ANSWER = "Answer: " + "The parcel arrived late and damaged; a refund is due. " * 18  # ~1 KB

#: What cachekit wrote before the entry body had a key of its own (its STORE_LUA as it
#: was): payload ``v``, prompt ``p`` and history ``hx`` in the hash, and an exact pointer
#: ``x:<gen>:<digest>`` to every entry, with the entry's TTL.
EARLIER_STORE_LUA = """
redis.pcall('HINCRBY', KEYS[4], 'miss', 1)
redis.pcall('HSETNX', KEYS[4], 'since', ARGV[5])
if redis.pcall('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if KEYS[5] and redis.pcall('GET', KEYS[5]) ~= ARGV[2] then return 0 end
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[2], unpack(ARGV, 6))
if ARGV[3] ~= '' then
  redis.call('EXPIRE', KEYS[2], ARGV[3])
  redis.call('SET', KEYS[3], ARGV[4], 'EX', ARGV[3])
else
  redis.call('SET', KEYS[3], ARGV[4])
end
return 1
"""


def manifest(prompt: str, tenant: str | None = "acme", model: str = "m") -> KeyManifest:
    return build_manifest(NS, tenant, {"prompt": prompt, "model": model}, function_id="f")


@pytest.fixture
async def cache(make_cache: MakeCache) -> LLMCache:
    c = make_cache(embedder=bow_embedder(), index="vectorset", budgets=GENEROUS)
    await c.connect()
    return c


async def put(cache: LLMCache, prompt: str, answer: str = ANSWER, **kw: Any) -> KeyManifest:
    m = manifest(prompt, **kw)
    outcome = await cache.lookup(m, threshold=None)
    assert await cache.store(m, outcome, encode(answer), ttl=3600, usage=(5, 7))
    return m


async def put_earlier(
    cache: LLMCache, prompt: str | KeyManifest, answer: str = ANSWER
) -> KeyManifest:
    """Store ``prompt`` as cachekit did before the body key: hash, pointer and vector."""
    m = manifest(prompt) if isinstance(prompt, str) else prompt
    outcome = await cache.lookup(m, threshold=None)  # the counters, as a miss reads them
    space, digest = cache.space(m), m.exact_digest
    fields: dict[str, Any] = {
        "v": encode(answer), "c": repr(time.time()), "h": 0, "ne": outcome.epoch,
        "g": outcome.generation, "s": m.scope_digest, "p": m.prompt or "", "m": "m",
        "ti": 5, "to": 7,
    }  # fmt: skip
    keys = [
        space.gen_key,
        space.entry_key(digest),
        space.exact_key(outcome.generation, digest),
        space.stats_key,
    ]
    if not cache.cluster:  # on a cluster the epoch is in another slot: not in the script
        keys.append(space.epoch_key)
    args: list[Any] = [outcome.generation, outcome.epoch, 3600, digest, repr(time.time())]
    for name, value in fields.items():
        args += [name, value]
    assert await cache.redis.eval(EARLIER_STORE_LUA, len(keys), *keys, *args) == 1
    index = make_index("vectorset", cache.redis)
    async with cache.redis.pipeline(transaction=False) as pipe:
        scope = space.scope(outcome.generation, m.scope_digest)
        index.add(pipe, scope, digest, await cache.embed(m.prompt or ""), 3600)
        await pipe.execute()
    return m


def keys_of(r: redis.Redis, space: Space, kind: str) -> list[bytes]:
    return list(r.scan_iter(match=f"ck:{space.tag_glob}:{kind}:*"))


async def test_an_entry_is_a_listpack_hash_and_a_body(
    cache: LLMCache, redis_sync: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    m = await put(cache, LONG)
    space = cache.space(m)
    entry, body = space.entry_key(m.exact_digest), space.body_key(m.exact_digest)
    assert redis_sync.object("encoding", entry) == b"listpack"
    fields = redis_sync.hgetall(entry)
    assert not {b"v", b"p", b"hx"} & set(fields)  # the texts are in the body
    assert max(len(v) for v in fields.values()) <= 64  # Redis' hash-max-listpack-value
    assert split_body(redis_sync.get(body)) == (LONG.encode(), b"", encode(ANSWER).encode())
    assert 3590 < redis_sync.ttl(body) <= 3600 and abs(redis_sync.ttl(entry) - 3600) <= 10
    assert not keys_of(redis_sync, space, "x")  # the lookup reads e:<digest>: no pointer
    assert redis_sync.memory_usage(entry, samples=0) < 300

    sent: list[bytes] = []
    real_send = Connection.send_packed_command

    async def counted(self: Connection, command: Any, check_health: bool = True) -> None:
        sent.append(command if isinstance(command, bytes) else b"".join(command))
        await real_send(self, command, check_health)

    redis_sync.config_resetstat()
    monkeypatch.setattr(Connection, "send_packed_command", counted)
    hit = await cache.lookup(m, threshold=None)
    monkeypatch.undo()
    # The exact hit is one round trip: one write to the socket, one EVALSHA in it (the
    # commands Redis counts besides are the script's own).
    assert len(sent) == 1 and sent[0].count(b"EVALSHA") == 1, sent
    assert redis_sync.info("commandstats")["cmdstat_evalsha"]["calls"] == 1
    assert hit.layer == "exact" and hit.entry is not None
    assert decode(hit.entry.payload) == ANSWER and hit.entry.prompt == LONG
    assert hit.entry.tokens == (5, 7) and hit.entry.pttl is not None
    stats = redis_sync.hgetall(space.stats_key)
    assert stats[b"exact"] == b"1" and stats[b"tin:m"] == b"5" and stats[b"tout:m"] == b"7"
    assert redis_sync.hget(entry, "h") == b"1"


async def test_an_entry_takes_less_memory_than_in_the_earlier_layout(
    cache: LLMCache, redis_sync: redis.Redis
) -> None:
    now, then = await put(cache, LONG), await put_earlier(cache, LONG + " Be brief.")
    space = cache.space(now)

    def usage(*keys: str) -> int:
        return sum(int(redis_sync.memory_usage(k, samples=0) or 0) for k in keys)

    new = usage(space.entry_key(now.exact_digest), space.body_key(now.exact_digest))
    old_entry = space.entry_key(then.exact_digest)
    [pointer] = keys_of(redis_sync, space, "x")
    old = usage(old_entry, pointer.decode())
    assert redis_sync.object("encoding", old_entry) == b"hashtable"
    # Measured on Redis 8.2: ~1,630 B against ~2,290 B for this prompt and answer.
    assert new <= old - 500, (new, old)


async def test_a_body_evicted_alone_is_a_miss_and_never_served(
    cache: LLMCache, redis_sync: redis.Redis
) -> None:
    m = await put(cache, FRANCE, "the cached answer")
    space = cache.space(m)
    entry, body = space.entry_key(m.exact_digest), space.body_key(m.exact_digest)
    vectors = space.scope((await cache.prepare(m)).generation, m.scope_digest).key("vs")
    assert redis_sync.execute_command("VCARD", vectors) == 1
    redis_sync.delete(body)  # LRU evicts keys one at a time: the body went first
    peeked = await cache.peek(m, threshold=None)
    assert peeked.exact == "dangling" and redis_sync.exists(entry)  # a peek only reports
    outcome = await cache.lookup(m, threshold=THRESHOLD)
    assert outcome.entry is None and outcome.reason == "dangling"
    assert not redis_sync.exists(entry)  # the hash without its body is dropped
    assert redis_sync.execute_command("VCARD", vectors) == 0  # and its vector
    assert (await cache.lookup(manifest(PARAPHRASE), threshold=THRESHOLD)).entry is None
    assert cache.local_errors == 0 and cache.breaker.opened == 0
    await put(cache, FRANCE, "stored again")
    served = await cache.lookup(m, threshold=None)
    assert served.entry is not None and decode(served.entry.payload) == "stored again"
    # The hash evicted, the body left behind: no entry either (and nothing corrupt).
    redis_sync.delete(entry)
    assert (await cache.lookup(m, threshold=None)).entry is None
    assert (await cache.peek(m, threshold=None)).exact == "absent"


async def test_a_body_cachekit_did_not_write_is_corrupt_and_dropped(
    cache: LLMCache, redis_sync: redis.Redis
) -> None:
    m = await put(cache, FRANCE)
    space = cache.space(m)
    entry, body = space.entry_key(m.exact_digest), space.body_key(m.exact_digest)
    for junk in (b"no header at all", b"99,0\nshorter than it says", b"5,0\nhello"):
        redis_sync.set(body, junk)
        assert (await cache.peek(m, threshold=None)).exact == "corrupt"
        outcome = await cache.lookup(m, threshold=None)
        assert outcome.entry is None and outcome.reason == "corrupt"
        assert not redis_sync.exists(entry) and not redis_sync.exists(body)
        m = await put(cache, FRANCE)
    # A semantic candidate with such a body is not served either, and goes.
    redis_sync.set(body, b"no header at all")
    outcome = await cache.lookup(manifest(PARAPHRASE), threshold=THRESHOLD)
    assert outcome.entry is None
    assert not redis_sync.exists(entry) and not redis_sync.exists(body)


async def test_a_semantic_hit_leaves_an_alias_and_a_store_replaces_it(
    cache: LLMCache, redis_sync: redis.Redis
) -> None:
    m = await put(cache, FRANCE, "Paris")
    space = cache.space(m)
    para = manifest(PARAPHRASE)
    first = await cache.lookup(para, threshold=THRESHOLD)
    assert first.layer == "semantic" and first.entry is not None
    assert first.entry.entry_id == m.exact_digest
    [alias] = keys_of(redis_sync, space, "x")
    assert alias.decode() == space.exact_key(first.generation, para.exact_digest)
    assert redis_sync.get(alias) == m.exact_digest.encode()
    assert 0 < redis_sync.pttl(alias) <= redis_sync.pttl(space.entry_key(m.exact_digest)) + 50
    again = await cache.lookup(para, threshold=None)  # no embedder needed: the alias
    assert again.layer == "exact" and again.entry is not None and decode(again.entry.payload)
    assert again.entry.entry_id == m.exact_digest
    # An exact hit on the entry's own request writes no alias.
    assert (await cache.lookup(m, threshold=THRESHOLD)).layer == "exact"
    assert keys_of(redis_sync, space, "x") == [alias]
    # The paraphrase's own answer, stored (a refresh: no lookup), replaces the alias.
    outcome = await cache.prepare(para)
    assert await cache.store(para, outcome, encode("Paris, the capital"), ttl=3600)
    assert not keys_of(redis_sync, space, "x")
    own = await cache.lookup(para, threshold=THRESHOLD)
    assert own.entry is not None and own.entry.entry_id == para.exact_digest
    assert decode(own.entry.payload) == "Paris, the capital"


async def test_entries_of_the_earlier_layout_are_still_served(
    cache: LLMCache, redis_sync: redis.Redis
) -> None:
    m = await put_earlier(cache, FRANCE, "Paris (stored by the earlier layout)")
    space = cache.space(m)
    entry = space.entry_key(m.exact_digest)
    assert redis_sync.hget(entry, "v") is not None and not redis_sync.exists(
        space.body_key(m.exact_digest)
    )
    # Exact: the entry's own digest.
    hit = await cache.lookup(m, threshold=THRESHOLD)
    assert hit.layer == "exact" and hit.entry is not None
    assert decode(hit.entry.payload) == "Paris (stored by the earlier layout)"
    assert hit.entry.prompt == FRANCE and hit.entry.tokens == (5, 7)
    assert redis_sync.hget(space.stats_key, "tin:m") == b"5"
    # Semantic: the paraphrase finds its vector and reads the hash's own payload.
    para = manifest(PARAPHRASE)
    semantic = await cache.lookup(para, threshold=THRESHOLD)
    assert semantic.layer == "semantic" and semantic.entry is not None
    assert decode(semantic.entry.payload) == "Paris (stored by the earlier layout)"
    assert (await cache.lookup(para, threshold=None)).layer == "exact"  # via the alias
    # The read-only tools read it too.
    peeked = await cache.peek(m, threshold=None)
    assert peeked.exact == "hit" and peeked.exact_row is not None
    assert peeked.exact_row.prompt == FRANCE and peeked.exact_row.hits == 3
    listed, _, _ = await list_entries(cache.redis, NS)
    assert [(e.prompt, e.live) for e in listed] == [(FRANCE, True)]
    explained = await explain(
        cache, para, function_id="f", embedder=cache.embedder, threshold=THRESHOLD
    )
    assert explained.exact_status == "hit" and explained.exact_entry is not None
    assert explained.exact_entry["prompt"] == FRANCE
    payload = await entry_payload(cache.redis, space, m.exact_digest)
    assert payload is not None and decode(payload) == "Paris (stored by the earlier layout)"

    # Invalidation hides it (the tenant's generation), as any entry.
    await cache.invalidate(NS, tenant="acme")
    assert (await cache.lookup(m, threshold=THRESHOLD)).entry is None
    assert (await cache.lookup(para, threshold=THRESHOLD)).entry is None
    # A store over it writes the current layout, and the old pointer goes with its TTL.
    m = await put(cache, FRANCE, "Paris, stored again")
    assert redis_sync.object("encoding", entry) == b"listpack"
    assert redis_sync.hget(entry, "v") is None
    served = await cache.lookup(m, threshold=None)
    assert served.entry is not None and decode(served.entry.payload) == "Paris, stored again"


async def test_an_earlier_layout_entry_is_hidden_by_a_namespace_invalidation(
    cache: LLMCache,
) -> None:
    m = await put_earlier(cache, FRANCE)
    await cache.invalidate(NS)  # every tenant: the namespace epoch moves
    assert (await cache.peek(m, threshold=None)).exact == "epoch"
    assert (await cache.lookup(m, threshold=THRESHOLD)).entry is None
    assert (await cache.lookup(manifest(PARAPHRASE), threshold=THRESHOLD)).entry is None


async def test_listings_read_prompts_from_the_bodies(
    cache: LLMCache, redis_sync: redis.Redis
) -> None:
    huge = "Describe " + "the long prompt " * (PROMPT_PREFIX // 8)  # past the first read
    await put(cache, FRANCE)
    await put(cache, huge)
    await put_earlier(cache, "bake bread at home")
    await put(cache, "a question to another model", model="other")
    listed, scanned, _ = await list_entries(cache.redis, NS, limit=10)
    assert scanned == 4
    assert sorted(e.prompt for e in listed) == sorted(
        [FRANCE, huge, "bake bread at home", "a question to another model"]
    )
    for e in listed:
        space = Space(e.namespace, e.tenant_token)
        parts = [space.entry_key(e.entry_id), space.body_key(e.entry_id)]
        measured = sum(int(redis_sync.memory_usage(k) or 0) for k in parts)
        assert e.size_bytes == measured  # the hash and its body
    # explain's scope summary: a sample prompt of another scope, read from its body.
    explained = await explain(
        cache, manifest("another question"), function_id="f", embedder=None, threshold=None
    )
    assert explained.scope_entries == 3
    [other] = explained.other_scopes
    assert (other.entries, other.sample_prompt) == (1, "a question to another model")


async def test_a_near_miss_records_the_prompt_read_from_the_body(
    make_cache: MakeCache, redis_sync: redis.Redis
) -> None:
    cache = make_cache(
        embedder=bow_embedder(), index="vectorset", budgets=GENEROUS, near_miss_sample=1.0
    )
    await cache.connect()
    m = await put(cache, FRANCE)
    spain = manifest("the capital of Spain?")
    [near] = (await cache.peek(spain, threshold=None)).neighbours
    # Just below the threshold: the nearest entry is recorded, with its prompt.
    outcome = await cache.lookup(spain, threshold=near.similarity + 0.01)
    assert outcome.entry is None and outcome.similarity is not None
    [(_, record)] = redis_sync.xrange(cache.space(m).near_miss_key)
    assert record[b"nearest"] == FRANCE.encode() and record[b"entry"] == m.exact_digest.encode()


async def test_clear_deletes_the_bodies(cache: LLMCache, redis_sync: redis.Redis) -> None:
    await put(cache, FRANCE)
    await put(cache, FRANCE, tenant="globex")
    await put(cache, PARAPHRASE, tenant="globex")
    acme, globex = Space.of(NS, "acme"), Space.of(NS, "globex")
    assert len(keys_of(redis_sync, globex, "b")) == 2
    assert await cache.clear(NS, tenant="globex") >= 4  # two hashes, two bodies, ...
    assert not keys_of(redis_sync, globex, "b") and not keys_of(redis_sync, globex, "e")
    assert len(keys_of(redis_sync, acme, "b")) == 1  # another tenant's are kept
    await cache.clear(NS)
    assert not list(redis_sync.scan_iter(match=f"ck:{{{NS}:*"))
