"""The review queue: sampled semantic hits, near misses and verifier rejections, each with
the cached answer, and the operator's labels (kept in Redis, per namespace and tenant).

Records come from the near-miss stream (``near_miss_sample=`` and ``review_sample=`` on
the cache). A label is stored with a copy of the pair it judges, so it outlives the
capped stream and the entry, and ``clear`` does not delete it (its key is ``ckl:``, not
``ck:``): an operator's judgement is not cache data. Exported as the labelled-pairs JSONL
that ``cachekit tune --pairs`` reads.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Final

from .. import _schema as F
from .._entry_texts import entry_payload
from .._layout import HIT_SAMPLE, NEAR_MISS, Space, key_pattern, parse_tag
from .._stats_report import tenant_label
from .._tune_near_misses import NearMiss, read_near_misses
from ._answer import answer_text
from ._scope import ScopeError, ViewScope

if TYPE_CHECKING:
    from ..cache import LLMCache

__all__ = [
    "LABELS",
    "Label",
    "ReviewItem",
    "export_labels",
    "labels_key",
    "parse_item_id",
    "put_label",
    "read_labels",
    "review_items",
]

#: The two labels an operator gives: the cached answer is right for the new prompt, or not.
LABELS: Final = ("same", "different")
_ITEM_ID_RE: Final = re.compile(
    r"^(?P<ns>[A-Za-z0-9_.\-]{1,64})/(?P<tok>_|b[A-Za-z0-9_-]{1,64}|h[0-9a-f]{64})"
    # Which stream (h: sampled hits, n: near misses and rejections), then the stream id:
    # two 64-bit numbers, of which 19 digits always fit (20 may not: a 400, not a 503).
    r"/(?P<sid>[hn]:[0-9]{1,19}-[0-9]{1,19})$"
)
#: Records read per (namespace, tenant) stream for one page.
_PER_STREAM: Final = 500


def labels_key(space: Space) -> str:
    """``ckl:{ns:T}:labels``: the same hash slot as the space, outside ``clear``'s ``ck:``."""
    return f"ckl:{space.tag}:labels"


@dataclass(frozen=True, slots=True)
class Label:
    """An operator's judgement of one pair, with the pair itself."""

    namespace: str
    tenant_token: str
    record_id: str
    label: str
    prompt: str
    nearest: str
    similarity: float
    threshold: float
    kind: str
    reason: str
    model: str
    labelled_at: float
    #: The request's scope digest ("" for records written before it was kept).
    scope: str = ""

    def pair(self) -> dict[str, Any]:
        """One line of the exported labelled-pairs file (``cachekit tune --pairs``)."""
        return {
            "text_a": self.prompt,
            "text_b": self.nearest,
            "label": 1 if self.label == "same" else 0,
            "similarity": self.similarity,
            "kind": self.kind,
            "reason": self.reason,
            "threshold": self.threshold,
            "model": self.model,
            "namespace": self.namespace,
            "tenant": tenant_label(self.tenant_token),
            "labelled_at": self.labelled_at,
        }


@dataclass(slots=True)
class ReviewItem:
    record: NearMiss
    answer: str | None = None
    label: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        r = self.record
        return f"{r.namespace}/{r.tenant_token}/{record_key(r)}"

    @property
    def tenant(self) -> str:
        return tenant_label(self.record.tenant_token)


def record_key(record: NearMiss) -> str:
    """``h:<stream id>`` (a sampled hit) or ``n:<stream id>``: ids are per stream."""
    return f"{'h' if record.kind == 'hit' else 'n'}:{record.id}"


def parse_item_id(item_id: str) -> tuple[str, str, str]:
    """``<namespace>/<tenant token>/<h|n>:<stream id>`` -> (namespace, token, record key);
    ScopeError if malformed."""
    match = _ITEM_ID_RE.fullmatch(item_id)
    if match is None:
        raise ScopeError(f"not a review item id: {item_id[:120]!r}")
    return match["ns"], match["tok"], match["sid"]


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


