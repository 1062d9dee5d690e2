"""``stats()`` and ``cachekit stats`` with keys cachekit did not write as it expects.

Someone else's list, string or set under a name that matches the stats pattern, or a
stats hash with garbage values, must be skipped and reported, never crash the report.
All keys are real Redis keys of the wrong type on the session server.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
import redis
from click.testing import CliRunner

from cachekit import LLMCache, cached_llm
from cachekit.__main__ import cli
from cachekit.stats import stats

GOOD = "ck:{support:_}:stats"


@pytest.fixture
def garbage(cache: LLMCache, redis_sync: redis.Redis) -> dict[str, str]:
    """One real stats row, plus wrong-type and malformed keys matching the pattern."""

    @cached_llm(namespace="support", cache=cache)
    def ask(prompt: str, model: str = "gpt-4o-mini") -> dict[str, Any]:
        return {
            "choices": [{"message": {"role": "assistant", "content": "ok"}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 20},
        }

    ask("hello")
    cache.drain_sync()
    redis_sync.rpush("ck:{alist:_}:stats", "a", "b")
    redis_sync.set("ck:{astring:_}:stats", "hello")
    redis_sync.sadd("ck:{aset:bYWNtZQ}:stats", "x")
    redis_sync.hset(
        "ck:{abc:_}:stats",
        mapping={"exact": "abc", "miss": "2", "since": "not-a-time", "tin:gpt-4o": "1.5"},
    )
    return {
        "ck:{alist:_}:stats": "list",
        "ck:{astring:_}:stats": "string",
        "ck:{aset:bYWNtZQ}:stats": "set",
        "ck:{abc:_}:stats": "exact",
    }


def test_stats_skips_and_reports_wrong_types_and_garbage(
    cache: LLMCache, garbage: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="cachekit"):
        report = cache.run_sync(stats, cache, timeout=10)
    assert any("stats skipped 4 key(s)" in r.getMessage() for r in caplog.records)
    by_ns = {r.namespace: r for r in report.rows}
    assert by_ns["support"].miss == 1  # the real row is intact
    skipped = {s.key: s.reason for s in report.skipped_keys}
    assert set(skipped) == set(garbage)
    for key, word in garbage.items():
        assert word in skipped[key], (key, skipped[key])
    # The malformed hash keeps its well-formed counters; only the bad fields are dropped.
    assert by_ns["abc"].miss == 2 and by_ns["abc"].exact == 0
    assert "alist" not in by_ns and "astring" not in by_ns and "aset" not in by_ns
    data = report.to_dict()
    assert {s["key"] for s in data["skipped_keys"]} == set(garbage)


def test_stats_of_one_namespace_and_tenant_with_a_wrong_type(
    cache: LLMCache, garbage: dict[str, str]
) -> None:
    report = cache.run_sync(lambda: stats(cache, "alist", tenant_token="_"), timeout=10)
    assert report.rows == []
    assert [s.key for s in report.skipped_keys] == ["ck:{alist:_}:stats"]
    clean = cache.run_sync(stats, cache, "support", timeout=10)
    assert clean.skipped_keys == [] and clean.rows[0].miss == 1


def test_cli_stats_warns_and_does_not_crash(redis_url: str, garbage: dict[str, str]) -> None:
    runner = CliRunner(env={"CACHEKIT_REDIS_URL": redis_url, "REDIS_URL": None})
    result = runner.invoke(cli, ["stats"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "support" in result.stdout
    assert "skipped 4 stats keys" in result.stderr
    for key in garbage:
        assert key in result.stderr
    as_json = runner.invoke(cli, ["stats", "--json"], catch_exceptions=False)
    assert as_json.exit_code == 0
    assert len(json.loads(as_json.stdout)["skipped_keys"]) == 4


def test_stats_on_a_cluster_skips_a_wrong_type() -> None:
    from redis.cluster import RedisCluster

    from cachekit._server import start_cluster

    with start_cluster(primaries=3) as nodes:
        client = RedisCluster(host="127.0.0.1", port=nodes[0].port)
        try:
            client.rpush("ck:{alist:_}:stats", "a")
            client.hset("ck:{fine:_}:stats", mapping={"miss": "3"})
            cache = LLMCache.from_url(f"redis+cluster://127.0.0.1:{nodes[0].port}")
            try:
                report = cache.run_sync(stats, cache, timeout=20)
            finally:
                cache.close()
        finally:
            client.close()
    assert [r.namespace for r in report.rows] == ["fine"] and report.rows[0].miss == 3
    assert [(s.key, "list" in s.reason) for s in report.skipped_keys] == [
        ("ck:{alist:_}:stats", True)
    ]
