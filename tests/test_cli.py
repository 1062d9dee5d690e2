"""The ``cachekit`` command line against a real Redis (CliRunner and ``python -m cachekit``)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from click.testing import CliRunner, Result
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from cachekit import LLMCache, cached_llm, last_result
from cachekit.__main__ import cli
from cachekit._server import free_port
from cachekit.embedders import CallableEmbedder
from cachekit.middleware import CacheMiddleware
from tests import _helpers
from tests._helpers import MakeCache, settle

REPO = Path(__file__).resolve().parent.parent
DEAD_URL = "redis://127.0.0.1:1/0"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def bow_embedder() -> CallableEmbedder:
    """Loaded by the CLI as ``--embedder py:tests.test_cli:bow_embedder``."""
    return _helpers.bow_embedder(default_threshold=0.8)


BOW = "py:tests.test_cli:bow_embedder"


def reply(text: str) -> dict[str, Any]:
    return {
        "choices": [{"message": {"role": "assistant", "content": text}}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 300},
    }


@pytest.fixture
def invoke(redis_url: str) -> Any:
    def run(*args: str, input: str | None = None, url: str | None = None) -> Result:
        runner = CliRunner(env={"REDIS_URL": url or redis_url, "CACHEKIT_REDIS_URL": None})
        return runner.invoke(cli, list(args), input=input, catch_exceptions=False)

    return run


@pytest.fixture
def cache(make_cache: MakeCache) -> LLMCache:
    """This module's cache embeds with :func:`bow_embedder`, as the ``BOW`` CLI option."""
    return make_cache(embedder=bow_embedder())


@pytest.fixture
def ask(cache: LLMCache) -> Any:
    @cached_llm(namespace="support", cache=cache, tenant=lambda c: c.arguments.get("org"))
    def ask(prompt: str, org: str | None = "acme", model: str = "gpt-4o-mini") -> dict[str, Any]:
        return reply(f"answer to {prompt}")

    return ask


@pytest.fixture
def populated(cache: LLMCache, ask: Any) -> Any:
    """Two tenants' entries; some exact hits read back from Redis."""
    for org in ("acme", "globex"):
        ask("What is the capital of France?", org=org)
        ask("How do I reset my password?", org=org)
    settle(cache)
    for _ in range(2):
        ask("What is the capital of France?", org="acme")
        assert last_result().status == "exact"  # type: ignore[union-attr]
    ask("no tenant", org=None)
    return ask


def function_id(fn: Any) -> str:
    return f"{fn.__module__}.{fn.__qualname__}"


# ---------------------------------------------------------------------------- help


@pytest.mark.parametrize(
    "command",
    ["", "stats", "inspect", "invalidate", "clear", "explain", "tune", "proxy", "redis", "demo"],
)
def test_every_command_has_help(invoke: Any, command: str) -> None:
    result = invoke(*([command] if command else []), "--help")
    assert result.exit_code == 0
    assert "Usage:" in result.stdout


# --------------------------------------------------------------------------- stats


def test_stats_table_and_json(invoke: Any, populated: Any) -> None:
    result = invoke("stats")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    acme = next(line for line in lines if line.startswith("support") and " acme " in line)
    # NAMESPACE TENANT EXACT SEMANTIC MISS BYPASS ERROR HIT-RATE TOKENS SAVED PER-MONTH
    assert acme.split()[2:6] == ["2", "0", "2", "0"]
    assert "50.0%" in acme and "200/600" in acme
    assert any(line.startswith("TOTAL") for line in lines)
    assert "list prices as of" in result.stdout

    data = json.loads(invoke("stats", "--json").stdout)
    rows = {r["tenant"]: r for r in data["rows"]}
    assert rows["acme"]["exact"] == 2 and rows["acme"]["miss"] == 2
    assert rows["acme"]["tokens_saved"] == {"input": 200, "output": 600}
    assert rows["acme"]["usd_saved"] == pytest.approx((200 * 0.15 + 600 * 0.60) / 1e6)
    assert data["totals"]["miss"] == 4

    one = json.loads(invoke("stats", "-n", "support", "-t", "globex", "--json").stdout)
    assert [r["tenant"] for r in one["rows"]] == ["globex"]


def test_stats_unknown_namespace_is_an_empty_table_and_a_hint(invoke: Any, populated: Any) -> None:
    result = invoke("stats", "--namespace", "nope")
    assert result.exit_code == 0
    assert "No stats for namespace 'nope'" in result.stdout
    assert "support" in result.stdout  # the hint names the namespaces that exist
    result = invoke("stats", "-n", "support", "--tenant", "nobody")
    assert result.exit_code == 0 and "No stats" in result.stdout


def test_stats_on_an_empty_redis(invoke: Any) -> None:
    result = invoke("stats")
    assert result.exit_code == 0
    assert "NAMESPACE" in result.stdout  # the (empty) table


