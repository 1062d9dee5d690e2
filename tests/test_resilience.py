"""Faults on real servers: Redis killed, hung, a cluster primary lost; single-flight.

Every destructive test runs its own ``RedisServer`` (never the session one). The machine
running the suite is small and shared, so no assertion is a tight timing: a call's added
latency must stay within its budget times three plus a second, and "fast" means "well
under the budget", not a number of microseconds.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.cluster import key_slot

from cachekit import Budgets, LLMCache, cached_llm, last_result
from cachekit._layout import Space, encode_tenant
from cachekit._server import RedisServer, start_cluster

REPO = Path(__file__).resolve().parents[1]

#: Behaviour tests (single-flight): every stage gets plenty of time on a loaded machine.
GENEROUS = Budgets(
    connect=10, command=10, lookup=10, embed=30, search=10, store=10, pool_wait=10, flight_wait=60
)
#: Fault tests: budgets small enough that an outage costs each call little. The flight
#: lease is short too (the function takes milliseconds): a lock left behind by a holder
#: that lost its connection then costs a waiter at most the lease.
TIGHT = Budgets(
    connect=0.3,
    command=0.3,
    lookup=0.3,
    store=0.5,
    pool_wait=0.3,
    flight_wait=3.0,
    flight_lease=1.0,
)


def added_bound(budgets: Budgets) -> float:
    """The most a cache failure may add to one call: lookup + lock, times 3, plus 1 s."""
    return (budgets.lookup + budgets.command) * 3 + 1.0


# -- a steady load through the decorator ------------------------------------------------

#: Seconds the wrapped function itself ran during the current call (0 when it did not).
_fn_time: contextvars.ContextVar[float] = contextvars.ContextVar("fn_time", default=0.0)


def answer_of(prompt: str) -> str:
    return f"answer to {prompt}"


@dataclass(frozen=True, slots=True)
class Call:
    """One user call made by the load: when, how long the cache added, what came back."""

    started: float
    added: float
    status: str
    reason: str | None
    ok: bool
    error: str | None = None


class Load:
    """``tasks`` concurrent callers asking random prompts of a small set until stopped."""

    def __init__(self, prompts: int = 40, fn_seconds: float = 0.005) -> None:
        self.prompts = [f"question number {i}" for i in range(prompts)]
        self.fn_seconds = fn_seconds
        self.calls: list[Call] = []
        self.origin = time.monotonic()
        self.upstream = 0

    def now(self) -> float:
        return time.monotonic() - self.origin

    def record(self, started: float, wall: float, prompt: str, value: Any, err: str | None) -> None:
        r = last_result()
        self.calls.append(
            Call(
                started=started,
                added=wall - _fn_time.get(),
                status=r.status if r is not None and err is None else "raised",
                reason=r.reason if r is not None else None,
                ok=err is None and value == answer_of(prompt),
                error=err,
            )
        )

    def async_function(self, cache: LLMCache, namespace: str) -> Callable[[str], Awaitable[str]]:
        @cached_llm(namespace=namespace, cache=cache)
        async def ask(prompt: str) -> str:
            t0 = time.monotonic()
            self.upstream += 1
            await asyncio.sleep(self.fn_seconds)
            _fn_time.set(time.monotonic() - t0)
            return answer_of(prompt)

        return ask

    def sync_function(self, cache: LLMCache, namespace: str) -> Callable[[str], str]:
        @cached_llm(namespace=namespace, cache=cache)
        def ask(prompt: str) -> str:
            t0 = time.monotonic()
            self.upstream += 1
            time.sleep(self.fn_seconds)
            _fn_time.set(time.monotonic() - t0)
            return answer_of(prompt)

        return ask

    async def run_async(
        self, ask: Callable[[str], Awaitable[str]], tasks: int, stop: asyncio.Event
    ) -> None:
        async def worker(seed: int) -> None:
            rng = random.Random(seed)
            while not stop.is_set():
                prompt = rng.choice(self.prompts)
                _fn_time.set(0.0)
                started = self.now()
                t0 = time.monotonic()
                try:
                    value: Any = await ask(prompt)
                    err = None
                except Exception as exc:  # noqa: BLE001 - a raised call is what we count
                    value, err = None, f"{type(exc).__name__}: {exc}"
                self.record(started, time.monotonic() - t0, prompt, value, err)
                await asyncio.sleep(rng.uniform(0.001, 0.01))

        await asyncio.gather(*(worker(i) for i in range(tasks)))

    def run_threads(self, ask: Callable[[str], str], threads: int, stop: threading.Event) -> None:
        def worker(seed: int) -> None:
            rng = random.Random(seed)
            while not stop.is_set():
                prompt = rng.choice(self.prompts)
                _fn_time.set(0.0)
                started = self.now()
                t0 = time.monotonic()
                try:
                    value: Any = ask(prompt)
                    err = None
                except Exception as exc:  # noqa: BLE001 - a raised call is what we count
                    value, err = None, f"{type(exc).__name__}: {exc}"
                self.record(started, time.monotonic() - t0, prompt, value, err)
                time.sleep(rng.uniform(0.001, 0.01))

        pool = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join(60)

    def between(self, start: float, end: float) -> list[Call]:
        return [c for c in self.calls if start <= c.started < end]

    def summary(self) -> str:
        return f"{len(self.calls)} calls, statuses {dict(Counter(c.status for c in self.calls))}"


def check_load(load: Load, budgets: Budgets) -> None:
    """Zero failed calls, zero wrong answers, every call within its budget margin."""
    assert load.calls, "the load made no calls"
    raised = [c for c in load.calls if c.error is not None]
    assert not raised, f"{len(raised)} user calls raised, e.g. {raised[0].error}"
    wrong = [c for c in load.calls if not c.ok]
    assert not wrong, f"{len(wrong)} wrong answers, e.g. {wrong[0]}"
    bound = added_bound(budgets)
    slow = sorted((c for c in load.calls if c.added > bound), key=lambda c: -c.added)
    assert not slow, f"{len(slow)} calls added more than {bound:.1f}s, worst {slow[0]}"


async def recovered_async(
    ask: Callable[[str], Awaitable[str]], cache: LLMCache, within: float
) -> None:
    """After an outage: the same question twice becomes a hit again (breaker closed)."""
    deadline = time.monotonic() + within
    n = 0
    while time.monotonic() < deadline:
        prompt = f"recovery probe {n}"
        n += 1
        assert await ask(prompt) == answer_of(prompt)
        await cache.drain()
        assert await ask(prompt) == answer_of(prompt)
        r = last_result()
        if r is not None and r.status == "exact":
            return
        await asyncio.sleep(0.2)
    pytest.fail(f"no exact hit within {within}s after the outage (breaker {cache.breaker.state})")


# -- (a) Redis killed and restarted under load -----------------------------------------


async def test_redis_killed_and_restarted_under_async_load(own_server: RedisServer) -> None:
    load = Load()
    cache = LLMCache.from_url(own_server.url, budgets=TIGHT, breaker_cooldown=0.5)
    ask = load.async_function(cache, "kill")
    stop = asyncio.Event()
    runner = asyncio.create_task(load.run_async(ask, 20, stop))
    try:
        await asyncio.sleep(1.5)
        up_hits = sum(c.status == "exact" for c in load.calls)
        killed_at = load.now()
        own_server.kill()
        await asyncio.sleep(2.0)
        restarted_at = load.now()
        await asyncio.to_thread(own_server.restart)
        await asyncio.sleep(3.0)
    finally:
        stop.set()
        await runner
    check_load(load, TIGHT)
    assert up_hits > 0, load.summary()
    down = load.between(killed_at + 0.1, restarted_at)
    assert down and any(c.status == "error" for c in down), load.summary()
    assert cache.breaker.opened >= 1
    # Recovery without anyone's help: hits again once the server is back.
    after = load.between(restarted_at + 1.5, load.now())
    assert any(c.status == "exact" for c in after), (
        f"no hits after the restart: {Counter(c.status for c in after)}; {load.summary()}"
    )
    await recovered_async(ask, cache, within=10)
    await cache.aclose()


def test_redis_killed_and_restarted_under_sync_load(own_server: RedisServer) -> None:
    load = Load()
    cache = LLMCache.from_url(own_server.url, budgets=TIGHT, breaker_cooldown=0.5)
    ask = load.sync_function(cache, "kill-sync")
    stop = threading.Event()
    runner = threading.Thread(target=load.run_threads, args=(ask, 10, stop), daemon=True)
    runner.start()
    try:
        time.sleep(1.5)
        killed_at = load.now()
        own_server.kill()
        time.sleep(2.0)
        restarted_at = load.now()
        own_server.restart()
        time.sleep(3.0)
    finally:
        stop.set()
        runner.join(60)
    check_load(load, TIGHT)
    assert any(c.status == "error" for c in load.between(killed_at + 0.1, restarted_at))
    after = load.between(restarted_at + 1.5, load.now())
    assert any(c.status == "exact" for c in after), load.summary()
    # Sequential check: no wrong answer afterwards, and a repeat is a hit.
    for i in range(5):
        prompt = f"after the outage {i}"
        assert ask(prompt) == answer_of(prompt)
        cache.drain_sync()
        assert ask(prompt) == answer_of(prompt)
        assert last_result().status == "exact"  # type: ignore[union-attr]
    cache.close()


async def test_pooled_connections_from_before_a_restart_do_not_fail_calls(
    own_server: RedisServer,
) -> None:
    """A restart leaves every pooled connection dead: the next command on each must not be
    a cache error (CI saw "Connection closed by server" on calls after a restart)."""
    cache = LLMCache.from_url(own_server.url, budgets=TIGHT, breaker_threshold=100)

    @cached_llm(namespace="restart-pool", cache=cache)
    async def ask(prompt: str) -> str:
        await asyncio.sleep(0.02)  # overlapping calls hold several pooled connections
        return answer_of(prompt)

    async def one(prompt: str) -> str:
        assert await ask(prompt) == answer_of(prompt)
        r = last_result()
        assert r is not None
        return f"{r.status}: {r.reason}" if r.status == "error" else r.status

    async def burst(tag: str) -> list[str]:
        return list(await asyncio.gather(*(one(f"{tag} {i}") for i in range(8))))

    try:
        assert await burst("before") == ["miss"] * 8
        await cache.drain()
        assert await burst("before") == ["exact"] * 8
        own_server.restart()  # no persistence: the entries are gone, the server is fine
        assert await burst("after") == ["miss"] * 8
        await cache.drain()
        assert await burst("after") == ["exact"] * 8
    finally:
        await cache.aclose()


# -- (b) Redis hung longer than the budget ----------------------------------------------


def _hang(server: RedisServer, how: str, seconds: float) -> threading.Thread | None:
    """Make the server stop answering for ``seconds`` (from a client of its own)."""
    client = redis.Redis(port=server.port)
    if how == "pause":
        client.execute_command("CLIENT", "PAUSE", int(seconds * 1000), "ALL")
        client.close()
        return None

    def sleep() -> None:
        try:
            client.execute_command("DEBUG", "SLEEP", seconds)
        finally:
            client.close()

    thread = threading.Thread(target=sleep, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("how", ["pause", "debug-sleep"])
async def test_redis_hung_longer_than_the_budget(own_server: RedisServer, how: str) -> None:
    load = Load(prompts=10)
    cache = LLMCache.from_url(
        own_server.url, budgets=TIGHT, breaker_threshold=5, breaker_cooldown=0.5
    )
    ask = load.async_function(cache, "hang")
    stop = asyncio.Event()
    runner = asyncio.create_task(load.run_async(ask, 8, stop))
    sleeper = None
    try:
        await asyncio.sleep(1.0)
        hung_at = load.now()
        sleeper = _hang(own_server, how, 2.5)
        await asyncio.sleep(2.5)
        # The hang began after hung_at, so it lasts at least until hung_at + 2.5, however
        # late this sleep wakes up: on a stalled box (CI once) the sleep overshot and the
        # window below took in a call made after Redis had resumed (an exact hit).
        resumed_at = min(load.now(), hung_at + 2.5)
        await asyncio.sleep(2.5)
    finally:
        stop.set()
        await runner
        if sleeper is not None:
            await asyncio.to_thread(sleeper.join, 10)
    check_load(load, TIGHT)
    # Well inside the hang: every call either failed open after its lookup budget or was
    # handed the value of an identical call already in flight (from memory).
    hung = load.between(hung_at + 0.5, resumed_at - 0.5)
    assert hung, load.summary()
    assert all(c.status == "error" or "single-flight" in (c.reason or "") for c in hung), Counter(
        (c.status, c.reason) for c in hung
    )
    assert any(c.reason and "lookup failed" in c.reason for c in hung), (
        "no call waited for its budget and failed open",
        Counter((c.status, c.reason) for c in hung),
        load.summary(),
    )
    after = load.between(resumed_at + 1.0, load.now())
    assert any(c.status == "exact" for c in after), load.summary()
    await recovered_async(ask, cache, within=10)
    await cache.aclose()


# -- a TCP path to Redis that can go slow or silent (a network fault) --------------------


class FaultyLink:
    """A loopback TCP proxy to a real Redis whose replies can be delayed or withheld.

    ``delay``: seconds added before each chunk the server sends. ``silent``: replies are
    held back (requests still reach Redis), like a partition on the way back.
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.delay = 0.0
        self.silent = False
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> FaultyLink:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        self._writers += [writer, up_writer]

        async def requests() -> None:
            while data := await reader.read(65536):
                up_writer.write(data)
                await up_writer.drain()

        async def replies() -> None:
            while data := await up_reader.read(65536):
                while self.silent:
                    await asyncio.sleep(0.01)
                if self.delay:
                    await asyncio.sleep(self.delay)
                writer.write(data)
                await writer.drain()

        try:
            await asyncio.gather(requests(), replies())
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            for w in (writer, up_writer):
                w.close()

    async def close(self) -> None:
        for w in self._writers:
            w.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


