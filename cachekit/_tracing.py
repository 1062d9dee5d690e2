"""OpenTelemetry spans of the pipeline, when the application traces (the ``otel`` extra).

``cache.get`` covers one ``begin`` (lookup, single-flight) and ``cache.put`` one store,
both children of the caller's span (``cache.put`` also links to its ``cache.get``). Their
stages are child spans: ``cache.lookup`` (the exact layer's script), ``cache.embed``,
``cache.search`` (the vector search), ``cache.verify`` (candidates read back and judged),
``cache.store`` (the entry script), ``cache.index`` (the vector). The tracer is named
``cachekit``.

Attributes: ``cachekit.namespace``, ``cachekit.layer`` (exact / semantic / none),
``cachekit.similarity``, ``cachekit.status``, ``cachekit.reason``,
``gen_ai.request.model``. Never the prompt or the tenant, not even as a digest: an
unsalted digest of a guessable id (a user id, an e-mail) is the id to anyone who guesses.
Not ``gen_ai.usage.cache_read.*`` either: that names a provider's own prompt cache.

Off, this costs a few attribute reads per call: cachekit never imports opentelemetry. It
traces once the application has imported ``opentelemetry.trace`` and set a tracer
provider; before that (or without the package) every helper returns a shared no-op.
"""

from __future__ import annotations

import contextlib
import contextvars
import sys
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from ._ticket import Ticket

__all__ = [
    "LAYER",
    "MODEL",
    "NAMESPACE",
    "REASON",
    "SIMILARITY",
    "STATUS",
    "TRACER_NAME",
    "current",
    "failed",
    "getting",
    "note",
    "putting",
    "stage",
]

TRACER_NAME: Final = "cachekit"
NAMESPACE: Final = "cachekit.namespace"
LAYER: Final = "cachekit.layer"
SIMILARITY: Final = "cachekit.similarity"
STATUS: Final = "cachekit.status"
REASON: Final = "cachekit.reason"
MODEL: Final = "gen_ai.request.model"

_OFF: Final = contextlib.nullcontext()
#: Inside a traced ``cache.get`` / ``cache.put``: only there do stages open spans (a stage
#: run by ``explain`` or a single-flight poll never starts a trace of its own).
_TRACED: contextvars.ContextVar[bool] = contextvars.ContextVar("cachekit_traced", default=False)
_seen: tuple[Any, Any] = (None, None)  # (tracer provider, its cachekit tracer)


def _tracer() -> Any:
    """cachekit's tracer, or None while nothing would record spans."""
    global _seen
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None:
        return None  # not imported by anyone: no provider can have been set
    provider = trace.get_tracer_provider()
    if provider is _seen[0]:
        return _seen[1]
    if isinstance(provider, trace.ProxyTracerProvider):
        # The API's stand-in until the application sets a provider (redis-py imports the
        # API, so this is the common case): remembered, so later calls skip the check.
        _seen = (provider, None)
        return None
    _seen = (provider, provider.get_tracer(TRACER_NAME))
    return _seen[1]


def getting(ticket: Ticket) -> contextlib.AbstractContextManager[Any]:
    """Around ``begin``: open ``ticket``'s ``cache.get`` span, current until the exit,
    which ends it. Where the span is open already (a sync caller's ``begin`` running on
    the home loop) it is only made current there."""
    if ticket.trace_parent is not None:
        return _using(ticket.span)
    tracer = _tracer()
    return _OFF if tracer is None else _get(tracer, ticket)


def current(ticket: Ticket) -> contextlib.AbstractContextManager[Any]:
    """Make ``ticket``'s ``cache.get`` span current (work handed to the home loop)."""
    return _OFF if ticket.trace_parent is None else _using(ticket.span)


