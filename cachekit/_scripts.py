"""The Lua scripts of the exact layer and the store, declared once.

Every script touches only keys of one tenant+namespace hash slot (plus, on one node, the
namespace epoch), so each runs on one node of a cluster. ``*_SHA`` are for EVALSHA.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from string import Template
from typing import Any

from redis import exceptions as redis_errors

from . import _schema as F
from ._body import BODY_HEAD_MAX
from ._layout import BODY, ENTRY, EXACT

__all__ = [
    "BUMP_LUA",
    "COUNTER_ONLY_LUA",
    "COUNTER_ONLY_SHA",
    "LOOKUP_LUA",
    "LOOKUP_SHA",
    "READ_ONLY",
    "STORE_LUA",
    "STORE_SHA",
    "run_script",
]

#: The last ARGV of the lookup and counter scripts that makes them read-only: no hit or
#: token counted, no pointer cleaned up, no missing counter created (``explain``).
READ_ONLY = "r"


def _lua(template: str) -> str:
    """Fill in the key kinds and field names (``$name``) from ``_layout``/``_schema``."""
    return Template(template).substitute(
        x=EXACT,
        e=ENTRY,
        b=BODY,
        head_max=BODY_HEAD_MAX,
        n_fields=len(F.LOOKUP_FIELDS),
        fields=", ".join(f"'{name}'" for name in F.LOOKUP_FIELDS),
        hits=F.HITS,
        exact=F.EXACT_HITS,
        miss=F.MISSES,
        since=F.SINCE,
        ro=READ_ONLY,
        **{f"i_{name}": str(i + 1) for i, name in enumerate(F.LOOKUP_FIELDS)},
    )


# One round trip for an exact hit: read the namespace epoch and the tenant generation,
# read the entry of the request's own digest (the entry id *is* the exact digest) with its
# body, count the hit. Only when that entry is not of this generation and epoch is the
# exact alias of an earlier semantic hit (``x:<gen>:<digest>`` -> another entry id)
# followed. An entry whose body is gone (TTL, LRU: Redis may evict the body and the hash
# one without the other, or a flush) is a miss: its hash, or the alias to it, is deleted.
# An entry stored under an older namespace epoch is not served. Keys built in the script
# share KEYS[1]'s hash slot; the epoch key (KEYS[3]) lives in another slot, so cluster
# mode reads it separately and passes it as ARGV[4] instead.
#
# Read-only (ARGV[5] == READ_ONLY, for ``explain``): the same reads and verdict, nothing
# written; a missing counter reads as 0, and the reply carries the entry's fields
# whatever the verdict: {gen, epoch, eid, status, v, c, p, m, h}. A hit's reply carries
# what serving it saved and the entry's PTTL: {gen, epoch, eid, 'hit', v, c, p, m, ti, to,
# te, pttl}. ``v`` and ``p`` are the payload and prompt, from the body (split by the rule
# of ``_body.split_body``) or, for an entry of the earlier layout, from its hash.
COUNTER_LUA = """
local function counter(key, ro)
  -- pcall: a key of another type (written by something else) is reported, not raised
  local v = redis.pcall('GET', key)
  if type(v) == 'table' then return false end
  if v then
    if string.match(v, '^%d+$$') then return v end
    return false
  end
  if ro then return '0' end
  local t = redis.call('TIME')
  redis.call('SET', key, t[1] .. string.format('%06d', tonumber(t[2])), 'NX')
  return redis.call('GET', key)
end
"""
# A missing generation or epoch (never set, or evicted under allkeys-lru) starts at the
# current time in microseconds, never at 0: entries of a generation that was invalidated
# and then lost its counter can never become reachable again. A counter holding anything
# but digits was not written by cachekit: the script answers {'!', which} and the call is
# an uncached miss (nothing is stored under a generation nobody can trust).
#
# Foreign data in the other keys is a miss too, never an error: commands on keys that may
# hold another type run under pcall. An entry whose generation field is not the current
# generation is never served: it was computed before an invalidation.
LOOKUP_LUA = _lua(
    COUNTER_LUA
    + """
local ro = ARGV[5] == '$ro'
local epoch = ARGV[4]
if KEYS[3] then epoch = counter(KEYS[3], ro) end
if not epoch then return {'!', 'epoch'} end
local gen = counter(KEYS[1], ro)
if not gen then return {'!', 'gen'} end
local prefix = ARGV[1]
-- The hash of entry `eid` with its payload and prompt filled in from its body (an entry
-- of the earlier layout has them in the hash). f is false for a key of another type;
-- f.bad marks a body cachekit did not write; a missing body leaves the payload empty.
local function read(eid)
  local ekey = prefix .. '$e:' .. eid
  local f = redis.pcall('HMGET', ekey, $fields)
  if f['err'] then return ekey, false end
  if f[$i_v] then return ekey, f end
  local present = false
  for i = 1, $n_fields do present = present or f[i] end
  if not present then return ekey, f end
  local body = redis.pcall('GET', prefix .. '$b:' .. eid)
  if type(body) == 'table' then return ekey, false end
  if body then
    local plen, hlen, at = string.match(string.sub(body, 1, $head_max), '^(%d+),(%d+)\\n()')
    if at and at + tonumber(plen) + tonumber(hlen) <= #body then
      plen, hlen = tonumber(plen), tonumber(hlen)
      f[$i_p] = string.sub(body, at, at + plen - 1)
      f[$i_v] = string.sub(body, at + plen + hlen)
    else
      f.bad = true
    end
  end
  return ekey, f