async def record_spaces(cache: LLMCache, scope: ViewScope) -> list[tuple[str, str]]:
    """The (namespace, tenant token) pairs in ``scope`` with sampled records."""
    if scope.namespace is not None and scope.tenant_token is not None:
        return [(scope.namespace, scope.tenant_token)]
    found: set[tuple[str, str]] = set()
    for suffix in (NEAR_MISS, HIT_SAMPLE):
        pattern = key_pattern(suffix, scope.namespace, scope.tenant_token)
        async for raw in cache.redis.scan_iter(match=pattern, count=1000):
            parsed = parse_tag(_text(raw))
            if parsed is not None and scope.allows(parsed[0], parsed[1]):
                found.add((parsed[0], parsed[1]))
    return sorted(found)


async def review_items(
    cache: LLMCache,
    scope: ViewScope,
    *,
    kinds: Sequence[str] = F.RECORD_KINDS,
    unlabelled_only: bool = False,
    limit: int = 100,
) -> list[ReviewItem]:
    """The newest records in ``scope`` (run on the cache's loop: ``cache.run``), each with
    its cached answer (None once the entry is gone) and its label, if any."""
    items: list[ReviewItem] = []
    for namespace, token in await record_spaces(cache, scope):
        records = await read_near_misses(
            cache.redis, namespace, tenant_token=token, limit=_PER_STREAM, kinds=kinds
        )
        labels = await read_labels(cache, namespace, token)
        for record in records:
            if not scope.allows(record.namespace, record.tenant_token):
                continue  # defence in depth: a stream of another space never shows here
            label = labels.get(record_key(record))
            if unlabelled_only and label is not None:
                continue
            items.append(ReviewItem(record, label=None if label is None else label.label))
    items.sort(key=lambda i: _stream_order(i.record.id), reverse=True)
    items = items[:limit]
    await _attach_answers(cache, items)
    return items


def _stream_order(stream_id: str) -> tuple[int, int]:
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)


async def _attach_answers(cache: LLMCache, items: Iterable[ReviewItem]) -> None:
    wanted = [i for i in items if i.record.entry_id]
    if not wanted:
        return
    # A review must not keep an entry from being evicted: reads leave its LRU clock alone.
    async with cache.reader() as client:
        for item in wanted:  # one read each: the entries live in many slots on a cluster
            space = Space(item.record.namespace, item.record.tenant_token)
            item.answer = answer_text(await entry_payload(client, space, item.record.entry_id))


async def read_labels(cache: LLMCache, namespace: str, tenant_token: str) -> dict[str, Label]:
    """The labels of one (namespace, tenant): record id -> label."""
    raw = await cache.redis.hgetall(labels_key(Space(namespace, tenant_token)))
    out: dict[str, Label] = {}
    for key, value in (raw or {}).items():
        try:
            data = json.loads(_text(value))
            out[_text(key)] = Label(**data)
        except (ValueError, TypeError):
            continue  # not written by this module: skipped, not fatal
    return out