def stage(
    name: str, attributes: Mapping[str, Any] | None = None
) -> contextlib.AbstractContextManager[Any]:
    """A child span of the current ``cache.get`` / ``cache.put`` (None outside one)."""
    if not _TRACED.get():
        return _OFF
    tracer = _tracer()
    return _OFF if tracer is None else tracer.start_as_current_span(name, attributes=attributes)


def note(span: Any, key: str, value: Any) -> None:
    """Set an attribute on a stage's span (``None`` when not traced)."""
    if span is not None and value is not None:
        span.set_attribute(key, value)


def failed(ticket: Ticket, exc: BaseException) -> None:
    """The cache failed and the call goes on without it: the exception goes on the span."""
    if ticket.trace_parent is not None:
        ticket.span.record_exception(exc)


def putting(ticket: Ticket) -> contextlib.AbstractContextManager[Any]:
    """Around a store: a ``cache.put`` span, when the lookup was traced."""
    if ticket.trace_parent is None:
        return _OFF
    tracer = _tracer()
    return _OFF if tracer is None else _put(tracer, ticket)


def _attributes(ticket: Ticket) -> dict[str, Any]:
    manifest = ticket.manifest
    attrs: dict[str, Any] = {NAMESPACE: manifest.namespace}
    if manifest.model:
        attrs[MODEL] = manifest.model
    return attrs


@contextlib.contextmanager
def _using(span: Any, owner: bool = False) -> Iterator[Any]:
    trace = sys.modules["opentelemetry.trace"]
    token = _TRACED.set(True)
    try:
        # Only the span's owner records an exception leaving it: a failure the pipeline
        # catches is recorded once, by ``failed``, on its way to failing open.
        with trace.use_span(
            span, end_on_exit=False, record_exception=owner, set_status_on_exception=owner
        ):
            yield span
    finally:
        _TRACED.reset(token)


@contextlib.contextmanager
def _get(tracer: Any, ticket: Ticket) -> Iterator[Any]:
    from opentelemetry import context

    parent = context.get_current()
    span = tracer.start_span("cache.get", context=parent, attributes=_attributes(ticket))
    ticket.span, ticket.trace_parent = span, parent
    try:
        with _using(span, owner=True):
            yield span
    finally:
        _finish_get(ticket, span)


def _finish_get(ticket: Ticket, span: Any) -> None:
    outcome = ticket.outcome
    entry = outcome.entry if outcome is not None else None
    if ticket.answered:
        # An entry read back names its layer; a value from a call in flight is "exact".
        layer = (outcome.layer if outcome is not None and entry is not None else None) or "exact"
        span.set_attribute(LAYER, layer)
        span.set_attribute(STATUS, layer)
    else:
        span.set_attribute(LAYER, "none")
        span.set_attribute(STATUS, ticket.status())
    if outcome is not None:
        if outcome.similarity is not None:
            span.set_attribute(SIMILARITY, float(outcome.similarity))
        if outcome.verdict is not None:
            span.set_attribute("cachekit.verdict", outcome.verdict)
        note(span, "cachekit.verify_reason", outcome.verify_reason)
    reason = ticket.failed or ticket.reason or (outcome.reason if outcome is not None else None)
    if reason:
        span.set_attribute(REASON, str(reason))
    if ticket.failed:
        trace = sys.modules["opentelemetry.trace"]
        span.set_status(trace.Status(trace.StatusCode.ERROR, ticket.failed))
    span.end()


@contextlib.contextmanager
def _put(tracer: Any, ticket: Ticket) -> Iterator[Any]:
    trace = sys.modules["opentelemetry.trace"]
    links = [trace.Link(ticket.span.get_span_context())]
    token = _TRACED.set(True)
    try:
        with tracer.start_as_current_span(
            "cache.put", context=ticket.trace_parent, attributes=_attributes(ticket), links=links
        ) as span:
            try:
                yield span
            except BaseException:
                span.set_attribute(STATUS, "error")
                raise
            span.set_attribute(STATUS, "stored" if ticket.stored else "not_stored")
    finally:
        _TRACED.reset(token)