def test_stats_pricing_override_and_bad_pricing_file(
    invoke: Any, populated: Any, tmp_path: Path
) -> None:
    prices = tmp_path / "p.json"
    prices.write_text(json.dumps({"gpt-4o-mini": {"input": 1000, "output": 0}}))
    data = json.loads(invoke("stats", "--pricing", str(prices), "--json").stdout)
    assert data["totals"]["usd_saved"] == pytest.approx(200 * 1000 / 1e6)
    prices.write_text("{nope")
    result = invoke("stats", "--pricing", str(prices))
    assert result.exit_code == 2 and "not valid JSON" in result.stderr


def test_bad_tenant_token_and_namespace_are_usage_errors(invoke: Any) -> None:
    assert invoke("stats", "--tenant-token", "x*y").exit_code == 2
    assert invoke("stats", "-n", "bad name!").exit_code == 2
    assert invoke("stats", "-t", "a", "--tenant-token", "_").exit_code == 2


# ------------------------------------------------------------------------- inspect


def test_inspect_lists_entries(invoke: Any, populated: Any) -> None:
    result = invoke("inspect", "-n", "support", "--sort", "hits")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split()[:5] == ["NAMESPACE", "TENANT", "MODEL", "AGE", "HITS"]
    first = lines[2]
    assert "What is the capital of France?" in first and " acme " in first
    assert first.split()[4] == "2"  # hits
    assert "gpt-4o-mini" in first
    assert "4 entries shown of 4" in result.stdout

    entries = json.loads(invoke("inspect", "-t", "globex", "--json").stdout)
    assert {e["prompt"] for e in entries} == {
        "What is the capital of France?",
        "How do I reset my password?",
    }
    assert all(e["size_bytes"] > 0 and e["live"] and e["model"] == "gpt-4o-mini" for e in entries)
    assert entries[0]["tokens_in"] == 100

    assert len(json.loads(invoke("inspect", "--limit", "1", "--json").stdout)) == 1


def test_inspect_unknown_namespace(invoke: Any) -> None:
    result = invoke("inspect", "-n", "nothing-here")
    assert result.exit_code == 0
    assert "No entries for namespace 'nothing-here'" in result.stdout


# -------------------------------------------------------------- invalidate / clear


def test_invalidate_then_entries_are_not_live(invoke: Any, populated: Any, cache: LLMCache) -> None:
    result = invoke("invalidate", "support", "--tenant", "acme")
    assert result.exit_code == 0 and "generation 1" in result.stdout
    entries = json.loads(invoke("inspect", "-n", "support", "--json").stdout)
    live = {e["tenant"]: e["live"] for e in entries}
    assert live == {"acme": False, "globex": True}
    populated("What is the capital of France?", org="acme")
    assert last_result().status == "miss"  # type: ignore[union-attr]
    result = invoke("invalidate", "support")
    assert result.exit_code == 0 and "every tenant (epoch " in result.stdout
    populated("What is the capital of France?", org="globex")
    assert last_result().status == "miss"  # type: ignore[union-attr]


def test_clear_asks_unless_yes(invoke: Any, populated: Any, redis_sync: redis.Redis) -> None:
    result = invoke("clear", "support", "--tenant", "acme", input="n\n")
    assert result.exit_code == 0  # declining is not a failure (docs/operations.md)
    assert "Aborted: nothing deleted" in result.stdout
    assert list(redis_sync.scan_iter(match="ck:{support:bYWNtZQ}:*"))
    result = invoke("clear", "support", "--tenant", "acme", input="y\n")
    assert result.exit_code == 0 and "Deleted" in result.stdout
    assert not list(redis_sync.scan_iter(match="ck:{support:bYWNtZQ}:*"))
    assert list(redis_sync.scan_iter(match="ck:{support:bZ2xvYmV4}:*"))
    result = invoke("clear", "support", "--yes")
    assert result.exit_code == 0
    assert not list(redis_sync.scan_iter(match="ck:{support:*"))
    result = invoke("clear", "support", "--yes")
    assert result.exit_code == 0 and "Nothing to delete" in result.stdout


def test_invalidate_of_a_namespace_never_used_says_so(invoke: Any, populated: Any) -> None:
    for args, scope in (
        (["invalidate", "suport"], "namespace 'suport'"),
        (["invalidate", "support", "--tenant", "initech"], "tenant 'initech'"),
    ):
        result = invoke(*args)
        assert result.exit_code == 0
        assert "Invalidated namespace" in result.stdout
        assert f"{scope} has no entries or stats yet" in result.stderr
        assert "invalidated anyway" in result.stderr
        again = invoke(*args)  # still unused: an invalidate does not make it used
        assert f"{scope} has no entries or stats yet" in again.stderr
    for args in (["invalidate", "support"], ["invalidate", "support", "-t", "acme"]):
        result = invoke(*args)
        assert result.exit_code == 0 and result.stderr == ""


