"""The connection pool of a cache made from a URL: redis-py's blocking pool, minus its
per-command cost when a connection is free.

``BlockingConnectionPool`` takes an ``asyncio.Condition``, starts a timeout and records
observability counters on every ``get_connection``/``release``, even when a connection is
idle in the pool and nobody waits: ~30 µs a command here, a tenth of an exact hit. When a
connection is free (or nobody waits for one being released) this pool hands it over
directly; otherwise, or while redis-py's maintenance handling or its OpenTelemetry
metrics are on, it runs redis-py's own code, so waiting, limits and metrics behave as
redis-py documents them. redis-py has no switch for this; the fast path reads the same
private lists that ``ConnectionPool.get_available_connection`` does.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aredis
from redis import event as _event
from redis.asyncio.connection import AbstractConnection

try:  # redis-py >= 7: its OpenTelemetry metrics, recorded only on redis-py's own path
    from redis.asyncio.observability import recorder as _recorder
except ImportError:  # pragma: no cover - an older redis-py records nothing
    _recorder = None  # type: ignore[assignment]


#: Dispatched on every release, as redis-py does (re-authentication listens for it).
_released: Any = _event.AsyncAfterConnectionReleasedEvent


def _metrics_on() -> bool:
    return _recorder is not None and _recorder._get_or_create_collector() is not None


__all__ = ["FastBlockingPool"]


class FastBlockingPool(aredis.BlockingConnectionPool):
    """A :class:`redis.asyncio.BlockingConnectionPool` with an uncontended fast path."""

    def _direct(self) -> bool:
        return not getattr(self, "_in_maintenance", False) and not _metrics_on()

    async def get_connection(self, command_name: Any = None, *keys: Any, **options: Any) -> Any:
        available = self._available_connections
        if not available or not self._direct():
            return await super().get_connection()  # type: ignore[no-untyped-call]
        connection = available.pop()
        self._in_use_connections.add(connection)
        try:
            # As redis-py does: connected, and nothing unread left on it.
            await self.ensure_connection(connection)
        except BaseException:
            await self.release(connection)
            raise
        return connection

    async def release(self, connection: AbstractConnection) -> None:
        condition = self._condition
        # A waiter must be woken through the condition: redis-py's path does that.
        if condition.locked() or getattr(condition, "_waiters", None) or not self._direct():
            await super().release(connection)
            return
        self._in_use_connections.remove(connection)
        conn: Any = connection  # redis-py's connection methods are untyped
        if conn.should_reconnect():
            await conn.disconnect()
        self._available_connections.append(connection)
        dispatcher: Any = self._event_dispatcher
        await dispatcher.dispatch_async(_released(connection))
