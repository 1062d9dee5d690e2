"""What the caching proxy adds to a call, and what a hit saves, against calling the LLM
server directly, measured in one run.

    python benchmarks/proxy_overhead.py [--calls 200] [--rounds 3]

Three processes, as users run them: the OpenAI-wire test server (tests/llm_server.py,
answering at once: the "LLM" costs nothing, so every millisecond measured is transport
and cache), ``python -m cachekit proxy`` in front of it (exact layer only, and again with
``--embedder minilm``, torch on 1 thread), and this process driving the real ``openai``
SDK, one call at a time. Per round and target: ``--calls`` direct calls (the baseline),
as many proxy misses (each prompt new: forward + store) and as many proxy exact hits
(prompts seen before). Rounds alternate the targets, so drift on the shared machine
hits them alike. Written to the "proxy_overhead" section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import openai  # noqa: E402

from benchmarks._report import machine, redis_version, versions, write_section  # noqa: E402
from cachekit._server import RedisServer  # noqa: E402

UPSTREAM = """
import sys, time
from tests.llm_server import LocalOpenAIServer
with LocalOpenAIServer(port=int(sys.argv[1])):
    print("ready", flush=True)
    while True:
        time.sleep(3600)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(port: int, proc: subprocess.Popen[bytes], what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start") from None
            time.sleep(0.1)


def _time_calls(client: openai.OpenAI, prompts: list[str]) -> list[float]:
    out = []
    for prompt in prompts:
        started = time.perf_counter()
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}]
        )
        out.append(time.perf_counter() - started)
    return out


def _stats(samples: list[float]) -> tuple[float, float]:
    q = statistics.quantiles(samples, n=100)
    return statistics.median(samples) * 1000, q[94] * 1000


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--calls", type=int, default=200)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--no-write", action="store_true")
    args = p.parse_args()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    procs: list[subprocess.Popen[bytes]] = []
    samples: dict[str, list[float]] = {}
    load_before = os.getloadavg()[0]
    with RedisServer() as redis_server:
        try:
            up_port = _free_port()
            up = subprocess.Popen(
                [sys.executable, "-c", UPSTREAM, str(up_port)], env=env, cwd=REPO,
                stdout=subprocess.DEVNULL,
            )  # fmt: skip
            procs.append(up)
            _wait(up_port, up, "the LLM server")
            upstream = f"http://127.0.0.1:{up_port}/v1"
            proxies: dict[str, int] = {}
            for name, embedder in (("exact layer only", "none"), ("MiniLM semantic", "minilm")):
                port = _free_port()
                proc = subprocess.Popen(
                    [sys.executable, "-m", "cachekit", "proxy", "--upstream", upstream,
                     "--port", str(port), "--redis-url", redis_server.url,
                     "--namespace", f"bench-{embedder}", "--embedder", embedder,
                     "--log-level", "warning"],
                    env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )  # fmt: skip
                procs.append(proc)
                _wait(port, proc, f"the proxy ({name})")
                proxies[name] = port
            direct = openai.OpenAI(base_url=upstream, api_key="sk-bench", max_retries=0)
            clients = {
                name: openai.OpenAI(
                    base_url=f"http://127.0.0.1:{port}/v1", api_key="sk-bench", max_retries=0
                )
                for name, port in proxies.items()
            }
            # Warm-up: connections, the proxies' first lookups, MiniLM's first embedding.
            for client in (direct, *clients.values()):
                _time_calls(client, [f"warm-up {i}" for i in range(20)])
            for r in range(args.rounds):
                fresh = [f"round {r} question {i}: what is Redis for?" for i in range(args.calls)]
                samples.setdefault("direct", []).extend(_time_calls(direct, fresh))
                for name, client in clients.items():
                    samples.setdefault(f"proxy miss, {name}", []).extend(_time_calls(client, fresh))
                    time.sleep(0.5)  # the stores land (the proxy waits for them anyway)
                    samples.setdefault(f"proxy exact hit, {name}", []).extend(
                        _time_calls(client, fresh)
                    )
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
    base_median, _ = _stats(samples["direct"])
    rows = [
        "| path | median ms | p95 ms | median vs direct | median added (ms) |",
        "|---|---|---|---|---|",
    ]
    for name, values in samples.items():
        med, p95 = _stats(values)
        rows.append(
            f"| {name} | {med:.2f} | {p95:.2f} | {med / base_median:.2f}× "
            f"| {med - base_median:+.2f} |"
        )
    md = "\n".join(
        [
            "## Proxy overhead (`benchmarks/proxy_overhead.py`)",
            "",
            f"Machine: {machine()}. Redis {redis_version()}. "
            f"Versions: {versions('cachekit', 'openai', 'uvicorn', 'httpx', 'redis')}.",
            f"Command: `python benchmarks/proxy_overhead.py --calls {args.calls} --rounds "
            f"{args.rounds}`; load average before: {load_before:.2f}. One call at a time "
            "through the real `openai` SDK; the LLM server answers at once, so the numbers "
            "are transport + cache only. Baseline: the same SDK calling the LLM server "
            "directly, in the same run. MiniLM runs with torch on 1 thread. The direct "
            "call's own ~40 ms is the test server's latency on this machine (not the "
            "SDK's: a proxy hit through the same SDK takes a few ms), so read a miss's cost "
            "as the milliseconds it adds, not as a ratio.",
            "",
            *rows,
            "",
            f"{len(samples['direct'])} calls per path.",
        ]
    )
    print(md)
    if not args.no_write:
        write_section("proxy_overhead", md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
