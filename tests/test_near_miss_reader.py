"""Reading the sampled records (near misses, rejections, hits) back, on a real Redis."""

from __future__ import annotations

import redis.asyncio as aredis

from cachekit import _schema as F
from cachekit._layout import Space
from cachekit._tune_near_misses import read_near_misses


def _record(prompt: str, kind: str) -> dict[str, str]:
    return {
        F.NM_PROMPT: prompt,
        F.NM_NEAREST: "nearest",
        F.NM_SIMILARITY: "0.9",
        F.NM_THRESHOLD: "0.92",
        F.NM_MODEL: "gpt-4o-mini",
        F.NM_REASON: "number" if kind == "rejected" else "",
        F.NM_KIND: kind,
        F.NM_ENTRY: "e1",
    }


async def test_a_kind_filter_reaches_past_a_burst_of_other_records(redis_url: str) -> None:
    # Five rejections, then 450 near misses: the newest `limit` entries are all near
    # misses, and the review queue's "rejected" filter must still find the five.
    client = aredis.Redis.from_url(redis_url)
    key = Space("nmreader", "_").near_miss_key
    try:
        for i in range(5):
            await client.xadd(key, _record(f"rejected {i}", "rejected"))
        for i in range(450):
            await client.xadd(key, _record(f"near {i}", "near"))
        got = await read_near_misses(
            client, "nmreader", tenant_token="_", limit=10, kinds=("rejected",)
        )
        assert [r.prompt for r in got] == [f"rejected {i}" for i in range(4, -1, -1)]
        assert {r.reason for r in got} == {"number"}
        # the limit still holds, newest first, and other kinds are not dropped by paging
        got = await read_near_misses(
            client, "nmreader", tenant_token="_", limit=2, kinds=("rejected",)
        )
        assert [r.prompt for r in got] == ["rejected 4", "rejected 3"]
        both = await read_near_misses(client, "nmreader", tenant_token="_", limit=1000)
        assert len(both) == 455
        assert both[0].prompt == "near 449" and both[-1].prompt == "rejected 0"
    finally:
        await client.delete(key)
        await client.aclose()
