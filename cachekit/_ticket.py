"""One call's trip through the pipeline, and what ``begin`` hands back: a hit or a miss.

An entry point builds a :class:`Ticket` (the key manifest, the caller's cache control,
how its values are encoded), gives it to :meth:`Pipeline.begin` and gets a :class:`Hit`
to serve or a :class:`Miss` to answer and hand to ``complete`` (or ``abort``).
"""

from __future__ import annotations

import concurrent.futures
from dataclasses import dataclass
from typing import Any, Protocol

from ._entry import LookupOutcome
from ._manifest import KeyManifest
from ._options import NOT_GIVEN
from .result import NO_CONTROL, CacheControl, Status

__all__ = ["Hit", "Miss", "NotStoredError", "Ticket", "ValueCodec"]


class NotStoredError(Exception):
    """Raised by :meth:`ValueCodec.encode` for a value that must not be stored; the
    message is the result's ``reason``."""


class ValueCodec(Protocol):
    """How one entry point's values become entries, and back. No I/O."""

    def decode(self, payload: bytes) -> Any:
        """The value of a stored payload; raises CodecError for a corrupt one."""

    def encode(self, value: Any) -> str:
        """The payload to store; raises CodecError (not cacheable) or NotStoredError."""

    def usage(self, value: Any, manifest: KeyManifest) -> tuple[tuple[int, int] | None, bool]:
        """``((input, output) tokens or None, estimated)`` for the savings a hit counts."""

    def model(self, value: Any, manifest: KeyManifest) -> str | None:
        """The model that answered (for pricing), when the request did not say."""


class Ticket:
    """One call's trip through the cache (mutable, lives for one call)."""

    __slots__ = (
        "codec",
        "control",
        "deadline",
        "failed",
        "flight",
        "flight_key",
        "lock",
        "manifest",
        "outcome",
        "reason",
        "reported",
        "semantic",
        "skipped",
        "span",
        "spent",
        "started",
        "stored",
        "trace_parent",
        "value",
        "wait",
    )

    def __init__(
        self, manifest: KeyManifest, codec: ValueCodec, control: CacheControl | None, started: float
    ) -> None:
        self.manifest = manifest
        self.codec = codec
        self.control = control if control is not None else NO_CONTROL
        self.started = started
        #: Time cachekit spent before the call went to the function (a miss's overhead).
        self.spent = 0.0
        self.outcome: LookupOutcome | None = None
        #: The answer, once found; ``NOT_GIVEN`` until then (None is a value a function
        #: may return and have cached).
        self.value: Any = NOT_GIVEN
        self.failed: str | None = None
        self.reason: str | None = None
        self.stored = False
        self.reported = False
        #: The cache was skipped on purpose after ``begin`` started (``reason`` says why).
        self.skipped = False
        self.semantic: bool | None = None
        #: May this call wait for an identical one in flight (False on an event loop's
        #: thread: the loop, perhaps the cache's own, would stall meanwhile).
        self.wait = True
        #: The in-process flight this call leads, and the cross-process lock it holds.
        self.flight: concurrent.futures.Future[Any] | None = None
        self.flight_key = ""
        self.lock: Any = None
        #: When a sync caller stops waiting for ``begin`` (monotonic; moved on by a wait
        #: for a flight, which has a budget of its own).
        self.deadline = 0.0
        #: Tracing (``_tracing``): the ``cache.get`` span and the caller's context it was
        #: opened in (None: not traced), the parent of the ``cache.put`` span.
        self.span: Any = None
        self.trace_parent: Any = None

    @property
    def answered(self) -> bool:
        """Has the call found its answer (in Redis or from an identical call)?"""
        return self.value is not NOT_GIVEN

    def status(self) -> Status:
        """What a miss reports: skipped on purpose, failed, or a plain miss."""
        return "bypass" if self.skipped else "error" if self.failed else "miss"

    @property
    def storing(self) -> bool:
        """Will the answer be stored? (No after a failed lookup or with ``skip_store``.)"""
        outcome = self.outcome
        return (
            self.failed is None
            and not self.skipped
            and outcome is not None
            and outcome.storable
            and not self.control.skip_store
        )


@dataclass(slots=True, eq=False)
class Hit:
    """An answer to serve: ``value`` (decoded), found in Redis or in an identical call."""

    ticket: Ticket

    @property
    def value(self) -> Any:
        return self.ticket.value


@dataclass(slots=True, eq=False)
class Miss:
    """No answer: the caller runs the function, then ``complete``s or ``abort``s."""

    ticket: Ticket

    @property
    def used_cache(self) -> bool:
        """False when the cache failed or was skipped: nothing will be stored (HTTP
        labels the response BYPASS)."""
        ticket = self.ticket
        return ticket.failed is None and not ticket.skipped and ticket.outcome is not None