def test_invalidate_says_nothing_when_the_bounded_scan_cannot_tell(
    invoke: Any, redis_sync: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    import cachekit.cli._manage as manage

    redis_sync.mset({f"other:{i}": 1 for i in range(5000)})
    monkeypatch.setattr(manage, "_SEEN_SCAN_CALLS", 1)  # one SCAN cannot cover 5000 keys
    result = invoke("invalidate", "never-used")
    assert result.exit_code == 0 and result.stderr == ""


def test_clear_declined_is_exit_0_and_deletes_nothing(
    invoke: Any, populated: Any, redis_sync: redis.Redis
) -> None:
    before = sorted(redis_sync.scan_iter(match="ck:{support:*"))
    result = invoke("clear", "support", input="\n")  # the default answer is no
    assert result.exit_code == 0
    assert "Aborted: nothing deleted" in result.stdout
    # Nothing deleted (background stats flushes may still add keys meanwhile).
    assert set(before) <= set(redis_sync.scan_iter(match="ck:{support:*"))


# ------------------------------------------------------------------------- explain


def test_explain_exact_semantic_and_other_scope(invoke: Any, populated: Any) -> None:
    common = ["-n", "support", "-t", "acme", "--function-id", function_id(populated)]
    # The app's cache (a bag-of-words embedder) has no hit verifier: nor has the CLI's.
    common += ["--no-verify", "--arg", "org=acme", "--model", "gpt-4o-mini", "--embedder", BOW]
    result = invoke("explain", *common, "--prompt", "what is the  capital of FRANCE?")
    assert result.exit_code == 0, result.output
    assert "Verdict: HIT (exact)" in result.stdout
    assert '"fn": "' + function_id(populated) in result.stdout  # the scope is printed

    result = invoke("explain", *common, "--prompt", "capital of France, what is it?")
    assert "Verdict: HIT (semantic" in result.stdout
    assert "What is the capital of France?" in result.stdout  # the nearest cached prompt

    data = json.loads(invoke("explain", *common, "--prompt", "recipe for bread", "--json").stdout)
    assert data["verdict"].startswith("MISS (nearest similarity")
    assert data["exact"]["status"] == "absent"
    assert data["semantic"]["candidates"] and not data["semantic"]["candidates"][0]["accepted"]
    assert data["manifest"]["model"] == "gpt-4o-mini"

    # Another model is another scope: never matched, and explain says so.
    other = [*common[:-4], "--model", "gpt-4o", "--embedder", BOW]
    result = invoke("explain", *other, "--prompt", "What is the capital of France?")
    assert "no entries in this scope" in result.stdout
    assert "Other scopes" in result.stdout

    # --embedder auto names the index's model when it cannot rebuild it.
    auto = [*common[:-2], "--prompt", "recipe for bread"]
    assert "the index was built with 'test/bow64'" in invoke("explain", *auto).stdout

    # No embedder: the exact layer only.
    result = invoke("explain", *common[:-2], "--embedder", "none", "--prompt", "x y z")
    assert "skipped: no embedder" in result.stdout


def test_explain_agrees_with_the_http_middleware(
    redis_url: str, invoke: Any, tmp_path: Path
) -> None:
    async def chat(request: Request) -> Response:
        return JSONResponse(reply("hi") | {"object": "chat.completion", "id": "c1"})

    cache = LLMCache.from_url(redis_url)
    app = Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])
    app.add_middleware(CacheMiddleware, cache=cache, namespace="web", allow_global=True)
    body: dict[str, Any] = {
        "model": "gpt-4o-mini",
        "temperature": 0,
        "messages": [
            {"role": "system", "content": "Be terse."},
            {"role": "user", "content": "Hello there"},
        ],
    }
    try:
        with TestClient(app) as client:
            assert client.post("/v1/chat/completions", json=body).headers["x-cache"] == "MISS"
        cache.drain_sync()
    finally:
        cache.close()
    path = tmp_path / "body.json"
    path.write_text(json.dumps(body))
    result = invoke("explain", "-n", "web", "--body-file", str(path), "--embedder", "none")
    assert result.exit_code == 0, result.output
    assert "Verdict: HIT (exact)" in result.stdout
    msgs = json.dumps(body["messages"][1:])
    args = ["-n", "web", "--messages-json", msgs, "--model", "gpt-4o-mini", "--embedder", "none"]
    result = invoke("explain", *args, "--system", "Be terse.", "--arg", "temperature=0")
    assert "Verdict: HIT (exact)" in result.stdout
    result = invoke("explain", *args, "--system", "Be verbose.", "--arg", "temperature=0")
    assert "Verdict: MISS (no entries in this scope" in result.stdout