async def put_label(cache: LLMCache, scope: ViewScope, item_id: str, label: str) -> Label:
    """Label one record; raises ScopeError when the record is outside ``scope`` (403),
    unknown (404), or the label is not one of :data:`LABELS`."""
    if label not in LABELS:
        raise ScopeError(f"label must be one of {', '.join(LABELS)}, got {label[:40]!r}")
    namespace, token, record = parse_item_id(item_id)
    stream, _, stream_id = record.partition(":")
    if not scope.allows(namespace, token):
        raise ScopeError("that review item belongs to a namespace or tenant outside this view", 403)
    space = Space(namespace, token)
    key = space.hit_sample_key if stream == "h" else space.near_miss_key
    found = await cache.redis.xrange(key, stream_id, stream_id, count=1)
    existing = (await read_labels(cache, namespace, token)).get(record)
    if not found:
        if existing is None:
            raise ScopeError(f"no review item {item_id!r} (trimmed from the stream?)", 404)
        # Relabelling a pair whose record has left the stream: the label kept a copy.
        fields: dict[str, Any] = {
            F.NM_PROMPT: existing.prompt,
            F.NM_NEAREST: existing.nearest,
            F.NM_SIMILARITY: existing.similarity,
            F.NM_THRESHOLD: existing.threshold,
            F.NM_KIND: existing.kind,
            F.NM_REASON: existing.reason,
            F.NM_MODEL: existing.model,
        }
    else:
        fields = {_text(k): _text(v) for k, v in (found[0][1] or {}).items()}
    reason = str(fields.get(F.NM_REASON, ""))
    made = Label(
        namespace=namespace,
        tenant_token=token,
        record_id=record,
        label=label,
        prompt=str(fields.get(F.NM_PROMPT, "")),
        nearest=str(fields.get(F.NM_NEAREST, "")),
        similarity=float(fields.get(F.NM_SIMILARITY, "nan")),
        threshold=float(fields.get(F.NM_THRESHOLD, "nan")),
        kind=str(fields.get(F.NM_KIND) or ("rejected" if reason else "near")),
        reason=reason,
        model=str(fields.get(F.NM_MODEL, "")),
        labelled_at=time.time(),
        scope=str(fields.get(F.NM_SCOPE, "") or (existing.scope if existing else "")),
    )
    await cache.redis.hset(labels_key(space), record, json.dumps(asdict(made)))
    await _as_evidence(cache, made, existing)
    return made


async def _as_evidence(cache: LLMCache, made: Label, before: Label | None) -> None:
    """With adaptive thresholds on, a label is a check an operator made: it counts in the
    scope's evidence (a relabel moves its count; the same label twice counts once)."""
    store = cache.evidence
    if store is None or not made.scope or not math.isfinite(made.similarity):
        return
    if before is not None and before.label == made.label:
        return
    from .._adaptive_state import evidence_key
    from ..adaptive import Evidence

    key = evidence_key(made.namespace, made.scope, store.settings.bin_width)
    index = Evidence(store.settings.bin_width).bin_of(made.similarity)
    if before is not None and before.scope == made.scope:
        await cache.redis.hincrby(key, Evidence.field(index, before.label == "same"), -1)
    await store.add(cache.redis, key, made.similarity, made.label == "same")


async def all_labels(cache: LLMCache, scope: ViewScope) -> list[Label]:
    """Every label in ``scope``, oldest first."""
    out: list[Label] = []
    if scope.namespace is not None and scope.tenant_token is not None:
        spaces = [(scope.namespace, scope.tenant_token)]
    else:
        pattern = f"ckl:{{{scope.namespace or '*'}:{scope.tenant_token or '*'}}}:labels"
        spaces = []
        async for raw in cache.redis.scan_iter(match=pattern, count=1000):
            name = _text(raw)
            parsed = parse_tag("ck:" + name[4:]) if name.startswith("ckl:") else None
            if parsed is not None and scope.allows(parsed[0], parsed[1]):
                spaces.append((parsed[0], parsed[1]))
    for namespace, token in sorted(set(spaces)):
        out.extend((await read_labels(cache, namespace, token)).values())
    out.sort(key=lambda lab: lab.labelled_at)
    return out


def export_labels(labels: Iterable[Label]) -> str:
    """The labels as JSONL labelled pairs (``text_a`` new prompt, ``text_b`` cached one)."""
    return "".join(json.dumps(lab.pair(), ensure_ascii=False) + "\n" for lab in labels)


async def sampled_records(cache: LLMCache, scope: ViewScope) -> list[NearMiss]:
    """Every sampled record in ``scope`` (hits, near misses, rejections), newest first
    per stream: what the quality page's histogram counts."""
    out: list[NearMiss] = []
    for namespace, token in await record_spaces(cache, scope):
        out.extend(
            await read_near_misses(
                cache.redis, namespace, tenant_token=token, limit=2000, kinds=F.RECORD_KINDS
            )
        )
    return [r for r in out if scope.allows(r.namespace, r.tenant_token)]
