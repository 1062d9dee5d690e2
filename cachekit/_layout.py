"""Redis key names: one hash slot per tenant+namespace.

Every key of one (namespace, tenant) pair carries the hash tag ``{<namespace>:<tenant>}``
so a store is one MULTI on one node and Redis Cluster never sees CROSSSLOT. The tenant
part is an *encoded* token (see ``encode_tenant``), never the raw tenant text, so no
tenant id can forge another tenant's key with ``}``, ``:``, ``*`` or newlines.

    ck:{ns:T}:gen                   namespace generation (INCR on invalidate)
    ck:{ns:T}:x:<gen>:<digest>      exact key -> entry id
    ck:{ns:T}:e:<entry id>          entry hash (payload, prompt, model, usage, created, hits)
    ck:{ns:T}:<kind>:<gen>:<scope>  vector index data of one scope (vectorset / flat)
    ck:{ns:T}:lk:<gen>:<digest>     single-flight lock (redis-py Lock, with a lease)
    ck:{ns:T}:stats                 counters
    ck:{ns:T}:nearmiss              capped stream of near misses (opt-in, sampled)
    ckv:{ns:T}:<gen>:<entry id>     search-backend document (vector + scope TAG)
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass, field

__all__ = [
    "GLOBAL_TENANT",
    "META_KEY",
    "NAMESPACE_RE",
    "Space",
    "VectorScope",
    "encode_tenant",
    "namespace_tag_glob",
    "own_pattern",
]

#: Tenant used when a call has no tenant (single-tenant apps).
GLOBAL_TENANT = "_"
#: Namespaces are part of key names and hash tags: keep them to a safe alphabet.
NAMESPACE_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
#: Global metadata of the vector index (backend, dims, metric, embedder model).
META_KEY = "cachekit:index:meta"

_MAX_INLINE_TENANT = 48


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
    gen_key: str = field(init=False, repr=False, compare=False)
    stats_key: str = field(init=False, repr=False, compare=False)
    near_miss_key: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        tag = f"{{{self.namespace}:{self.tenant_token}}}"
        init = object.__setattr__  # frozen: fields are set once, here
        init(self, "tag", tag)
        init(self, "gen_key", f"ck:{tag}:gen")
        init(self, "stats_key", f"ck:{tag}:stats")
        init(self, "near_miss_key", f"ck:{tag}:nearmiss")

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
        return f"ck:{self.tag}:x:{generation}:{digest}"

    def entry_key(self, entry_id: str) -> str:
        return f"ck:{self.tag}:e:{entry_id}"

    def lock_key(self, generation: int, digest: str) -> str:
        return f"ck:{self.tag}:lk:{generation}:{digest}"

    def scope(self, generation: int, scope_digest: str) -> VectorScope:
        return VectorScope(self, generation, scope_digest)


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
        return f"ckv:{self.space.tag}:{self.generation}:{entry_id}"

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