def test_explain_keys_a_body_as_its_api_does(redis_url: str, invoke: Any, tmp_path: Path) -> None:
    """A Responses-API body (``input``, ``instructions``) is keyed through the API table,
    as the middleware keys it, not as a chat body."""

    async def responses(request: Request) -> Response:
        return JSONResponse({"object": "response", "id": "r1", "output_text": "hi"})

    cache = LLMCache.from_url(redis_url)
    app = Starlette(routes=[Route("/v1/responses", responses, methods=["POST"])])
    app.add_middleware(CacheMiddleware, cache=cache, namespace="web", allow_global=True)
    conversation = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "Hello there"},
    ]
    body = {"model": "gpt-4o-mini", "instructions": "Be terse.", "input": conversation}
    try:
        with TestClient(app) as client:
            assert client.post("/v1/responses", json=body).headers["x-cache"] == "MISS"
        cache.drain_sync()
    finally:
        cache.close()
    path = tmp_path / "body.json"
    path.write_text(json.dumps(body))
    result = invoke(
        "explain", "-n", "web", "--body-file", str(path), "--function-id", "http:/v1/responses",
        "--embedder", "none",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Verdict: HIT (exact)" in result.stdout, result.stdout


def test_explain_knows_the_history_option(redis_url: str, invoke: Any) -> None:
    cache = LLMCache.from_url(redis_url)

    @cached_llm("hist", cache=cache, allow_global=True, history="similar")
    def chat(messages: list[dict[str, str]]) -> str:
        return "sunny"

    msgs = [
        {"role": "user", "content": "What's the weather like in Paris?"},
        {"role": "assistant", "content": "Sunny."},
        {"role": "user", "content": "And tomorrow?"},
    ]
    try:
        chat(msgs)
        cache.drain_sync()
    finally:
        cache.close()
    function_id = f"{__name__}.test_explain_knows_the_history_option.<locals>.chat"
    args = ["explain", "-n", "hist", "--messages-json", json.dumps(msgs)]
    args += ["--function-id", function_id, "--embedder", "none"]
    assert "Verdict: HIT (exact)" in invoke(*args, "--history", "similar").stdout
    assert "Verdict: HIT (exact)" not in invoke(*args).stdout  # keyed as history="exact"


def test_explain_bad_input(invoke: Any, tmp_path: Path) -> None:
    assert invoke("explain", "-n", "x").exit_code == 2  # no request given
    assert invoke("explain", "--prompt", "a", "--messages-json", "[]").exit_code == 2
    result = invoke("explain", "--messages-json", "{not json")
    assert result.exit_code == 2 and "invalid JSON" in result.stderr
    bad = tmp_path / "b.json"
    bad.write_text("[1, 2]")
    result = invoke("explain", "--body-file", str(bad), "--embedder", "none")
    assert result.exit_code == 2 and "JSON object" in result.stderr
    result = invoke("explain", "--prompt", "a", "--embedder", "py:nope.nothing:here")
    assert result.exit_code == 2
    result = invoke("explain", "--prompt", "a", "--embedder", "magic")
    assert result.exit_code == 2


# ---------------------------------------------------------------------------- tune


def write_pairs(path: Path) -> Path:
    """Labelled pairs with known similarities: the sweep's numbers are exact."""
    rows = [
        (0.99, 1),
        (0.97, 1),
        (0.95, 1),
        (0.93, 1),
        (0.91, 0),
        (0.89, 1),
        (0.87, 1),
        (0.85, 0),
        (0.80, 0),
        (0.70, 1),
    ]
    with path.open("w") as fh:
        for i, (sim, label) in enumerate(rows):
            pair = {"text_a": f"q{i}", "text_b": f"p{i}", "label": label, "similarity": sim}
            fh.write(json.dumps(pair) + "\n")
    return path


def test_tune_recommends_a_threshold_and_plots(invoke: Any, tmp_path: Path) -> None:
    pairs = write_pairs(tmp_path / "pairs.jsonl")
    png = tmp_path / "sweep.png"
    result = invoke("tune", str(pairs), "--target-precision", "0.8", "--plot", str(png))
    assert result.exit_code == 0, result.output
    # 0.86 and 0.87 accept 7 pairs, 6 right (precision 0.857); 0.85 drops to 0.75. The
    # top of that plateau is recommended: the same measured hits, the widest margin.
    assert "Recommended threshold: 0.87" in result.stdout
    assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 5000

    data = json.loads(invoke("tune", str(pairs), "--target-precision", "0.95", "--json").stdout)
    assert data["recommended_threshold"] == 0.93  # 0.91 lets the first wrong pair in
    row = next(r for r in data["sweep"] if r["threshold"] == 0.91)
    assert row["accepted"] == 5 and row["precision"] == pytest.approx(0.8)
    assert row["recall"] == pytest.approx(4 / 7) and row["hit_rate"] == pytest.approx(0.5)

    unreachable = invoke("tune", str(pairs), "--target-precision", "1.0", "--max", "0.85")
    assert unreachable.exit_code == 0 and "No threshold" in unreachable.stdout


def test_tune_warns_that_a_small_sample_is_small(invoke: Any, tmp_path: Path) -> None:
    pairs = write_pairs(tmp_path / "pairs.jsonl")
    n = len(pairs.read_text().splitlines())
    result = invoke("tune", str(pairs), "--target-precision", "0.8")
    assert result.exit_code == 0, result.output
    assert "Recommended threshold: 0.87" in result.stdout
    assert f"only {n} labelled pairs" in result.stderr
    assert "95% Wilson interval" in result.stderr
    data = json.loads(invoke("tune", str(pairs), "--target-precision", "0.8", "--json").stdout)
    assert data["pairs"] == n and data["small_sample"] is True
    lo, hi = data["precision_ci95"]
    assert 0 < lo < 6 / 7 < hi <= 1  # 6 of 7 accepted pairs are right


def test_tune_is_quiet_about_a_large_clean_sample(invoke: Any, tmp_path: Path) -> None:
    path = tmp_path / "many.jsonl"
    with path.open("w") as fh:
        for i in range(600):
            same = i % 2 == 0
            sim = 0.95 + (i % 7) / 200 if same else 0.5 + (i % 11) / 100
            row = {"text_a": f"q{i}", "text_b": f"p{i}", "label": int(same), "similarity": sim}
            fh.write(json.dumps(row) + "\n")
    result = invoke("tune", str(path), "--target-precision", "0.95")
    assert result.exit_code == 0, result.output
    assert "Recommended threshold" in result.stdout
    assert "600 pairs" in result.stdout
    assert result.stderr == ""
    data = json.loads(invoke("tune", str(path), "--json").stdout)
    assert data["small_sample"] is False and data["precision_ci95"][0] > 0.98


@pytest.mark.parametrize(
    ("name", "content", "line"),
    [
        ("a.jsonl", '{"text_a": "a", "text_b": "b", "label": 1}\n\n{broken\n', 3),
        ("b.jsonl", '{"text_a": "a", "text_b": "b", "label": 1}\n{"text_a": "a", "label": 1}\n', 2),
        ("c.jsonl", '{"text_a": "a", "text_b": "b", "label": "maybe"}\n', 1),
        ("d.json", '[\n {"text_a": "a", "text_b": "b", "label": 1},\n {"text_a": "a"}\n]', 3),
        ("e.tsv", "text_a\ttext_b\tlabel\nx\ty\t1\nonly two\tfields\n", 3),
        ("f.jsonl", '{"text_a": "a", "text_b": "b", "label": 1, "similarity": 7}\n', 1),
        ("g.json", "[]", 1),
    ],
)
def test_tune_malformed_files_exit_2_with_the_line(
    invoke: Any, tmp_path: Path, name: str, content: str, line: int
) -> None:
    path = tmp_path / name
    path.write_text(content)
    result = invoke("tune", str(path))
    assert result.exit_code == 2
    assert f"{path}:{line}:" in result.stderr
    assert "Traceback" not in result.output


def test_tune_reads_tsv_and_json_with_other_field_names(invoke: Any, tmp_path: Path) -> None:
    tsv = tmp_path / "p.tsv"
    tsv.write_text("question1\tquestion2\tis_duplicate\tsimilarity\na\tb\t1\t0.95\nc\td\t0\t0.5\n")
    result = invoke("tune", str(tsv), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["pairs"] == 2
    js = tmp_path / "p.json"
    js.write_text(json.dumps([{"origin": "a", "similar": "b", "label": True, "similarity": 0.9}]))
    assert json.loads(invoke("tune", str(js), "--json").stdout)["recommended_threshold"] == 0.9


def test_tune_embeds_pairs_with_the_local_model(invoke: Any, tmp_path: Path) -> None:
    pytest.importorskip("sentence_transformers")
    path = tmp_path / "pairs.tsv"
    path.write_text(
        "How do I reset my password?\tHow can I reset my password?\t1\n"
        "What is the capital of France?\tWhich city is the capital of France?\t1\n"
        "What is the capital of France?\tWhat is the capital of Germany?\t0\n"
        "How tall is Mount Everest?\tWhat is the best pizza topping?\t0\n"
    )
    png = tmp_path / "p.png"
    result = invoke("tune", str(path), "--embedder", "minilm", "--plot", str(png), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    low = next(r for r in data["sweep"] if r["threshold"] == 0.5)
    assert low["recall"] == 1.0  # paraphrases are well above 0.5 with MiniLM
    assert png.read_bytes()[:8] == PNG_MAGIC


def seed_near_misses(r: redis.Redis, namespace: str = "support") -> None:
    key = f"ck:{{{namespace}:bYWNtZQ}}:nearmiss"
    for prompt, nearest, sim in [
        ("how to reset pw", "How do I reset my password?", 0.86),
        ("capital of france?", "What is the capital of France?", 0.88),
        ("weather on mars", "What is the capital of France?", 0.81),
    ]:
        fields: dict[Any, Any] = {
            "prompt": prompt,
            "nearest": nearest,
            "similarity": sim,
            "threshold": 0.9,
            "model": "gpt-4o-mini",
        }
        r.xadd(key, fields)


def test_tune_from_near_misses(invoke: Any, redis_sync: redis.Redis, tmp_path: Path) -> None:
    result = invoke("tune", "--from-near-misses", "-n", "support")
    assert result.exit_code == 0 and "No near misses recorded" in result.stdout
    seed_near_misses(redis_sync)
    png = tmp_path / "nm.png"
    result = invoke("tune", "--from-near-misses", "-n", "support", "--plot", str(png))
    assert result.exit_code == 0, result.output
    assert "3 near misses" in result.stdout
    assert re.search(r"0\.85\s+2\s+66\.7%", result.stdout)
    assert png.read_bytes()[:8] == PNG_MAGIC

    exported = tmp_path / "nm.jsonl"
    result = invoke("tune", "--from-near-misses", "-n", "support", "--export", str(exported))
    assert result.exit_code == 0
    rows = [json.loads(line) for line in exported.read_text().splitlines()]
    assert len(rows) == 3 and all(r["label"] is None for r in rows)
    # An unlabelled export fed back is malformed until labelled.
    assert invoke("tune", str(exported)).exit_code == 2
    for r in rows:
        r["label"] = int("weather" not in r["text_a"])
    exported.write_text("\n".join(json.dumps(r) for r in rows))
    data = json.loads(invoke("tune", str(exported), "--target-precision", "1", "--json").stdout)
    assert data["recommended_threshold"] == 0.86

    labelled = invoke(
        "tune", "--from-near-misses", "-n", "support", "--label", "--json", input="y\ny\nn\n"
    )
    assert labelled.exit_code == 0, labelled.output
    assert '"pairs": 3' in labelled.stdout


def test_tune_usage_errors(invoke: Any, tmp_path: Path) -> None:
    assert invoke("tune").exit_code == 2
    assert invoke("tune", "--from-near-misses").exit_code == 2  # needs --namespace
    pairs = write_pairs(tmp_path / "p.jsonl")
    assert invoke("tune", str(pairs), "--from-near-misses", "-n", "x").exit_code == 2
    assert invoke("tune", str(pairs), "--min", "0.9", "--max", "0.5").exit_code == 2


# ----------------------------------------------------------------- unreachable Redis


@pytest.mark.parametrize(
    "args",
    [
        ["stats"],
        ["inspect"],
        ["invalidate", "ns"],
        ["clear", "ns", "--yes"],
        ["explain", "--prompt", "hi", "--embedder", "none"],
        ["tune", "--from-near-misses", "-n", "ns"],
    ],
)
def test_unreachable_redis_is_one_line_and_exit_1(invoke: Any, args: list[str]) -> None:
    result = invoke(*args, url=DEAD_URL)
    assert result.exit_code == 1
    assert result.stderr.strip().count("\n") == 0
    assert "cannot reach Redis at redis://127.0.0.1:1/0" in result.stderr


def test_unreachable_redis_as_a_process_has_no_traceback() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "REDIS_URL": DEAD_URL}
    proc = subprocess.run(
        [sys.executable, "-m", "cachekit", "stats"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith("Error: cannot reach Redis")
    assert "Traceback" not in proc.stderr and proc.stderr.strip().count("\n") == 0


# --------------------------------------------------------------------------- proxy


def test_proxy_command_serves_and_caches(redis_url: str, invoke: Any) -> None:
    from tests.llm_server import LocalOpenAIServer

    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with LocalOpenAIServer() as upstream:
        cmd = [sys.executable, "-m", "cachekit", "proxy", "--upstream", upstream.base_url]
        cmd += ["--port", str(port), "--redis-url", redis_url, "--log-level", "warning"]
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi there"}]}
            headers = {"Authorization": "Bearer sk-one"}
            url = f"http://127.0.0.1:{port}/v1/chat/completions"
            deadline = time.monotonic() + 30
            while True:
                try:
                    first = httpx.post(url, json=body, headers=headers, timeout=10)
                    break
                except httpx.ConnectError:
                    assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                    assert time.monotonic() < deadline, "the proxy did not start"
                    time.sleep(0.1)
            assert first.status_code == 200 and first.headers["x-cache"] == "MISS"
            for _ in range(50):
                second = httpx.post(url, json=body, headers=headers, timeout=10)
                if second.headers["x-cache"] == "HIT":
                    break
                time.sleep(0.05)  # the store lands in the background
            assert second.headers["x-cache"] == "HIT"
            assert second.json()["choices"][0]["message"]["content"] == "echo: hi there"
            assert upstream.count("/v1/chat/completions") == 1
        finally:
            proc.terminate()
            proc.wait(timeout=20)
    data = json.loads(invoke("stats", "-n", "proxy", "--json").stdout)
    assert data["totals"]["exact"] >= 1 and data["totals"]["miss"] == 1
    tenant = data["rows"][0]["tenant"]
    assert tenant.startswith("key:")  # the digest of the API key, decoded for display


def test_proxy_threshold_needs_an_embedder(invoke: Any) -> None:
    result = invoke("proxy", "--threshold", "0.9")
    assert result.exit_code == 2 and "--embedder" in result.stderr


def test_proxy_configured_from_the_environment(redis_url: str, redis_sync: redis.Redis) -> None:
    from tests.llm_server import LocalOpenAIServer

    port = free_port()
    with LocalOpenAIServer() as upstream:
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "CACHEKIT_PROXY_UPSTREAM": upstream.base_url,
            "CACHEKIT_PROXY_PORT": str(port),
            # The proxy's own variable wins over the library-wide one.
            "CACHEKIT_REDIS_URL": DEAD_URL,
            "CACHEKIT_PROXY_REDIS_URL": redis_url,
            "CACHEKIT_PROXY_NAMESPACE": "from-env",
            "CACHEKIT_PROXY_TTL": "500",
            "CACHEKIT_PROXY_LOG_LEVEL": "warning",
        }
        # A flag wins over its variable.
        cmd = [sys.executable, "-m", "cachekit", "proxy", "--ttl", "40"]
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10)
                    break
                except httpx.ConnectError:
                    assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                    assert time.monotonic() < deadline, "the proxy did not start"
                    time.sleep(0.1)
            assert health.status_code == 200 and health.json()["redis"] == "ok"
            body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "env"}]}
            reply = httpx.post(
                f"http://127.0.0.1:{port}/v1/chat/completions",
                json=body,
                headers={"Authorization": "Bearer sk-env"},
                timeout=10,
            )
            assert reply.status_code == 200 and reply.headers["x-cache"] == "MISS"
            assert upstream.count("/v1/chat/completions") == 1
        finally:
            proc.terminate()
            proc.wait(timeout=20)
    (key,) = _helpers.entry_keys(redis_sync, "from-env")
    assert 0 < redis_sync.ttl(key) <= 40


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("CACHEKIT_PROXY_PORT", "eighty", "is not a valid integer"),
        ("CACHEKIT_PROXY_PORT", "70000", "65535"),
        ("CACHEKIT_PROXY_THRESHOLD", "1.5", "range"),
        ("CACHEKIT_PROXY_ONLY_IF_CACHED", "sometimes", "boolean"),
        ("CACHEKIT_PROXY_NAMESPACE", "no spaces please", "1-64 characters"),
        ("CACHEKIT_PROXY_UPSTREAM", "ftp://example.com", "http(s) URL"),
        ("CACHEKIT_PROXY_REDIS_URL", "http://user:hunter2@host", "unsupported URL scheme"),
        ("CACHEKIT_PROXY_EMBEDDER", "nonsense", "unknown embedder"),
    ],
)
def test_a_bad_proxy_variable_is_named(variable: str, value: str, says: str) -> None:
    result = CliRunner(env={variable: value}).invoke(cli, ["proxy"])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"Error: {variable}=") and says in result.stderr
    assert "hunter2" not in result.stderr and "Traceback" not in result.stderr


