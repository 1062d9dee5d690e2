"""Lookups that missed, waiting for LangChain's ``update`` with the model's answer.

LangChain splits a miss into two calls (``lookup`` returns None, the model runs,
``update`` hands over its answer) from the same thread or task, and never says when the
model raised. Each miss waits here under ``(caller, tenant, prompt, llm_string)``, the
caller being the thread and task, so ``update`` completes the ticket its own lookup
began: the generation that lookup saw (an ``invalidate`` in between still wins), its
timing, its result. A waiting miss holds no flight and no lock (the adapter's pipeline
has ``single_flight=False``), so one whose model raised costs only its slot: the same
caller asking again replaces it, and past ``limit`` the oldest are dropped.
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import Hashable

from ._ticket import Miss

__all__ = ["PendingMisses", "caller"]


def caller() -> tuple[int, int]:
    """This thread and asyncio task (0 outside a task)."""
    try:
        task = asyncio.current_task()
    except RuntimeError:  # no running loop in this thread
        task = None
    return threading.get_ident(), 0 if task is None else id(task)


class PendingMisses:
    """A bounded, thread-safe map of misses waiting for their ``update``."""

    __slots__ = ("_lock", "_misses", "dropped", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._misses: OrderedDict[Hashable, Miss] = OrderedDict()
        #: Misses forgotten without an update: a model that raised, or more than
        #: ``limit`` waiting at once.
        self.dropped = 0

    def put(self, key: Hashable, miss: Miss) -> None:
        with self._lock:
            if self._misses.pop(key, None) is not None:
                self.dropped += 1  # the same caller asks again: its last model raised
            self._misses[key] = miss
            while len(self._misses) > self.limit:
                self._misses.popitem(last=False)
                self.dropped += 1

    def take(self, key: Hashable) -> Miss | None:
        with self._lock:
            return self._misses.pop(key, None)

    def __len__(self) -> int:
        return len(self._misses)
