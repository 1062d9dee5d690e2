"""The integration examples run as users run them: a fresh process, offline (the local
wire-format server and a throwaway Redis 8), and say what the cache did."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run_example(name: str) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY")}
    env["PYTHONPATH"] = str(ROOT)
    env["HF_HUB_OFFLINE"] = "1"
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / name)],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.splitlines()


def test_openai_transport_example() -> None:
    out = run_example("openai_transport.py")
    assert [line.split()[2] for line in out] == ["MISS", "HIT", "MISS", "HIT"], out
    assert all("echo:" in line for line in out)


def test_anthropic_transport_example() -> None:
    pytest.importorskip("httpx2")
    out = run_example("anthropic_transport.py")
    assert [line.split()[2] for line in out] == ["MISS", "HIT", "MISS", "HIT"], out
    assert all("echo:" in line for line in out)


def test_tracing_and_prices_example() -> None:
    pytest.importorskip("opentelemetry.sdk")
    out = run_example("tracing_and_prices.py")
    spans = [line.split()[1] for line in out if line.startswith("span ")]
    assert spans.count("cache.get") == 2 and "cache.put" in spans, out
    gets = [line for line in out if line.startswith("span cache.get")]
    assert "'cachekit.status': 'miss'" in gets[0] and "'cachekit.status': 'exact'" in gets[1]
    assert any(line.startswith("saved $") and "1 hit(s)" in line for line in out), out


def test_flask_example_with_the_default_test_client() -> None:
    out = run_example("flask_app.py")
    assert [line.split()[-1] for line in out] == ["MISS", "HIT", "MISS", "MISS", "HIT"], out
