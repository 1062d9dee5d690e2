"""Loading an embedder's model in the background, off every call's path."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from .errors import EmbedderError

if TYPE_CHECKING:
    from .embedders import Embedder

__all__ = ["Warmup"]

log = logging.getLogger("cachekit")


class Warmup:
    """Loads an embedder's model once, on a thread of its own, off every call's path.

    Embedders that need no loading (remote APIs, plain functions, a model already in
    memory) are ready at once. One that has an async ``warmup()`` (the local
    sentence-transformers model: 5-8 s on a cold process) is run on a daemon thread with
    its own event loop, so neither the caller's loop nor a lookup budget ever waits for it.
    """

    def __init__(self, embedder: Embedder | None) -> None:
        self._embedder = embedder
        self._lock = threading.Lock()
        self._future: concurrent.futures.Future[None] | None = None
        inner = getattr(embedder, "inner", embedder)
        self._needed = (
            embedder is not None
            and callable(getattr(inner, "warmup", None))
            and getattr(inner, "loaded", False) is not True
        )
        self._target: Any = inner

    @property
    def ready(self) -> bool:
        if not self._needed:
            return True
        fut = self._future
        return fut is not None and fut.done() and fut.exception() is None

    def start(self) -> concurrent.futures.Future[None] | None:
        """Start loading (idempotent); the future of the load, None when nothing loads."""
        if not self._needed:
            return None
        with self._lock:
            if self._future is None:
                self._future = concurrent.futures.Future()
                threading.Thread(
                    target=self._run, args=(self._future,), name="cachekit-warmup", daemon=True
                ).start()
            return self._future

    def _run(self, fut: concurrent.futures.Future[None]) -> None:
        started = time.perf_counter()
        try:
            asyncio.run(self._target.warmup())
        except Exception as exc:  # noqa: BLE001 - reported on the future and in the log
            log.warning(
                "cachekit: loading the embedding model failed; the semantic layer is off "
                "and calls use the exact layer alone: %s: %s",
                type(exc).__name__,
                exc,
            )
            error = exc if isinstance(exc, EmbedderError) else EmbedderError(str(exc))
            fut.set_exception(error)
            return
        log.info("cachekit: embedding model ready in %.1f s", time.perf_counter() - started)
        fut.set_result(None)
