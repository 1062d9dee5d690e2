"""Redis key names: one hash slot per tenant+namespace.

Every key of one (namespace, tenant) pair carries the hash tag ``{<namespace>:<tenant>}``
so a store is one MULTI on one node and Redis Cluster never sees CROSSSLOT. The tenant
part is an *encoded* token (see ``encode_tenant``), never the raw tenant text, so no
tenant id can forge another tenant's key with ``}``, ``:``, ``*`` or newlines.

    ck:{ns}:epoch                   namespace epoch (INCR on invalidate of every tenant)
    ck:{ns:T}:gen                   tenant generation (INCR on invalidate)
    ck:{ns:T}:e:<entry id>          entry hash (model, usage, created, hits, generation)
    ck:{ns:T}:b:<entry id>          entry body (prompt, earlier turns, payload), same TTL
    ck:{ns:T}:x:<gen>:<digest>      exact alias of a semantic hit -> another entry id
    ck:{ns:T}:<kind>:<gen>:<scope>  vector index data of one scope (vectorset / flat)
    ck:{ns:T}:lk:<gen>:<digest>     single-flight lock (redis-py Lock, with a lease)
    ck:{ns:T}:stats                 counters
    ck:{ns:T}:nearmiss              capped stream of near misses (opt-in, sampled)
    ck:{ns:T}:hitsample             capped stream of semantic hits (opt-in, sampled)
    ck:{ns:T}:history               the console's snapshots of the stats counters
    ckv:{ns:T}:<gen>:<entry id>     search-backend document (vector + scope TAG)

The entry id is the exact digest of the request that stored it, so an exact lookup reads
``e:<digest>`` directly and needs no pointer; only a semantic hit, which serves another
request's entry, leaves an alias ``x:`` for its own digest. The entry hash keeps small
fields only, so Redis stores it as a listpack (``hash-max-listpack-value`` is 64 B); the
texts of any length live in the body string beside it. Entries written before the body
had a key of its own (payload ``v`` and prompt ``p`` in the hash, an ``x:`` pointer to
every entry) are still read.

The fields inside the hashes, and the body's framing, are declared in ``_schema``.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass, field
from functools import lru_cache

__all__ = [
    "BODY",
    "DOC_PREFIX",
    "ENTRY",
    "EXACT",
    "GLOBAL_TENANT",
    "HIT_SAMPLE",
    "META_KEY",
    "NAMESPACE_RE",
    "NEAR_MISS",
    "STATS",
    "TENANT_TOKEN_RE",
    "Space",
    "VectorScope",
    "encode_tenant",
    "entry_pattern",
    "epoch_key",
    "key_pattern",
    "namespace_tag_glob",
    "own_pattern",
    "parse_entry_key",
    "parse_tag",
    "space_of",
]

#: Tenant used when a call has no tenant (single-tenant apps).
GLOBAL_TENANT = "_"
#: Namespaces are part of key names and hash tags: keep them to a safe alphabet.
NAMESPACE_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
#: What :func:`encode_tenant` makes: ``_`` (no tenant), ``b<base64>`` or ``h<sha-256 hex>``.
TENANT_TOKEN_RE = re.compile(r"^(?:_|b[A-Za-z0-9_-]{1,64}|h[0-9a-f]{64})$")
#: Global metadata of the vector index (backend, dims, metric, embedder model).
META_KEY = "cachekit:index:meta"

#: Key kinds of a space that the Lua scripts build themselves (``<prefix><kind>:...``).
EXACT = "x"
ENTRY = "e"
BODY = "b"
#: Prefix of the search backend's documents (the FT index watches it).
DOC_PREFIX = "ckv:"
#: Suffixes of a space's counter hash and near-miss stream.
STATS = "stats"
NEAR_MISS = "nearmiss"
#: Suffix of the sampled semantic hits' stream (``review_sample=``), kept apart from the
#: near misses so that hits never push out the misses ``tune`` reads.
HIT_SAMPLE = "hitsample"

_MAX_INLINE_TENANT = 48


def epoch_key(namespace: str) -> str:
    """The namespace epoch: its own hash slot (``{ns}``), shared by every tenant."""
    return f"ck:{{{namespace}}}:epoch"


def key_pattern(suffix: str, namespace: str | None = None, tenant_token: str | None = None) -> str:
    """SCAN pattern of one kind of key (``STATS``, ``ENTRY + ":*"``, ...) of every space
    that matches; None matches every namespace / tenant (neither holds glob characters)."""
    return f"ck:{{{namespace or '*'}:{tenant_token or '*'}}}:{suffix}"


def entry_pattern(namespace: str | None = None, tenant_token: str | None = None) -> str:
    """SCAN pattern of entry hashes; None matches every namespace / tenant."""
    return key_pattern(f"{ENTRY}:*", namespace, tenant_token)


def parse_tag(key: str) -> tuple[str, str, str] | None:
    """``ck:{ns:T}:<rest>`` -> (namespace, tenant token, rest); None for other keys."""
    if not key.startswith("ck:{") or "}:" not in key:
        return None
    tag, _, rest = key[4:].partition("}:")
    namespace, sep, token = tag.partition(":")
    return (namespace, token, rest) if sep else None


def parse_entry_key(key: str) -> tuple[str, str, str] | None:
    """``ck:{ns:T}:e:<id>`` -> (namespace, tenant token, entry id); None for other keys."""
    parsed = parse_tag(key)
    if parsed is None or not parsed[2].startswith(f"{ENTRY}:") or len(parsed[2]) <= 2:
        return None
    return parsed[0], parsed[1], parsed[2][len(ENTRY) + 1 :]


def encode_tenant(tenant: str | None) -> str:
    """Encode tenant text into a key-safe, injective token.

    Short ids become ``b`` + unpadded urlsafe base64 of their UTF-8 (alphabet
    ``A-Za-z0-9-_``, so no ``{}:*`` or whitespace can reach a key); long ids become ``h`` +
    SHA-256 hex. The prefixes keep the two forms from colliding; ``None`` is the global
    tenant ``_``, which no encoded id can equal.
    """
    if tenant is None:
        return GLOBAL_TENANT
    if not isinstance(tenant, str):
        raise TypeError(f"tenant must be str or None, not {type(tenant).__name__}")
    raw = tenant.encode("utf-8", "surrogatepass")
    if len(raw) <= _MAX_INLINE_TENANT:
        return "b" + base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")
    return "h" + hashlib.sha256(raw).hexdigest()


@dataclass(frozen=True, slots=True)
class Space:
    """The keys of one (namespace, tenant) pair; all share one cluster hash slot.

    The hash tag and the fixed keys are built once, at construction.
    """

    namespace: str
    tenant_token: str
    tag: str = field(init=False, repr=False, compare=False)
    #: What every ``ck:`` key of this space starts with (the Lua scripts extend it).
    prefix: str = field(init=False, repr=False, compare=False)
    gen_key: str = field(init=False, repr=False, compare=False)
    epoch_key: str = field(init=False, repr=False, compare=False)
    stats_key: str = field(init=False, repr=False, compare=False)
    near_miss_key: str = field(init=False, repr=False, compare=False)
    hit_sample_key: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        tag = f"{{{self.namespace}:{self.tenant_token}}}"
        init = object.__setattr__  # frozen: fields are set once, here
        init(self, "tag", tag)
        init(self, "prefix", f"ck:{tag}:")
        init(self, "gen_key", f"ck:{tag}:gen")
        init(self, "epoch_key", epoch_key(self.namespace))
        init(self, "stats_key", f"ck:{tag}:{STATS}")
        init(self, "near_miss_key", f"ck:{tag}:{NEAR_MISS}")
        init(self, "hit_sample_key", f"ck:{tag}:{HIT_SAMPLE}")

    @classmethod
    def of(cls, namespace: str, tenant: str | None) -> Space:
        """The space of a namespace and a tenant as the caller names it (encoded here)."""
        return cls(namespace, encode_tenant(tenant))

    @property
    def tag_glob(self) -> str:
        """The hash tag as a SCAN glob that matches it literally (``[``/``]`` escaped)."""
        return _glob_escape(self.tag)

    @property
    def patterns(self) -> tuple[str, ...]:
        """SCAN patterns of the cache's own keys in this space (``ck:{tag}:*``).

        Vector-index keys outside it come from the index registry
        (``cachekit._index.index_key_patterns``).
        """
        return (own_pattern(self.tag_glob),)

    def exact_key(self, generation: int, digest: str) -> str:
        return f"ck:{self.tag}:{EXACT}:{generation}:{digest}"

    def entry_key(self, entry_id: str) -> str:
        return f"ck:{self.tag}:{ENTRY}:{entry_id}"

    def body_key(self, entry_id: str) -> str:
        return f"ck:{self.tag}:{BODY}:{entry_id}"

    def entry_keys(self, entry_id: str) -> tuple[str, str]:
        """Both keys of one entry (its hash and its body): what deleting it deletes."""
        return self.entry_key(entry_id), self.body_key(entry_id)

    def lock_key(self, generation: int, digest: str) -> str:
        return f"ck:{self.tag}:lk:{generation}:{digest}"

    def scope(self, generation: int, scope_digest: str) -> VectorScope:
        return VectorScope(self, generation, scope_digest)


@lru_cache(maxsize=4096)
def space_of(namespace: str, tenant: str | None) -> Space:
    """:meth:`Space.of`, memoised (a Space is immutable): one call asks for its space
    several times (flight key, breaker, lookup), each a tenant encoding and six keys."""
    return Space.of(namespace, tenant)


@dataclass(frozen=True, slots=True)
class VectorScope:
    """Where the vectors of one (tenant, namespace, generation, scope) live."""

    space: Space
    generation: int
    scope_digest: str

    def key(self, kind: str) -> str:
        """Key of this scope's index data, e.g. ``key("vs")`` for the vector set."""
        return f"ck:{self.space.tag}:{kind}:{self.generation}:{self.scope_digest}"

    @property
    def tag_value(self) -> str:
        """A TAG-safe (hex) identifier of the whole scope, for search pre-filters."""
        ident = f"{self.space.namespace}\x00{self.space.tenant_token}\x00{self.generation}"
        ident += f"\x00{self.scope_digest}"
        return hashlib.blake2b(ident.encode(), digest_size=16).hexdigest()

    def doc_key(self, entry_id: str) -> str:
        """Search-backend document key of one entry (same hash slot as the entry)."""
        return f"{DOC_PREFIX}{self.space.tag}:{self.generation}:{entry_id}"

    def entry_key(self, entry_id: str) -> str:
        return self.space.entry_key(entry_id)


def namespace_tag_glob(namespace: str) -> str:
    """A SCAN glob for the hash tags of every tenant of ``namespace``.

    Namespaces are of a safe alphabet (:data:`NAMESPACE_RE`): nothing to escape.
    """
    return f"{{{namespace}:*}}"


def own_pattern(tag_glob: str) -> str:
    """The SCAN pattern of the cache's own keys (``ck:<tag>:*``) for a tag glob."""
    return f"ck:{tag_glob}:*"


def _glob_escape(text: str) -> str:
    return re.sub(r"([\\*?\[\]])", r"\\\1", text)
