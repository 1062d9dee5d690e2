"""A real Redis Cluster of throwaway local servers (tests, benchmarks).

Slots are assigned and nodes introduced with plain commands, so no ``redis-cli`` is
needed. Part of :mod:`cachekit._server`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

from ._server_proc import RedisServer
from .errors import RedisServerNotFoundError

__all__ = ["start_cluster"]


@contextlib.contextmanager
def start_cluster(primaries: int = 3, replicas: int = 0) -> Iterator[list[RedisServer]]:
    """Start a real Redis Cluster on loopback ports; yields its nodes (primaries first)."""
    nodes = [RedisServer(cluster=True) for _ in range(primaries * (1 + replicas))]
    try:
        for node in nodes:
            node.start()
        _create_cluster(nodes, primaries, replicas)
        yield nodes
    finally:
        for node in nodes:
            node.stop()


def _create_cluster(nodes: list[RedisServer], primaries: int, replicas: int) -> None:
    """Assign slots and meet nodes with plain commands (no redis-cli needed)."""
    import redis

    clients: list[Any] = [redis.Redis(port=n.port) for n in nodes]
    try:
        per = 16384 // primaries
        for i in range(primaries):
            start = i * per
            end = 16383 if i == primaries - 1 else (i + 1) * per - 1
            clients[i].execute_command("CLUSTER", "ADDSLOTSRANGE", start, end)
        for client in clients[1:]:
            client.execute_command("CLUSTER", "MEET", "127.0.0.1", nodes[0].port)
        _wait(lambda: all(len(_known(c)) == len(nodes) for c in clients), "nodes to meet")
        if replicas:
            ids = [c.execute_command("CLUSTER", "MYID") for c in clients[:primaries]]
            for r in range(replicas):
                for i in range(primaries):
                    replica = clients[primaries + r * primaries + i]
                    primary_id = ids[i].decode() if isinstance(ids[i], bytes) else ids[i]
                    _wait(
                        lambda rc=replica, pid=primary_id: _try_replicate(rc, pid),
                        "replica to attach",
                    )
        _wait(
            lambda: all(
                c.execute_command("CLUSTER", "INFO").decode().find("cluster_state:ok") >= 0
                for c in clients
            ),
            "cluster_state:ok",
        )
    finally:
        for c in clients:
            c.close()


def _known(client: object) -> list[str]:
    raw = client.execute_command("CLUSTER", "NODES")  # type: ignore[attr-defined]
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    return [line for line in text.splitlines() if line.strip()]


def _try_replicate(client: object, primary_id: str) -> bool:
    try:
        client.execute_command("CLUSTER", "REPLICATE", primary_id)  # type: ignore[attr-defined]
        return True
    except Exception:  # noqa: BLE001 - the primary may not be known yet; retry
        return False


def _wait(predicate: object, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise RedisServerNotFoundError(f"cluster did not come up: waiting for {what}")
