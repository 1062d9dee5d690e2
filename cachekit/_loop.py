"""One long-lived background event loop for sync callers.

redis.asyncio connections belong to the loop that opened them. Sync code (sync
decorated functions, WSGI) has no loop, and ``asyncio.run()`` per call would open a new
loop and new connections every time. Instead the cache owns one daemon thread running
one loop for its whole life; sync callers submit coroutines to it and wait.
"""

from __future__ import annotations

import asyncio
import logging
import threading

__all__ = ["LoopThread", "on_a_loop"]

log = logging.getLogger("cachekit.loop")


def on_a_loop() -> bool:
    """Is an event loop running on this thread?"""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class LoopThread:
    """A daemon thread running an asyncio loop until :meth:`stop`."""

    def __init__(self, name: str = "cachekit-loop") -> None:
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The loop, started on first use."""
        with self._lock:
            if self._loop is None or self._loop.is_closed():
                ready = threading.Event()
                loop = asyncio.new_event_loop()

                def run() -> None:
                    asyncio.set_event_loop(loop)
                    loop.call_soon(ready.set)
                    loop.run_forever()

                thread = threading.Thread(target=run, name=self._name, daemon=True)
                thread.start()
                ready.wait()
                self._loop, self._thread = loop, thread
            return self._loop

    def stop(self, timeout: float = 5.0) -> None:
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None:
            return
        if thread is threading.current_thread():
            loop.stop()
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        if thread.is_alive():
            log.warning("cachekit background loop did not stop within %.1fs", timeout)
            return
        loop.close()
