"""Throughput of CacheMiddleware serving exact hits vs. a bare app answering constant JSON.

    python benchmarks/middleware_throughput.py [--duration 5] [--concurrency 32]

One run, same machine, same uvicorn settings: first the bare Starlette app (reads the
body, answers a constant ~400-byte chat completion), then the same app behind
``CacheMiddleware`` with every request an exact hit (64 distinct prompts, pre-warmed, so
each request pays the body read, key digest, one Redis round trip and the replay). The
load comes from a separate process on loopback: a small asyncio HTTP/1.1 keep-alive
client with N connections for a fixed duration (the first second is warm-up and not
counted). Redis 8 is started with ``cachekit._server.RedisServer``. The result is written
to the "middleware_throughput" section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp

from benchmarks._report import machine, redis_version, versions, write_section
from cachekit import LLMCache
from cachekit._server import RedisServer
from cachekit.middleware import CacheMiddleware

PATH = "/v1/chat/completions"
PROMPTS = 64
ANSWER = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "gpt-4o-mini",
        "system_fingerprint": "fp_bench",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Redis is an in-memory data store used as a cache, "
                    "message broker and database; it keeps data in RAM for speed.",
                    "refusal": None,
                },
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 21, "completion_tokens": 27, "total_tokens": 48},
    }
).encode()


def request_body(i: int) -> bytes:
    return json.dumps(
        {
            "model": "gpt-4o-mini",
            "temperature": 0,
            "messages": [
                {"role": "system", "content": "You are a concise assistant."},
                {"role": "user", "content": f"Question number {i}: what is Redis good for?"},
            ],
        }
    ).encode()


# -- the servers -----------------------------------------------------------------------------


def bare_app() -> Starlette:
    async def chat(request: Request) -> Response:
        await request.body()
        return Response(ANSWER, media_type="application/json")

    return Starlette(routes=[Route(PATH, chat, methods=["POST"])])


class Served:
    def __init__(self, app: ASGIApp) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(2048)
        self.port = self.sock.getsockname()[1]
        config = uvicorn.Config(
            app, log_config=None, log_level="warning", access_log=False, lifespan="off"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


# -- the load generator (runs in its own process) --------------------------------------------


async def _worker(
    port: int,
    requests: list[bytes],
    offset: int,
    warm_until: float,
    deadline: float,
    out: dict[str, Any],
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    i = offset
    try:
        while time.perf_counter() < deadline:
            payload = requests[i % len(requests)]
            i += 1
            started = time.perf_counter()
            writer.write(payload)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            elapsed = time.perf_counter() - started
            if started < warm_until:
                continue
            out["latencies"].append(elapsed)
            if not head.startswith(b"HTTP/1.1 200"):
                out["errors"] += 1
            if b"x-cache: HIT" in head:
                out["hits"] += 1
    finally:
        writer.close()


async def _load(port: int, concurrency: int, duration: float, warmup: float) -> dict[str, Any]:
    requests = []
    for i in range(PROMPTS):
        body = request_body(i)
        requests.append(
            (
                f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode()
            + body
        )
    out: dict[str, Any] = {"latencies": [], "errors": 0, "hits": 0}
    start = time.perf_counter()
    warm_until, deadline = start + warmup, start + warmup + duration
    await asyncio.gather(
        *(_worker(port, requests, k, warm_until, deadline, out) for k in range(concurrency))
    )
    measured = time.perf_counter() - warm_until
    lat = sorted(out["latencies"])
    q = statistics.quantiles(lat, n=100) if len(lat) >= 2 else [0.0] * 99
    return {
        "requests": len(lat),
        "rps": len(lat) / measured,
        "p50_ms": q[49] * 1000,
        "p95_ms": q[94] * 1000,
        "p99_ms": q[98] * 1000,
        "errors": out["errors"],
        "hits": out["hits"],
    }


def run_load(port: int, concurrency: int, duration: float, warmup: float) -> dict[str, Any]:
    """Drive ``port`` from a separate process; bounded by a hard timeout."""
    cmd = [
        sys.executable,
        __file__,
        "--load-port",
        str(port),
        "--concurrency",
        str(concurrency),
        "--duration",
        str(duration),
        "--warmup",
        str(warmup),
    ]
    done = subprocess.run(
        cmd, capture_output=True, text=True, timeout=duration + warmup + 60, check=True
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# -- the benchmark -----------------------------------------------------------------------------


BARE = "bare app, constant JSON"
HITS = "CacheMiddleware, exact hits"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=4.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3, help="bare/hits pairs, alternating")
    parser.add_argument("--load-port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--no-write", action="store_true", help="do not update RESULTS.md")
    args = parser.parse_args()
    if args.load_port:
        result = asyncio.run(_load(args.load_port, args.concurrency, args.duration, args.warmup))
        print(json.dumps(result))
        return

    load_before = os.getloadavg()[0]
    runs: list[tuple[int, str, dict[str, Any]]] = []
    with RedisServer() as redis_server:
        cache = LLMCache.from_url(redis_server.url)
        bare = Served(bare_app())
        cached = Served(
            CacheMiddleware(bare_app(), cache=cache, allow_global=True, namespace="bench")
        )
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{cached.port}") as client:
                for i in range(PROMPTS):
                    body = request_body(i)
                    headers = {"content-type": "application/json"}
                    client.post(PATH, content=body, headers=headers)
                    check = client.post(PATH, content=body, headers=headers)
                    assert check.headers["x-cache"] == "HIT", check.headers
            # Alternating rounds: the machine is shared, so drift hits both sides alike.
            for round_no in range(1, args.rounds + 1):
                for name, served in ((BARE, bare), (HITS, cached)):
                    result = run_load(served.port, args.concurrency, args.duration, args.warmup)
                    runs.append((round_no, name, result))
        finally:
            bare.stop()
            cached.stop()
            cache.close()

    def median_of(name: str, field: str) -> float:
        return statistics.median(r[field] for _, n, r in runs if n == name)

    ratios = [
        hit["rps"] / base["rps"]
        for (_, _, base), (_, _, hit) in zip(runs[::2], runs[1::2], strict=True)
    ]
    ratio = median_of(HITS, "rps") / median_of(BARE, "rps")
    rows = [
        "| round | server | requests/s | p50 ms | p95 ms | p99 ms | hits | errors |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for round_no, name, r in runs:
        rows.append(
            f"| {round_no} | {name} | {r['rps']:.0f} | {r['p50_ms']:.2f} | {r['p95_ms']:.2f} | "
            f"{r['p99_ms']:.2f} | {r['hits']} | {r['errors']} |"
        )
    for name in (BARE, HITS):
        rows.append(
            f"| median | {name} | {median_of(name, 'rps'):.0f} | {median_of(name, 'p50_ms'):.2f} "
            f"| {median_of(name, 'p95_ms'):.2f} | {median_of(name, 'p99_ms'):.2f} | | |"
        )
    command = "python benchmarks/middleware_throughput.py " + " ".join(
        f"--{k} {v}"
        for k, v in (
            ("duration", args.duration),
            ("warmup", args.warmup),
            ("concurrency", args.concurrency),
            ("rounds", args.rounds),
        )
    )
    md = "\n".join(
        [
            "## middleware_throughput",
            "",
            "Exact hits through `CacheMiddleware` vs. the same Starlette app answering a "
            "constant JSON without it; one uvicorn worker each (h11, asyncio loop), same run, "
            "alternating rounds. Load: a separate process, "
            f"{args.concurrency} keep-alive HTTP/1.1 connections on loopback for "
            f"{args.duration:g} s after {args.warmup:g} s warm-up per run; {PROMPTS} distinct "
            "prompts, pre-warmed, so every request is a hit (body read, key digest, one Redis "
            "round trip, replay). Redis on the same machine (loopback TCP).",
            "",
            f"- machine: {machine()}",
            "- versions: "
            + versions("starlette", "uvicorn", "redis", "hiredis", "httptools", "uvloop")
            + f", Redis server {redis_version()}",
            f"- command: `{command}`",
            f"- 1-minute load average when the run started: {load_before:.1f} "
            f"(on {os.cpu_count()} cores, shared with other processes)",
            "",
            *rows,
            "",
            f"**Ratio of medians (hits / bare): {ratio:.2f}x** (goal >= 0.8x, #12); per round: "
            + ", ".join(f"{r:.2f}x" for r in ratios)
            + ". The load generator, the app server and Redis share the cores; each hit adds "
            "a Redis round trip, i.e. two more context switches, which costs most on a busy "
            "machine, so the ratio is a floor.",
        ]
    )
    print(md)
    if not args.no_write:
        write_section("middleware_throughput", md)


if __name__ == "__main__":
    main()