def test_a_proxy_flag_wins_over_a_bad_variable() -> None:
    # The variable is never read when the flag is given: no error for it; the (bad) flag
    # is what is reported, by its flag name.
    result = CliRunner(env={"CACHEKIT_PROXY_PORT": "eighty"}).invoke(cli, ["proxy", "--port", "0"])
    assert result.exit_code == 2 and "--port" in result.stderr
    assert "CACHEKIT_PROXY_PORT" not in result.stderr


# ------------------------------------------------------------------------ cluster


def test_commands_on_a_redis_cluster(invoke: Any, cluster_url: str) -> None:
    from cachekit.stats import track_outcomes

    cache = LLMCache.from_url(cluster_url)
    counter = track_outcomes(cache)

    @cached_llm(namespace="cl", cache=cache, tenant=lambda c: c.arguments["org"])
    def ask(prompt: str, org: str | None, model: str = "gpt-4o") -> dict[str, Any]:
        return reply(f"answer to {prompt}")

    orgs = [f"org-{i}" for i in range(9)]  # spread over the three primaries
    try:
        for org in orgs:
            ask("capital of france", org)
        settle(cache)
        for org in orgs:
            ask("capital of france", org)
            assert last_result().status == "exact"  # type: ignore[union-attr]
        for _ in range(3):
            ask("who are you?", None)  # no tenant: bypass, counted by the observer
        cache.drain_sync()
        cache.run_sync(counter.flush, timeout=10)
    finally:
        cache.close()

    data = json.loads(invoke("stats", "--json", url=cluster_url).stdout)
    assert len(data["rows"]) == 10  # nine tenants and "(none)"
    assert (data["totals"]["exact"], data["totals"]["miss"]) == (9, 9)
    assert data["totals"]["bypass"] == 3
    assert data["totals"]["tokens_saved"] == {"input": 900, "output": 2700}

    entries = json.loads(
        invoke("inspect", "-n", "cl", "--json", "--limit", "50", url=cluster_url).stdout
    )
    assert len(entries) == 9 and all(e["hits"] == 1 and e["live"] for e in entries)

    args = ["-n", "cl", "-t", "org-4", "--function-id", function_id(ask), "--model", "gpt-4o"]
    args += ["--arg", "org=org-4", "--embedder", "none", "--prompt", "Capital of France"]
    result = invoke("explain", *args, url=cluster_url)
    assert "Verdict: HIT (exact)" in result.stdout, result.output

    assert invoke("invalidate", "cl", url=cluster_url).exit_code == 0
    result = invoke("explain", *args, url=cluster_url)
    assert "Verdict: MISS" in result.stdout  # a new epoch: the entries are unreachable
    result = invoke("clear", "cl", "--yes", url=cluster_url)
    assert result.exit_code == 0 and "Deleted" in result.stdout
    assert json.loads(invoke("stats", "-n", "cl", "--json", url=cluster_url).stdout)["rows"] == []