# -- (d) the circuit breaker ---------------------------------------------------------


async def test_breaker_opens_skips_without_waiting_then_closes(own_server: RedisServer) -> None:
    link = await FaultyLink(own_server.port).start()
    budgets = Budgets(connect=0.5, command=0.5, lookup=0.5, store=0.5, pool_wait=0.5)
    cache = LLMCache.from_url(link.url, budgets=budgets, breaker_threshold=3, breaker_cooldown=1.0)
    load = Load()
    ask = load.async_function(cache, "breaker")
    assert await ask("warm") == answer_of("warm")
    await cache.drain()
    assert await ask("warm") == answer_of("warm")
    assert last_result().status == "exact"  # type: ignore[union-attr]
    assert cache.breaker.state == "closed" and cache.breaker.opened == 0

    link.silent = True
    # Each of the first `threshold` calls waits for its lookup budget, then fails open.
    for i in range(3):
        t0 = time.monotonic()
        assert await ask(f"p{i}") == answer_of(f"p{i}")
        r = last_result()
        assert r is not None and r.status == "error" and "lookup failed" in (r.reason or "")
        assert time.monotonic() - t0 >= budgets.lookup * 0.9
    assert cache.breaker.opened == 1 and cache.breaker.state == "open"
    # While open: errors at once, nowhere near the budget.
    waits = []
    for i in range(20):
        t0 = time.monotonic()
        assert await ask(f"open{i}") == answer_of(f"open{i}")
        waits.append(time.monotonic() - t0)
        r = last_result()
        assert r is not None and r.status == "error" and "circuit open" in (r.reason or "")
    assert max(waits) < budgets.lookup * 0.8, waits
    assert sorted(waits)[len(waits) // 2] < budgets.lookup / 5, waits
    # After the cool-down one probe goes through; Redis is still unreachable: open again.
    await asyncio.sleep(cache.breaker.cooldown + 0.1)
    assert cache.breaker.state == "half-open"
    assert await ask("probe") == answer_of("probe")
    assert cache.breaker.opened == 2 and cache.breaker.state == "open"

    link.silent = False
    await asyncio.sleep(cache.breaker.cooldown + 0.1)
    assert await ask("warm") == answer_of("warm")  # the probe: succeeds, closes
    r = last_result()
    assert r is not None and r.status == "exact", r
    assert cache.breaker.state == "closed" and cache.breaker.opened == 2
    for _ in range(5):
        assert await ask("warm") == answer_of("warm")
        assert last_result().status == "exact"  # type: ignore[union-attr]
    await cache.aclose()
    await link.close()


async def test_lock_whose_reply_was_lost_does_not_stall_the_next_caller(
    own_server: RedisServer,
) -> None:
    """A lock SET that reached Redis after its caller gave up must not block others.

    The reply of the lock's SET NX comes later than the command budget: the caller fails
    open; the lock it never knew it had must be released, or it would stay for the whole
    lease with nobody computing the answer and the next caller would poll ``flight_wait``.
    """
    link = await FaultyLink(own_server.port).start()
    budgets = Budgets(connect=3, command=0.3, lookup=3, store=3, pool_wait=3, flight_wait=5)
    cache = LLMCache.from_url(link.url, budgets=budgets)
    load = Load()
    ask = load.async_function(cache, "lost-lock")
    assert await ask("warm") == answer_of("warm")
    await cache.drain()
    link.delay = 0.6  # a lookup (budget 3 s) still answers; the lock (0.3 s) times out
    assert await ask("q") == answer_of("q")
    r = last_result()
    assert r is not None and r.status == "error" and "single-flight" in (r.reason or ""), r
    link.delay = 0.0
    await asyncio.sleep(1.0)
    await cache.drain()
    _fn_time.set(0.0)
    t0 = time.monotonic()
    assert await ask("q") == answer_of("q")
    added = time.monotonic() - t0 - _fn_time.get()
    await cache.aclose()
    await link.close()
    assert added < 2.0, f"the next caller waited {added:.1f}s for a lock no one holds"


async def test_followers_that_outwait_flight_wait_get_the_answer(redis_url: str) -> None:
    """Followers give up on a leader slower than flight_wait: they call the function.

    A follower's timeout must not cancel the flight's shared future (``asyncio.wrap_future``
    would), or every other follower of that flight, and the one that re-joins it, would
    raise CancelledError.
    """
    calls: list[str] = []
    budgets = Budgets(connect=10, command=10, lookup=10, store=10, pool_wait=10, flight_wait=0.3)
    async with LLMCache.from_url(redis_url, budgets=budgets) as cache:

        @cached_llm(namespace="slow-leader", cache=cache)
        async def ask(prompt: str) -> str:
            calls.append(prompt)
            await asyncio.sleep(1.0)
            return answer_of(prompt)

        leader = asyncio.create_task(ask("slow"))
        await asyncio.sleep(0.2)  # the leader is in flight
        results = await asyncio.gather(
            leader, *(ask("slow") for _ in range(2)), return_exceptions=True
        )
    assert len(calls) >= 1
    assert results == [answer_of("slow")] * 3, results


# -- (c) a cluster primary killed ----------------------------------------------------


def _primary_of(nodes: list[RedisServer], slot: int) -> int:
    """Port of the node serving ``slot`` now (asks the first live node)."""
    for node in nodes:
        if node.process is None:
            continue
        client = redis.Redis(port=node.port)
        try:
            for start, end, primary, *_ in client.execute_command("CLUSTER", "SLOTS"):
                if int(start) <= slot <= int(end):
                    return int(primary[1])
        except redis.RedisError:
            continue
        finally:
            client.close()
    raise AssertionError("no live node knows the slot map")


def _wait_replicas_in_sync(replicas: list[RedisServer], timeout: float = 30.0) -> None:
    """A replica that never finished its first sync refuses to fail over: wait for it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = []
        for node in replicas:
            client = redis.Redis(port=node.port)
            try:
                states.append(client.info("replication").get("master_link_status"))
            finally:
                client.close()
        if all(s == "up" for s in states):
            return
        time.sleep(0.1)
    pytest.fail(f"replicas not in sync after {timeout}s")


@dataclass
class Failover:
    """What the load saw while a cluster primary died and its replica took over."""

    on_victim: list[str]
    healthy: list[str]
    killed_at: float
    failed_over_at: float
    #: cache name -> [(started, tenant, status, right answer, reason)]
    calls: dict[str, list[tuple[float, str, str, bool, str]]]

    def statuses(self, cache: str, tenants: list[str], start: float, end: float) -> Counter[str]:
        return Counter(
            s for t0, org, s, *_ in self.calls[cache] if start <= t0 < end and org in tenants
        )

    def reasons(self, cache: str, tenants: list[str], start: float, end: float) -> Counter[str]:
        return Counter(
            r for t0, org, _, _, r in self.calls[cache] if start <= t0 < end and org in tenants
        )


async def _run_failover(nodes: list[RedisServer]) -> Failover:
    primaries = nodes[:3]
    victim = primaries[0]
    tenants = [f"org-{i}" for i in range(18)]
    slot_of = {t: key_slot(Space("cl", encode_tenant(t)).gen_key.encode()) for t in tenants}
    on_victim = [t for t in tenants if _primary_of(nodes, slot_of[t]) == victim.port]
    healthy = [t for t in tenants if t not in on_victim]
    assert on_victim and healthy
    seed = f"redis+cluster://127.0.0.1:{primaries[1].port}"
    caches = {
        # The defaults a user gets (one breaker for the whole cache), faster cool-down.
        "default": LLMCache.from_url(seed, budgets=TIGHT, breaker_cooldown=0.5),
        # The cluster client alone: a breaker that never opens.
        "no-breaker": LLMCache.from_url(seed, budgets=TIGHT, breaker_threshold=1_000_000),
    }
    calls: dict[str, list[tuple[float, str, str, bool, str]]] = {name: [] for name in caches}
    origin = time.monotonic()

    def make(cache: LLMCache) -> Callable[[str, str], Awaitable[str]]:
        @cached_llm(namespace="cl", cache=cache, tenant=lambda c: c.arguments["org"])
        async def ask(prompt: str, org: str) -> str:
            await asyncio.sleep(0.002)
            return f"{org}:{prompt}"

        return ask

    asks = {name: make(cache) for name, cache in caches.items()}

    async def worker(name: str, seed: int, stop: asyncio.Event) -> None:
        rng = random.Random(seed)
        while not stop.is_set():
            org, prompt = rng.choice(tenants), f"q{rng.randrange(5)}"
            started = time.monotonic() - origin
            value = await asks[name](prompt, org)
            r = last_result()
            status = r.status if r is not None else "?"
            reason = (r.reason or "") if r is not None else ""
            calls[name].append((started, org, status, value == f"{org}:{prompt}", reason))
            await asyncio.sleep(0.005)

    for org in tenants:  # every tenant has entries before the fault
        for i in range(5):
            await asks["default"](f"q{i}", org)
    await caches["default"].drain()
    stop = asyncio.Event()
    runner = asyncio.gather(*(worker(name, i, stop) for name in caches for i in range(6)))
    try:
        await asyncio.sleep(1.0)
        killed_at = time.monotonic() - origin
        await asyncio.to_thread(victim.kill)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            await asyncio.sleep(0.25)
            if await asyncio.to_thread(_primary_of, nodes, slot_of[on_victim[0]]) != victim.port:
                break
        failed_over_at = time.monotonic() - origin
        await asyncio.sleep(4.0)
    finally:
        stop.set()
        await runner
        for cache in caches.values():
            await cache.aclose()
    assert failed_over_at - killed_at < 20, "no failover within 20 s"
    return Failover(on_victim, healthy, killed_at, failed_over_at, calls)


@pytest.fixture(scope="module")
def failover() -> Iterator[Failover]:
    """One real failover (3 primaries + 3 replicas), observed by two caches at once."""
    with start_cluster(primaries=3, replicas=1) as nodes:
        _wait_replicas_in_sync(nodes[3:])
        yield asyncio.run(_run_failover(nodes))


@pytest.mark.parametrize("cache", ["default", "no-breaker"])
def test_cluster_primary_killed_fails_open_then_recovers(failover: Failover, cache: str) -> None:
    calls = failover.calls[cache]
    assert calls and all(ok for _, _, _, ok, _ in calls), "a wrong answer during the failover"
    # Surely down: a replica cannot take over before the node timeout (2 s) has passed.
    down_until = min(failover.failed_over_at - 0.3, failover.killed_at + 1.8)
    down = failover.statuses(cache, failover.on_victim, failover.killed_at + 0.3, down_until)
    assert down["error"] > 0 and down["exact"] == 0, down
    # After the replica took over, the dead shard's tenants hit again (data was replicated).
    after = failover.statuses(cache, failover.on_victim, failover.failed_over_at + 2.0, 1e9)
    assert after["exact"] > 0, after
    healthy_after = failover.statuses(cache, failover.healthy, failover.failed_over_at + 2.0, 1e9)
    assert healthy_after["exact"] > 0, healthy_after


# While a primary is down, redis-py's cluster client re-discovers the topology after
# every connection error to it, and every command of every shard waits for that; how many
# healthy-shard lookups then run past their budget depends on timing (measured: 0-85% of
# them during the outage window, the same before and after issue #9). What must hold: no
# wrong answer, the dead shard's breaker never switches healthy shards off, and healthy
# shards hit again while the dead shard is still failing over or right after.


def test_cluster_healthy_shards_keep_hitting_without_a_breaker(failover: Failover) -> None:
    during = failover.statuses("no-breaker", failover.healthy, failover.killed_at + 0.3, 1e9)
    assert during["exact"] > 0, during


@pytest.mark.xfail(
    strict=False,
    reason="known defect (issue #9 note): redis-py's cluster client re-discovers the "
    "topology inside whatever command comes next after an error on the dead node, so "
    "healthy tenants' lookups also fail (ConnectionError to the dead node, timeouts) and "
    "their slot breakers open in some runs (seen: 80 of 148 healthy calls skipped once, "
    "0 in 6 other runs)",
)
def test_cluster_dead_shard_does_not_open_the_breaker_for_healthy_shards(
    failover: Failover,
) -> None:
    window = (failover.killed_at + 0.3, failover.failed_over_at)
    reasons = failover.reasons("default", failover.healthy, *window)
    skipped = sum(n for r, n in reasons.items() if r.startswith("circuit open"))
    assert skipped == 0, reasons
    after = failover.statuses("default", failover.healthy, failover.killed_at + 0.3, 1e9)
    assert after["exact"] > 0, after


# -- single-flight -----------------------------------------------------------------------


async def test_fifty_concurrent_async_misses_run_the_function_once(redis_url: str) -> None:
    calls: list[str] = []
    async with LLMCache.from_url(redis_url, budgets=GENEROUS) as cache:

        @cached_llm(namespace="sf", cache=cache)
        async def ask(prompt: str) -> str:
            calls.append(prompt)
            await asyncio.sleep(0.5)
            return answer_of(prompt)

        values = await asyncio.gather(*(ask("the same question") for _ in range(50)))
        assert values == [answer_of("the same question")] * 50
        assert calls == ["the same question"]
        await cache.drain()
        assert await ask("the same question") == answer_of("the same question")
        assert last_result().status == "exact"  # type: ignore[union-attr]
        assert calls == ["the same question"]


def test_ten_threads_of_sync_misses_run_the_function_once(redis_url: str) -> None:
    calls: list[str] = []
    lock = threading.Lock()
    cache = LLMCache.from_url(redis_url, budgets=GENEROUS)

    @cached_llm(namespace="sf-sync", cache=cache)
    def ask(prompt: str) -> str:
        with lock:
            calls.append(prompt)
        time.sleep(0.5)
        return answer_of(prompt)

    barrier = threading.Barrier(10)
    values: list[str] = []
    statuses: list[str] = []

    def worker() -> None:
        barrier.wait()
        value = ask("one question")
        r = last_result()
        with lock:
            values.append(value)
            statuses.append(r.status if r is not None else "?")

    threads = [threading.Thread(target=worker) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    cache.close()
    assert values == [answer_of("one question")] * 10
    assert calls == ["one question"], statuses
    assert Counter(statuses) == {"miss": 1, "exact": 9}


async def test_identical_stream_waits_for_the_first_and_replays(redis_url: str) -> None:
    calls: list[str] = []
    async with LLMCache.from_url(redis_url, budgets=GENEROUS) as cache:

        @cached_llm(namespace="sf-stream", cache=cache)
        async def stream(prompt: str) -> AsyncIterator[str]:
            calls.append(prompt)
            for word in ("a", "slow", "streamed", "answer"):
                await asyncio.sleep(0.1)
                yield word

        async def consume(delay: float) -> tuple[list[str], str]:
            await asyncio.sleep(delay)
            items = [item async for item in stream("tell me")]
            r = last_result()
            return items, r.status if r is not None else "?"

        first, second, third = await asyncio.gather(consume(0), consume(0.05), consume(0.15))
        assert calls == ["tell me"]
        words = ["a", "slow", "streamed", "answer"]
        assert first == (words, "miss")
        assert second == (words, "exact") and third == (words, "exact")
        await cache.drain()
        assert await consume(0) == (words, "exact")
        assert calls == ["tell me"]


class _LateLock(LLMCache):
    """A process descheduled between its miss and its lock (or a slow lock round trip)."""

    gate: asyncio.Event
    reached: asyncio.Event

    async def try_lock(self, manifest: Any, generation: int) -> Any:
        self.reached.set()
        await self.gate.wait()
        return await super().try_lock(manifest, generation)


async def test_a_lock_taken_after_another_process_stored_does_not_call_again(
    redis_url: str,
) -> None:
    calls: list[str] = []
    fast = LLMCache.from_url(redis_url, budgets=GENEROUS)
    late = _LateLock.from_url(redis_url, budgets=GENEROUS)
    late.gate, late.reached = asyncio.Event(), asyncio.Event()

    def make(cache: LLMCache) -> Callable[[str], Awaitable[str]]:
        async def ask(prompt: str) -> str:
            calls.append(prompt)
            await asyncio.sleep(0.05)
            return answer_of(prompt)

        ask.__qualname__ = "ask_race"  # one function identity in both "processes"
        return cached_llm(namespace="race", cache=cache)(ask)

    ask_fast, ask_late = make(fast), make(late)
    late_call = asyncio.create_task(ask_late("q"))
    await asyncio.wait_for(late.reached.wait(), 30)  # it missed and is about to lock
    assert await ask_fast("q") == answer_of("q")
    await fast.drain()  # stored, and the lock released
    late.gate.set()
    assert await late_call == answer_of("q")
    await fast.aclose()
    await late.aclose()
    assert calls == ["q"], "the function ran again although its result was already stored"


def test_sync_callers_are_served_another_process_s_answer(redis_url: str) -> None:
    """Sync twin of the cross-process wait: one process calls, the other waits for its
    stored answer (None is an answer) and hands it to its own followers too."""
    calls: list[str] = []
    leading, release = threading.Event(), threading.Event()
    a = LLMCache.from_url(redis_url, budgets=GENEROUS)
    b = LLMCache.from_url(redis_url, budgets=GENEROUS)

    def make(cache: LLMCache) -> Callable[[str], None]:
        def ask(prompt: str) -> None:
            calls.append(prompt)
            leading.set()
            release.wait(30)

        ask.__qualname__ = "ask_sync_xproc"  # one function identity in both "processes"
        return cached_llm(namespace="sync-xproc", cache=cache)(ask)

    ask_a, ask_b = make(a), make(b)
    results: dict[str, Any] = {}

    def run(name: str, fn: Callable[[str], None]) -> None:
        results[name] = (fn("q"), last_result())

    threads = [threading.Thread(target=run, args=("a", ask_a))]
    threads[0].start()
    assert leading.wait(30)  # a holds the lock
    threads += [threading.Thread(target=run, args=(f"b{i}", ask_b)) for i in range(3)]
    for t in threads[1:]:
        t.start()
    time.sleep(0.3)  # b's leader polls, its followers wait on it
    release.set()
    for t in threads:
        t.join(30)
    a.close()
    b.close()
    assert calls == ["q"], "the function ran again although another process was calling it"
    reasons = Counter(r.reason for _, r in results.values() if r.status == "exact")
    assert reasons == {
        "single-flight: served the result of another process's call": 1,
        "single-flight: served the result of an identical call in flight": 2,
    }, results
    assert all(v is None for v, _ in results.values())


#: A worker process: waits at a Redis barrier, then makes ``n`` concurrent identical calls.
WORKER = textwrap.dedent(
    """
    import asyncio, json, os, sys
    import redis
    from cachekit import Budgets, LLMCache, cached_llm, last_result

    url, prompt, n, lease, seconds = sys.argv[1:6]
    n, lease, seconds = int(n), float(lease), float(seconds)
    counter = redis.Redis.from_url(url)

    async def main() -> None:
        budgets = Budgets(
            connect=10, command=10, lookup=10, store=10, pool_wait=10,
            flight_wait=60, flight_lease=lease,
        )
        async with LLMCache.from_url(url, budgets=budgets) as cache:

            async def ask(prompt: str) -> str:
                counter.incr("test:calls")
                counter.rpush("test:callers", os.getpid())
                await asyncio.sleep(seconds)
                return "answer to " + prompt

            # One function identity (part of the key) in every process, and the test's.
            ask.__module__, ask.__qualname__ = "xproc", "ask"
            ask = cached_llm(namespace="xproc", cache=cache)(ask)

            async def one() -> list:
                value = await ask(prompt)
                r = last_result()
                return [value, r.status if r else None]

            counter.incr("test:ready")
            while not counter.exists("test:go"):
                await asyncio.sleep(0.005)
            out = await asyncio.gather(*(one() for _ in range(n)))
        print(json.dumps(out))

    asyncio.run(main())
    """
)


def _spawn(tmp_path: Path, url: str, prompt: str, n: int, lease: float, seconds: float) -> Any:
    script = tmp_path / "sf_worker.py"
    script.write_text(WORKER)
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return subprocess.Popen(
        [sys.executable, str(script), url, prompt, str(n), str(lease), str(seconds)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=str(REPO),
        env=env,
    )


def _wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    pytest.fail(f"timed out waiting for {what}")


def test_four_processes_of_ten_concurrent_misses_call_once(
    redis_url: str, redis_sync: redis.Redis, tmp_path: Path
) -> None:
    procs = [_spawn(tmp_path, redis_url, "a shared question", 10, 60, 1.0) for _ in range(4)]
    try:
        _wait_for(lambda: int(redis_sync.get("test:ready") or 0) == 4, 60, "4 workers")
        redis_sync.set("test:go", 1)
        outputs = [p.communicate(timeout=90) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for (out, err), p in zip(outputs, procs, strict=True):
        assert p.returncode == 0, err[-2000:]
        results = json.loads(out.strip().splitlines()[-1])
        assert [v for v, _ in results] == ["answer to a shared question"] * 10
    assert int(redis_sync.get("test:calls") or 0) == 1, redis_sync.lrange("test:callers", 0, -1)


async def test_a_holder_that_dies_is_replaced_after_its_lease(
    redis_url: str, redis_sync: redis.Redis, tmp_path: Path
) -> None:
    lease = 2.0
    holder = _spawn(tmp_path, redis_url, "a doomed question", 1, lease, 120)
    try:
        _wait_for(lambda: int(redis_sync.get("test:ready") or 0) == 1, 60, "the holder")
        redis_sync.set("test:go", 1)
        _wait_for(lambda: int(redis_sync.get("test:calls") or 0) == 1, 60, "the holder's call")
        assert redis_sync.keys("ck:{xproc:*:lk:*"), "the holder should hold the flight lock"
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
    finally:
        if holder.poll() is None:
            holder.kill()
    budgets = Budgets(
        connect=10,
        command=10,
        lookup=10,
        store=10,
        pool_wait=10,
        flight_wait=60,
        flight_lease=lease,
    )
    cache = LLMCache.from_url(redis_url, budgets=budgets)
    mine: list[str] = []

    async def ask(prompt: str) -> str:
        mine.append(prompt)
        return "answer to " + prompt

    ask.__module__, ask.__qualname__ = "xproc", "ask"  # the worker's function identity
    cached = cached_llm(namespace="xproc", cache=cache)(ask)
    t0 = time.monotonic()
    value = await cached("a doomed question")
    waited = time.monotonic() - t0
    await cache.aclose()
    assert value == "answer to a doomed question"
    assert mine == ["a doomed question"]
    assert waited < lease + 15, f"waited {waited:.1f}s for a dead holder"
