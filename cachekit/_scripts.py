"""The Lua scripts of the exact layer and the store, declared once.

Every script touches only keys of one tenant+namespace hash slot (plus, on one node, the
namespace epoch), so each runs on one node of a cluster. ``*_SHA`` are for EVALSHA.
"""

from __future__ import annotations

import hashlib

__all__ = ["BUMP_LUA", "COUNTER_ONLY_LUA", "LOOKUP_LUA", "LOOKUP_SHA", "STORE_LUA", "STORE_SHA"]

# One round trip for an exact hit: read the namespace epoch and the tenant generation,
# follow the exact pointer, read the entry, count the hit. A pointer whose entry is gone
# (TTL, LRU, flush) is deleted and reported as a miss; an entry stored under an older
# namespace epoch is not served. Keys built in the script share KEYS[1]'s hash slot; the
# epoch key (KEYS[3]) lives in another slot, so cluster mode reads it separately and
# passes it as ARGV[4] instead.
COUNTER_LUA = """
local function counter(key)
  -- pcall: a key of another type (written by something else) is reported, not raised
  local v = redis.pcall('GET', key)
  if type(v) == 'table' then return false end
  if v then
    if string.match(v, '^%d+$') then return v end
    return false
  end
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
LOOKUP_LUA = (
    COUNTER_LUA
    + """
local epoch = ARGV[4]
if KEYS[3] then epoch = counter(KEYS[3]) end
if not epoch then return {'!', 'epoch'} end
local gen = counter(KEYS[1])
if not gen then return {'!', 'gen'} end
local prefix = ARGV[1]
local xkey = prefix .. 'x:' .. gen .. ':' .. ARGV[2]
local eid = redis.pcall('GET', xkey)
if type(eid) == 'table' then return {gen, epoch, '', 'foreign'} end
if not eid then return {gen, epoch} end
local ekey = prefix .. 'e:' .. eid
local f = redis.pcall('HMGET', ekey, 'v', 'c', 'p', 'ne', 'm', 'ti', 'to', 'te', 'g')
if f['err'] then return {gen, epoch, eid, 'foreign'} end
if not f[1] then
  redis.call('DEL', xkey)
  return {gen, epoch, eid, 'dangling'}
end
local created = tonumber(f[2])
if not created then
  -- written by something else or truncated: drop it rather than serve it
  redis.call('DEL', xkey, ekey)
  return {gen, epoch, eid, 'corrupt'}
end
if f[4] ~= epoch then return {gen, epoch, eid, 'epoch'} end
if f[9] ~= gen then return {gen, epoch, eid, 'generation'} end
if ARGV[3] ~= '' then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
  if now - created > tonumber(ARGV[3]) then return {gen, epoch, eid, 'stale'} end
end
redis.pcall('HINCRBY', ekey, 'h', 1)
redis.pcall('HINCRBY', KEYS[2], 'exact', 1)
if f[5] then
  local kind = f[8] and 'e' or 't'
  local tin, tout = tonumber(f[6]), tonumber(f[7])
  if tin and tin == math.floor(tin) then
    redis.pcall('HINCRBY', KEYS[2], kind .. 'in:' .. f[5], tin)
  end
  if tout and tout == math.floor(tout) then
    redis.pcall('HINCRBY', KEYS[2], kind .. 'out:' .. f[5], tout)
  end
end
return {gen, epoch, eid, 'hit', f[1], f[2], f[3]}
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
COUNTER_ONLY_LUA = (
    COUNTER_LUA
    + """
return counter(KEYS[1])
"""
)
# The store after a miss: written only if the tenant generation (and, on one node, the
# namespace epoch) is still the one the lookup saw. A call that was in flight while
# `invalidate` ran must not overwrite the entry of the new generation with an answer of
# the old one. The miss is counted either way.
# KEYS: gen, entry, exact, stats[, epoch]; ARGV: gen, epoch, ttl|'', entry id, now, fields...
STORE_LUA = """
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
LOOKUP_SHA = hashlib.sha1(LOOKUP_LUA.encode()).hexdigest()
STORE_SHA = hashlib.sha1(STORE_LUA.encode()).hexdigest()