end
local eid, xkey = ARGV[2], false
local ekey, f = read(eid)
if not (f and f[$i_v] and f[$i_g] == gen and f[$i_ne] == epoch) then
  -- not this generation's own answer: the alias a semantic hit left, if any
  local alias = prefix .. '$x:' .. gen .. ':' .. ARGV[2]
  local target = redis.pcall('GET', alias)
  if type(target) == 'table' then return {gen, epoch, '', 'foreign'} end
  if target then
    eid, xkey = target, alias
    ekey, f = read(eid)
  elseif f and f[$i_g] ~= gen then
    return {gen, epoch}
  end
end
if not f then return {gen, epoch, eid, 'foreign'} end
local status = false
if f.bad or (f[$i_v] and not tonumber(f[$i_c])) then
  -- written by something else or truncated: drop it rather than serve it
  if not ro then
    redis.call('DEL', ekey, prefix .. '$b:' .. eid)
    if xkey then redis.call('DEL', xkey) end
  end
  status = 'corrupt'
elseif not f[$i_v] then
  if not ro then redis.call('DEL', xkey or ekey) end
  status = 'dangling'
elseif f[$i_ne] ~= epoch then status = 'epoch'
elseif f[$i_g] ~= gen then status = 'generation'
elseif ARGV[3] ~= '' then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
  if now - tonumber(f[$i_c]) > tonumber(ARGV[3]) then status = 'stale' end
end
if ro then
  return {gen, epoch, eid, status or 'hit', f[$i_v] or '', f[$i_c] or '', f[$i_p] or '',
          f[$i_m] or '', redis.pcall('HGET', ekey, '$hits') or ''}
end
if status then return {gen, epoch, eid, status} end
redis.pcall('HINCRBY', ekey, '$hits', 1)
redis.pcall('HINCRBY', KEYS[2], '$exact', 1)
if f[$i_m] then
  local kind = f[$i_te] and 'e' or 't'
  local tin, tout = tonumber(f[$i_ti]), tonumber(f[$i_to])
  if tin and tin == math.floor(tin) then
    redis.pcall('HINCRBY', KEYS[2], kind .. 'in:' .. f[$i_m], tin)
  end
  if tout and tout == math.floor(tout) then
    redis.pcall('HINCRBY', KEYS[2], kind .. 'out:' .. f[$i_m], tout)
  end
end
return {gen, epoch, eid, 'hit', f[$i_v], f[$i_c], f[$i_p], f[$i_m] or '', f[$i_ti] or '',
        f[$i_to] or '', f[$i_te] or '', redis.call('PTTL', ekey)}
"""
)
# invalidate: a foreign string in the counter is replaced by a fresh clock-seeded one (that
# is what invalidating means); a key of another type is reported, never deleted.
BUMP_LUA = """
local v = redis.pcall('GET', KEYS[1])
if type(v) == 'table' then return redis.error_reply('WRONGTYPE ' .. KEYS[1]) end
if v and string.match(v, '^%d+$') then return redis.call('INCR', KEYS[1]) end
local t = redis.call('TIME')
local seeded = t[1] .. string.format('%06d', tonumber(t[2]))
if v and tonumber(v) and tonumber(v) >= tonumber(seeded) then
  seeded = string.format('%d', tonumber(v) + 1)
end
redis.call('SET', KEYS[1], seeded)
return tonumber(seeded)
"""
# ARGV[1] == READ_ONLY: a missing counter reads as 0 and is not created.
COUNTER_ONLY_LUA = _lua(
    COUNTER_LUA
    + """
return counter(KEYS[1], ARGV[1] == '$ro')
"""
)
# The store after a miss: written only if the tenant generation (and, on one node, the
# namespace epoch) is still the one the lookup saw. A call that was in flight while
# `invalidate` ran must not overwrite the entry of the new generation with an answer of
# the old one. The miss is counted either way. The entry hash and its body get the same
# TTL; the request's own alias (a semantic hit's, see LOOKUP_LUA) gives way to its own
# answer, as the pointer it replaces used to be overwritten.
# KEYS: gen, entry, body, alias, stats[, epoch]; ARGV: gen, epoch, ttl|'', body, now, fields...
STORE_LUA = _lua("""
redis.pcall('HINCRBY', KEYS[5], '$miss', 1)
redis.pcall('HSETNX', KEYS[5], '$since', ARGV[5])
if redis.pcall('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if KEYS[6] and redis.pcall('GET', KEYS[6]) ~= ARGV[2] then return 0 end
redis.call('DEL', KEYS[2], KEYS[4])
redis.call('HSET', KEYS[2], unpack(ARGV, 6))
if ARGV[3] ~= '' then
  redis.call('EXPIRE', KEYS[2], ARGV[3])
  redis.call('SET', KEYS[3], ARGV[4], 'EX', ARGV[3])
else
  redis.call('SET', KEYS[3], ARGV[4])
end
return 1
""")
LOOKUP_SHA = hashlib.sha1(LOOKUP_LUA.encode()).hexdigest()
COUNTER_ONLY_SHA = hashlib.sha1(COUNTER_ONLY_LUA.encode()).hexdigest()
STORE_SHA = hashlib.sha1(STORE_LUA.encode()).hexdigest()


async def run_script(
    client: Any, sha: str, script: str, keys: list[str], args: Sequence[Any]
) -> Any:
    """``EVALSHA``; on NOSCRIPT (first use on this server, or it restarted) load it once."""
    try:
        return await client.evalsha(sha, len(keys), *keys, *args)
    except redis_errors.NoScriptError:
        await client.script_load(script)
        return await client.evalsha(sha, len(keys), *keys, *args)
