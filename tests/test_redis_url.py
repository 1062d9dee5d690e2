"""One Redis URL resolution for every entry point: explicit > CACHEKIT_REDIS_URL >
REDIS_URL > redis://localhost:6379/0.

Each entry point runs with *both* variables set, pointing at two different real Redis
servers, and must use the one ``CACHEKIT_REDIS_URL`` names (so ``cachekit stats`` reads
the Redis that ``@cached_llm`` writes).
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from click.testing import CliRunner

import cachekit
from cachekit import cached_llm, last_result
from cachekit.__main__ import cli
from cachekit._server import RedisServer, free_port

REPO = Path(__file__).resolve().parent.parent
DEFAULT = "redis://localhost:6379/0"


@pytest.fixture(scope="module")
def other_server() -> Iterator[RedisServer]:
    """A second real Redis: what ``REDIS_URL`` names when both variables are set."""
    with RedisServer() as server:
        yield server


@pytest.fixture
def other_url(other_server: RedisServer) -> Iterator[str]:
    client = redis.Redis(port=other_server.port)
    client.flushall()
    client.close()
    return other_server.url


@pytest.fixture
def both(redis_url: str, other_url: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """CACHEKIT_REDIS_URL -> the session server, REDIS_URL -> the other one."""
    env = {"CACHEKIT_REDIS_URL": redis_url, "REDIS_URL": other_url}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def keys(url: str, pattern: str) -> list[bytes]:
    client = redis.Redis.from_url(url)
    try:
        return list(client.scan_iter(match=pattern))
    finally:
        client.close()


# -- the resolver ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("explicit", "cachekit_env", "redis_env", "expected"),
    [
        ("redis://explicit/0", "redis://ck/0", "redis://r/0", "redis://explicit/0"),
        (None, "redis://ck/0", "redis://r/0", "redis://ck/0"),
        (None, None, "redis://r/0", "redis://r/0"),
        (None, "", "redis://r/0", "redis://r/0"),  # empty means unset
        (None, None, None, DEFAULT),
        ("", None, None, DEFAULT),
    ],
)
def test_resolver_precedence(
    monkeypatch: pytest.MonkeyPatch,
    explicit: str | None,
    cachekit_env: str | None,
    redis_env: str | None,
    expected: str,
) -> None:
    from cachekit._defaults import configured_redis_url, resolve_redis_url

    for name, value in (("CACHEKIT_REDIS_URL", cachekit_env), ("REDIS_URL", redis_env)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    assert resolve_redis_url(explicit) == expected
    assert configured_redis_url() == (cachekit_env or redis_env or None)


# -- every entry point -------------------------------------------------------------------


def test_default_cache_and_cli_agree(both: dict[str, str]) -> None:
    """What ``@cached_llm`` (default cache) writes is what ``cachekit stats`` reads."""
    cachekit.set_default_cache(None)
    try:

        @cached_llm(namespace="urls")
        def ask(prompt: str) -> str:
            return "answer"

        ask("where do I land?")
        assert last_result().stored  # type: ignore[union-attr]
        cachekit.get_default_cache().drain_sync()
    finally:
        cache = cachekit.get_default_cache()
        cachekit.set_default_cache(None)
        cache.close()
    assert keys(both["CACHEKIT_REDIS_URL"], "ck:{urls:*")
    assert not keys(both["REDIS_URL"], "ck:{urls:*")

    result = CliRunner(env=both).invoke(cli, ["stats", "-n", "urls", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["totals"]["miss"] == 1


def test_cli_prefers_cachekit_redis_url_and_an_explicit_option(
    redis_url: str, other_url: str
) -> None:
    dead = "redis://127.0.0.1:1/0"
    runner = CliRunner(env={"CACHEKIT_REDIS_URL": dead, "REDIS_URL": redis_url})
    result = runner.invoke(cli, ["stats"])
    assert result.exit_code == 1
    assert "cannot reach Redis at redis://127.0.0.1:1/0" in result.stderr
    result = runner.invoke(cli, ["stats", "--redis-url", other_url])
    assert result.exit_code == 0, result.output
    runner = CliRunner(env={"CACHEKIT_REDIS_URL": None, "REDIS_URL": dead})
    assert runner.invoke(cli, ["stats"]).exit_code == 1  # REDIS_URL still counts alone
    help_text = runner.invoke(cli, ["stats", "--help"]).stdout
    assert "CACHEKIT_REDIS_URL" in help_text and "REDIS_URL" in help_text


def test_demo_uses_cachekit_redis_url(both: dict[str, str]) -> None:
    from cachekit._demo import _redis_url

    out = io.StringIO()
    with _redis_url(out) as url:
        assert url == both["CACHEKIT_REDIS_URL"]
    assert "throwaway" not in out.getvalue()


def test_demo_without_either_variable_starts_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    from cachekit._demo import _redis_url

    monkeypatch.delenv("CACHEKIT_REDIS_URL", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    out = io.StringIO()
    with _redis_url(out) as url:
        assert redis.Redis.from_url(url).ping()
    assert "no CACHEKIT_REDIS_URL or REDIS_URL set" in out.getvalue()


def test_run_proxy_uses_cachekit_redis_url(both: dict[str, str]) -> None:
    from tests.llm_server import LocalOpenAIServer

    port = free_port()
    env = {**os.environ, **both, "PYTHONPATH": str(REPO)}
    with LocalOpenAIServer() as up:
        code = (
            "from cachekit.proxy import run_proxy; "
            f"run_proxy({up.base_url!r}, port={port}, log_level='warning')"
        )
        proc = subprocess.Popen([sys.executable, "-c", code], env=env, stderr=subprocess.PIPE)
        try:
            url = f"http://127.0.0.1:{port}/v1/chat/completions"
            body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
            headers = {"authorization": "Bearer sk-urls"}
            deadline = time.monotonic() + 30
            while True:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                try:
                    first = httpx.post(url, json=body, headers=headers, timeout=10)
                    break
                except httpx.ConnectError:
                    assert time.monotonic() < deadline, "run_proxy did not start"
                    time.sleep(0.1)
            assert first.headers["x-cache"] == "MISS"
            for _ in range(100):
                if keys(both["CACHEKIT_REDIS_URL"], "ck:{proxy:*}:e:*"):
                    break
                time.sleep(0.05)  # the store lands in the background
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(15)
    assert keys(both["CACHEKIT_REDIS_URL"], "ck:{proxy:*}:e:*")
    assert not keys(both["REDIS_URL"], "ck:{proxy:*")
