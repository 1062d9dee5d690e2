"""Price sources: genai-prices when installed, the bundled table as fallback, the source
named in the stats report (real Redis, the real genai-prices package)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("genai_prices")

import genai_prices
import redis
from click.testing import CliRunner

from cachekit import CacheConfigError, LLMCache, Pricing
from cachekit.cli import cli
from cachekit.stats import stats

ROOT = Path(__file__).resolve().parents[1]
#: Known to genai-prices, not to the bundled table (which refuses to guess its price).
GENAI_ONLY = "claude-sonnet-4-5"
#: Known to the bundled table, not to genai-prices (embeddings).
BUNDLED_ONLY = "text-embedding-3-small"
UNKNOWN = "acme-llm-9000"


def library_usd(model: str, tokens_in: int, tokens_out: int, at: datetime | None = None) -> float:
    """What genai-prices itself charges for these tokens."""
    usage = genai_prices.Usage(input_tokens=tokens_in, output_tokens=tokens_out)
    return float(genai_prices.calc_price(usage, model, genai_request_timestamp=at).total_price)


# ------------------------------------------------------------------ choosing a source


def test_auto_uses_genai_prices_when_installed() -> None:
    pricing = Pricing.load()
    assert pricing.source == "genai-prices"
    found = pricing.match(GENAI_ONLY)
    assert found is not None and found.source == "genai-prices"
    # The same dollars genai-prices computes (tokens below any prompt-size tier).
    assert pricing.cost(GENAI_ONLY, 1000, 2000) == pytest.approx(
        library_usd(GENAI_ONLY, 1000, 2000)
    )
    assert pricing.cost("gpt-4o-mini", 1000, 2000) == pytest.approx(
        library_usd("gpt-4o-mini", 1000, 2000)
    )


def test_the_bundled_table_when_told_to() -> None:
    pricing = Pricing.load(source="bundled")
    assert pricing.source == "bundled"
    assert [s.name for s in pricing.sources] == ["bundled"]
    assert pricing.match(GENAI_ONLY) is None
    found = pricing.match("gpt-4o-mini-2024-07-18")
    assert found is not None and (found.name, found.source) == ("gpt-4o-mini", "bundled")


def test_the_bundled_table_prices_what_genai_prices_does_not_know() -> None:
    pricing = Pricing.load(source="genai-prices")
    assert [s.name for s in pricing.sources] == ["genai-prices", "bundled"]
    found = pricing.match(BUNDLED_ONLY)
    assert found is not None and found.source == "bundled"
    assert pricing.cost(BUNDLED_ONLY, 1_000_000, 0) == pytest.approx(0.02)


def test_a_model_unknown_to_both_is_unpriced() -> None:
    for source in ("auto", "bundled", "genai-prices"):
        pricing = Pricing.load(source=source)  # type: ignore[arg-type]
        assert pricing.match(UNKNOWN) is None
        assert pricing.cost(UNKNOWN, 1000, 1000) is None


def test_overrides_win_over_every_source() -> None:
    pricing = Pricing.load({"gpt-4o-mini": [1, 2], UNKNOWN: [3, 4]})
    assert [s.name for s in pricing.sources] == ["overrides", "genai-prices", "bundled"]
    mini, mine = pricing.match("gpt-4o-mini-2024-07-18"), pricing.match(UNKNOWN)
    assert mini is not None and (mini.source, mini.price.input) == ("overrides", 1.0)
    assert mine is not None and mine.usd(0, 1_000_000) == 4.0
    assert pricing.source == "genai-prices"  # overrides sit on top of the chosen source


def test_a_bad_source_names_the_choices() -> None:
    with pytest.raises(CacheConfigError, match="auto, bundled, genai-prices"):
        Pricing.load(source="litellm")  # type: ignore[arg-type]


def test_routing_prefixes_reach_genai_prices() -> None:
    pricing = Pricing.load(source="genai-prices")
    for routed in ("openai/gpt-4o-mini", "us.anthropic.claude-3-5-haiku-20241022-v1:0"):
        found = pricing.match(routed)
        assert found is not None and found.source == "genai-prices", routed


def test_genai_prices_picks_the_price_in_force_at_the_time() -> None:
    """A model whose price changed on a date: priced before and after that date as
    genai-prices prices it then (found in the installed data, not hard-coded)."""
    from genai_prices import types
    from genai_prices.data_snapshot import get_snapshot

    usage = genai_prices.Usage(input_tokens=1000, output_tokens=1000)
    for provider in get_snapshot().providers:
        for model in provider.models:
            if not isinstance(model.prices, list):
                continue
            starts = [
                c.constraint.start_date
                for c in model.prices
                if isinstance(c.constraint, types.StartDateConstraint)
            ]
            if len(model.prices) != 2 or len(starts) != 1:
                continue  # one date, no time-of-day prices: before and after are clear
            before = datetime.combine(date(starts[0].year - 1, 1, 1), time(12), tzinfo=UTC)
            after = datetime.combine(starts[0], time(12), tzinfo=UTC)
            try:
                old = genai_prices.calc_price(usage, model.id, genai_request_timestamp=before)
                new = genai_prices.calc_price(usage, model.id, genai_request_timestamp=after)
            except LookupError:
                continue  # not found without naming its provider
            if old.model is not model or old.total_price == new.total_price:
                continue
            pricing = Pricing.load(source="genai-prices")
            then = pricing.cost(model.id, 1000, 1000, at=before.timestamp())
            later = pricing.cost(model.id, 1000, 1000, at=after.timestamp())
            assert then == pytest.approx(float(old.total_price))
            assert later == pytest.approx(float(new.total_price))
            assert then != later
            return
    pytest.fail("no model of the installed genai-prices data changed price on a date")


def test_genai_prices_lookups_open_no_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a price lookup tried the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    pricing = Pricing.load(source="genai-prices")
    for model in ("gpt-4o-mini", GENAI_ONLY, "gemini-1.5-pro", UNKNOWN, BUNDLED_ONLY):
        pricing.match(model)
        pricing.match(model, at=datetime(2025, 1, 1, tzinfo=UTC).timestamp())


# ------------------------------------------------------------------ the bundled table


@pytest.mark.parametrize(
    ("model", "price"),
    [
        # GPT-4 Turbo's previews, not GPT-4: a "-1106" snapshot suffix used to price them
        # as gpt-4 (3x too much).
        ("gpt-4-1106-preview", (10.0, 30.0)),
        ("gpt-4-0125-preview", (10.0, 30.0)),
        # Older gpt-3.5-turbo snapshots kept their own, higher prices.
        ("gpt-3.5-turbo-0613", (1.5, 2.0)),
        ("gpt-3.5-turbo-1106", (1.0, 2.0)),
    ],
)
def test_bundled_snapshots_with_their_own_price(model: str, price: tuple[float, float]) -> None:
    found = Pricing.load(source="bundled").lookup(model)
    assert found is not None and (found[1].input, found[1].output) == price
    # genai-prices agrees.
    ours = Pricing.load(source="genai-prices").lookup(model)
    assert ours is not None and (ours[1].input, ours[1].output) == pytest.approx(price)


# ------------------------------------------------------------------ the report


def _seed(r: redis.Redis) -> None:
    """Savings counters of three models: one per source, one unknown to both."""
    r.hset(
        "ck:{prices:_}:stats",
        mapping={
            "exact": 3,
            "miss": 3,
            f"tin:{GENAI_ONLY}": 1000,
            f"tout:{GENAI_ONLY}": 2000,
            f"tin:{BUNDLED_ONLY}": 1_000_000,
            f"tout:{BUNDLED_ONLY}": 0,
            f"tin:{UNKNOWN}": 50,
            f"tout:{UNKNOWN}": 50,
        },
    )


def test_the_report_names_the_source_of_each_model(
    cache: LLMCache, redis_sync: redis.Redis
) -> None:
    _seed(redis_sync)
    report = cache.run_sync(stats, cache, "prices", timeout=10)
    [row] = report.rows
    assert report.pricing_source == "genai-prices"
    assert row.priced_by == {GENAI_ONLY: "genai-prices", BUNDLED_ONLY: "bundled"}
    assert row.unpriced_models == {UNKNOWN}
    assert row.usd_saved == pytest.approx(library_usd(GENAI_ONLY, 1000, 2000) + 0.02)
    assert report.totals.priced_by == row.priced_by
    data = report.to_dict()
    assert data["pricing_source"] == "genai-prices"
    assert data["rows"][0]["priced_by"] == {BUNDLED_ONLY: "bundled", GENAI_ONLY: "genai-prices"}

    bundled = cache.run_sync(
        lambda: stats(cache, "prices", pricing=Pricing.load(source="bundled")), timeout=10
    )
    assert bundled.pricing_source == "bundled"
    assert bundled.rows[0].priced_by == {BUNDLED_ONLY: "bundled"}
    assert bundled.rows[0].unpriced_models == {GENAI_ONLY, UNKNOWN}


def test_cli_stats_names_the_sources(redis_url: str, redis_sync: redis.Redis) -> None:
    _seed(redis_sync)
    runner = CliRunner(env={"REDIS_URL": redis_url, "CACHEKIT_REDIS_URL": None})
    table = runner.invoke(cli, ["stats", "-n", "prices"], catch_exceptions=False)
    assert table.exit_code == 0, table.output
    assert "from genai-prices" in table.stdout
    assert f"Priced by: bundled ({BUNDLED_ONLY}); genai-prices ({GENAI_ONLY})." in table.stdout
    assert f"No price for: {UNKNOWN}" in table.stdout

    got = runner.invoke(
        cli,
        ["stats", "-n", "prices", "--price-source", "bundled", "--json"],
        catch_exceptions=False,
    )
    data = json.loads(got.stdout)
    assert data["pricing_source"] == "bundled"
    assert data["rows"][0]["priced_by"] == {BUNDLED_ONLY: "bundled"}
    bad = runner.invoke(cli, ["stats", "--price-source", "nope"])
    assert bad.exit_code != 0 and "nope" in bad.output


# ------------------------------------------------------------------ packaging


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_import_cachekit_does_not_import_genai_prices() -> None:
    proc = _python("import sys, cachekit, cachekit.stats; print('genai_prices' in sys.modules)")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"


def test_without_genai_prices_auto_is_the_bundled_table() -> None:
    code = (
        "import sys; sys.modules['genai_prices'] = None\n"
        "from cachekit import CacheConfigError, Pricing\n"
        "p = Pricing.load()\n"
        "print(p.source, p.match('gpt-4o-mini').source, p.match('claude-sonnet-4-5'))\n"
        "try:\n    Pricing.load(source='genai-prices')\n"
        "except CacheConfigError as exc:\n    print(exc)\n"
    )
    proc = _python(code)
    assert proc.returncode == 0, proc.stderr
    first, second = proc.stdout.strip().splitlines()
    assert first == "bundled bundled None"
    assert "pip install 'cachekit[prices]'" in second
