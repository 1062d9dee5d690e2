"""Cache stampede: P processes x C concurrent identical misses -> how many upstream calls?

    python benchmarks/stampede.py [--processes 4] [--concurrency 50] [--rounds 5]

Each round, every worker process makes ``concurrency`` concurrent calls of one new prompt
through ``@cached_llm`` (async), all released at once by a Redis barrier. The wrapped
function plays an LLM: it INCRs a per-round Redis counter (the upstream call count) and
sleeps ``--llm-seconds``. With single-flight (the default) the goal is exactly one
upstream call per round, cluster-wide: in-process followers wait on the leader's future,
other processes find the leader's lock and poll for its stored result. The baseline, in
the same run with the same workers and prompts of its own, is ``single_flight=False``.
Redis 8 is started on a free loopback port. The result is written to the "stampede"
section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import redis
from _report import machine, redis_version, versions, write_section

from cachekit import Budgets, LLMCache, cached_llm, last_result
from cachekit._server import RedisServer

#: Generous budgets: this measures single-flight, not fail-open (see outage.py).
BUDGETS = Budgets(
    connect=10, command=10, lookup=10, store=10, pool_wait=10, flight_wait=60, flight_lease=60
)


# -- the worker process ------------------------------------------------------------------


async def worker(url: str, run: str, concurrency: int, rounds: int, llm: float, sf: bool) -> None:
    import redis.asyncio as aredis

    counter = aredis.Redis.from_url(url)
    async with LLMCache.from_url(
        url, budgets=BUDGETS, single_flight=sf, max_connections=concurrency + 8
    ) as cache:

        async def ask(prompt: str) -> str:
            await counter.incr(f"bench:calls:{prompt}")
            await asyncio.sleep(llm)
            return f"answer to {prompt}"

        # One function identity in every process (it is part of the key).
        ask.__module__, ask.__qualname__ = "stampede", "ask"
        cached = cached_llm(namespace="stampede", cache=cache)(ask)

        async def one(prompt: str) -> tuple[bool, str, float]:
            value = await cached(prompt)
            r = last_result()
            return value == f"answer to {prompt}", r.status if r else "?", time.time()

        for i in range(rounds):
            prompt = f"{run} round {i}: what is a cache stampede?"
            await counter.incr(f"bench:ready:{run}:{i}")
            while not await counter.exists(f"bench:go:{run}:{i}"):
                await asyncio.sleep(0.002)
            results = await asyncio.gather(
                *(one(prompt) for _ in range(concurrency)), return_exceptions=True
            )
            report: dict[str, Any] = {"pid": os.getpid(), "ok": 0, "statuses": {}, "end": 0.0}
            statuses: Counter[str] = Counter()
            for res in results:
                if isinstance(res, BaseException):
                    statuses[f"raised {type(res).__name__}"] += 1
                    continue
                ok, status, end = res
                report["ok"] += ok
                statuses[status] += 1
                report["end"] = max(report["end"], end)
            report["statuses"] = dict(statuses)
            await counter.rpush(f"bench:results:{run}:{i}", json.dumps(report))
    await counter.aclose()


# -- the controller ------------------------------------------------------------------------


def run_mode(
    url: str, processes: int, concurrency: int, rounds: int, llm: float, single_flight: bool
) -> list[dict[str, Any]]:
    run = uuid.uuid4().hex[:8]
    client = redis.Redis.from_url(url)
    args = [str(concurrency), str(rounds), str(llm), "1" if single_flight else "0"]
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, "--worker", url, run, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    out: list[dict[str, Any]] = []
    try:
        for i in range(rounds):
            deadline = time.monotonic() + 120
            while int(client.get(f"bench:ready:{run}:{i}") or 0) < processes:
                if time.monotonic() > deadline or any(p.poll() not in (None, 0) for p in procs):
                    raise RuntimeError("workers did not get ready: " + _errors(procs))
                time.sleep(0.005)
            started = time.time()
            client.set(f"bench:go:{run}:{i}", 1)
            while client.llen(f"bench:results:{run}:{i}") < processes:
                if time.monotonic() > deadline + 120:
                    raise RuntimeError("workers did not finish: " + _errors(procs))
                time.sleep(0.01)
            reports = [json.loads(x) for x in client.lrange(f"bench:results:{run}:{i}", 0, -1)]
            prompt = f"{run} round {i}: what is a cache stampede?"
            statuses: Counter[str] = Counter()
            for rep in reports:
                statuses.update(rep["statuses"])
            out.append(
                {
                    "round": i + 1,
                    "upstream": int(client.get(f"bench:calls:{prompt}") or 0),
                    "callers": processes * concurrency,
                    "right": sum(rep["ok"] for rep in reports),
                    "wall": max(rep["end"] for rep in reports) - started,
                    "statuses": dict(statuses),
                }
            )
        for p in procs:
            p.wait(60)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        client.close()
    return out


def _errors(procs: list[subprocess.Popen[str]]) -> str:
    out = []
    for p in procs:
        if p.poll() not in (None, 0):
            out.append((p.stderr.read() if p.stderr else "")[-1000:])
    return " | ".join(out) or "(no worker exited)"


def _fmt_statuses(statuses: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(statuses.items()))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--worker":
        url, run, concurrency, rounds, llm, sf = argv[1:7]
        asyncio.run(worker(url, run, int(concurrency), int(rounds), float(llm), sf == "1"))
        return 0
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=50, help="identical calls per process")
    parser.add_argument("--rounds", type=int, default=5, help="stampedes, each a new prompt")
    parser.add_argument("--llm-seconds", type=float, default=0.5, help="the fake LLM's latency")
    parser.add_argument("--redis-url", default=None)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    server: RedisServer | None = None
    url = args.redis_url
    if url is None:
        server = RedisServer().start()
        url = server.url
    load = os.getloadavg()[0]
    try:
        modes = {
            "single-flight (default)": run_mode(
                url, args.processes, args.concurrency, args.rounds, args.llm_seconds, True
            ),
            "baseline: single_flight=False": run_mode(
                url, args.processes, args.concurrency, args.rounds, args.llm_seconds, False
            ),
        }
    finally:
        if server is not None:
            server.stop()
    callers = args.processes * args.concurrency
    lines = [
        "## Stampede: identical concurrent misses across processes",
        "",
        f"- machine: {machine()}",
        f"- versions: Redis {redis_version()}, " + versions("redis", "hiredis", "wrapt"),
        f"- command: `python benchmarks/stampede.py --processes {args.processes} "
        f"--concurrency {args.concurrency} --rounds {args.rounds} "
        f"--llm-seconds {args.llm_seconds}`",
        f"- load: {args.processes} processes x {args.concurrency} concurrent identical async "
        f"calls ({callers} callers) of one new prompt per round, released together by a Redis "
        f"barrier; the wrapped function INCRs a Redis counter and sleeps {args.llm_seconds} s "
        "(the LLM). Wall = barrier release to the last caller's answer.",
        f"- 1-minute load average when the run started: {load:.1f} (2 shared cores)",
        "",
        "| mode | round | upstream calls | callers | right answers | wall s | statuses |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for mode, rows in modes.items():
        for row in rows:
            lines.append(
                f"| {mode} | {row['round']} | **{row['upstream']}** | {row['callers']} | "
                f"{row['right']} | {row['wall']:.2f} | {_fmt_statuses(row['statuses'])} |"
            )
    sf_rows = modes["single-flight (default)"]
    base_rows = modes["baseline: single_flight=False"]
    exact_one = sum(r["upstream"] == 1 for r in sf_rows)
    all_right = all(r["right"] == r["callers"] for rows in modes.values() for r in rows)
    goal = "met" if exact_one == len(sf_rows) and all_right else "NOT met"
    lines += [
        "",
        f"Goal (exactly 1 upstream call per stampede, every caller right): **{goal}**: "
        f"{exact_one}/{len(sf_rows)} rounds with exactly one call (total "
        f"{sum(r['upstream'] for r in sf_rows)} calls for {len(sf_rows) * callers} callers; "
        f"median wall {statistics.median(r['wall'] for r in sf_rows):.2f} s). Baseline without "
        f"single-flight: {sum(r['upstream'] for r in base_rows)} calls for "
        f"{len(base_rows) * callers} callers (median wall "
        f"{statistics.median(r['wall'] for r in base_rows):.2f} s). Round 1 of each mode also "
        "opens the workers' connections. Followers in other processes poll for the stored "
        "result with a backoff capped at 0.2 s.",
    ]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        write_section("stampede", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