def test_unreachable_cluster_is_one_line(invoke: Any) -> None:
    result = invoke("stats", url="redis+cluster://127.0.0.1:1")
    assert result.exit_code == 1
    assert "cannot reach Redis at redis+cluster://127.0.0.1:1" in result.stderr


# --------------------------------------------------------------------------- redis


def test_redis_command_serves_and_stops_on_sigterm() -> None:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cachekit", "redis", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert f"listening on redis://127.0.0.1:{port}" in proc.stdout.readline()
        assert redis.Redis(port=port).ping()
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    with pytest.raises(redis.ConnectionError):
        redis.Redis(port=port, socket_connect_timeout=1).ping()


def run_redis_command(port: int) -> subprocess.CompletedProcess[str]:
    """``cachekit redis --port PORT``, expected to give up; its group is killed if not."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "cachekit", "redis", "--port", str(port)]
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,  # so a server it started dies with it on a timeout
    )  # fmt: skip
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"`cachekit redis` kept running on a port in use: {out!r} {err!r}")
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def test_redis_command_on_a_port_taken_by_another_program_exits_1() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = run_redis_command(port)
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert f"port {port} is already in use" in proc.stderr
    assert "listening" not in proc.stdout
    assert "Traceback" not in proc.stderr


def test_redis_command_on_a_port_taken_by_a_running_redis_exits_1(redis_url: str) -> None:
    from cachekit._server import RedisServer

    with RedisServer() as other:
        client = redis.Redis(port=other.port)
        client.set("mine", "1")
        proc = run_redis_command(other.port)
        assert proc.returncode == 1, (proc.stdout, proc.stderr)
        assert f"port {other.port} is already in use" in proc.stderr
        assert "a Redis is already listening there" in proc.stderr
        assert "listening on" not in proc.stdout
        assert client.get("mine") == b"1"  # the other server is untouched
        client.close()


def test_redis_server_never_moves_a_requested_port() -> None:
    from cachekit._server import RedisServer
    from cachekit.errors import RedisPortInUseError

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = RedisServer(port=port)
        with pytest.raises(RedisPortInUseError, match=f"port {port} is already in use"):
            server.start()
        assert server.port == port and server.process is None


def test_tune_reports_the_sweep_with_and_without_the_hit_verifier(
    invoke: Any, tmp_path: Path
) -> None:
    """Near-identical traps above the threshold: bare precision suffers, verified not."""
    rows = [
        ("What is the status of order 12346?", "What is the status of order 12345?", 0, 0.955),
        ("Show me flights from London to Paris", "Show me flights from Paris to London", 0, 0.99),
        ("Should I sell Tesla stock now?", "Should I buy Tesla stock now?", 0, 0.951),
        ("How do I reset my password?", "How can I reset my password?", 1, 0.992),
        ("What's the capital of France?", "What is the capital of France?", 1, 0.993),
        ("How can I cancel my subscription?", "How do I cancel my subscription?", 1, 0.996),
    ]
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(
        "\n".join(
            json.dumps({"text_a": a, "text_b": b, "label": y, "similarity": s})
            for a, b, y, s in rows
        )
    )
    data = json.loads(invoke("tune", str(pairs), "--min", "0.9", "--json").stdout)
    at = {r["threshold"]: r for r in data["sweep"]}
    verified = {r["threshold"]: r for r in data["sweep_verified"]}
    assert at[0.92]["precision"] == 0.5 and at[0.92]["accepted"] == 6
    assert verified[0.92]["precision"] == 1.0 and verified[0.92]["accepted"] == 3
    assert verified[0.92]["recall"] == 1.0
    best = data["recommended_threshold_verified"]
    assert best is not None and verified[best]["precision"] == 1.0
    text = invoke("tune", str(pairs), "--min", "0.9").stdout
    assert "VERIFIED PREC" in text and f"Recommended threshold with it: {best:.2f}" in text
    assert "VERIFIED" not in invoke("tune", str(pairs), "--min", "0.9", "--no-verify").stdout
