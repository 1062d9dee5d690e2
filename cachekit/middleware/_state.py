"""What the HTTP middlewares give the pipeline (how a response is stored) and the
``X-Cache`` / ``Cache-Status`` / ``X-Cache-Key`` headers a handled request earns."""

from __future__ import annotations

import time
from typing import Any

from .._manifest import KeyManifest
from .._ticket import Ticket
from ._record import CachedResponse
from ._status import cache_status

__all__ = ["RESPONSES", "refusal_headers", "result_headers"]


class _ResponseCodec:
    """Values of the HTTP entry points are :class:`CachedResponse` objects."""

    def decode(self, payload: bytes) -> Any:
        return CachedResponse.decode(payload)

    def encode(self, value: Any) -> str:
        return str(value.encode())

    def usage(self, value: Any, manifest: KeyManifest) -> tuple[tuple[int, int] | None, bool]:
        return value.usage, False

    def model(self, value: Any, manifest: KeyManifest) -> str | None:
        # A body without "model" (Azure deployments, a default model upstream): the
        # response still says which model answered, so the savings can be priced.
        return value.model  # type: ignore[no-any-return]


RESPONSES = _ResponseCodec()


def result_headers(
    ticket: Ticket | None, label: str, status: int | None = None, reason: str | None = None
) -> list[tuple[bytes, bytes]]:
    """``X-Cache`` and friends for one handled request: ``status`` is the response's code
    (``fwd-status`` when it was forwarded), ``reason`` why a bypass bypassed."""
    headers = [
        (b"x-cache", label.encode()),
        (b"cache-status", cache_status(ticket, label, status, reason)),
    ]
    if ticket is None:
        return headers
    # The request's exact digest: what `cachekit explain --key` takes. A hash of the
    # request, never the tenant or the key's other (tenant-encoding) parts.
    headers.append((b"x-cache-key", ticket.manifest.exact_digest.encode()))
    outcome = ticket.outcome
    if label == "HIT" and (outcome is None or outcome.entry is None):
        # Served by an identical request in flight: an exact match, fresh from the app.
        headers.append((b"x-cache-match", b"exact"))
        return headers
    if outcome is None:
        return headers
    entry = outcome.entry
    if entry is not None and outcome.layer:
        headers.append((b"x-cache-match", outcome.layer.encode()))
        headers.append((b"age", str(int(max(0.0, time.time() - entry.created))).encode()))
    # On a miss this is the nearest neighbour's similarity: what a threshold would need.
    if outcome.similarity is not None:
        headers.append((b"x-cache-similarity", f"{outcome.similarity:.4f}".encode()))
    return headers


def refusal_headers(ticket: Ticket | None, label: str) -> list[tuple[bytes, bytes]]:
    """What a response the middleware made itself carries: ``X-Cache`` (and the key once
    there is one), no ``Cache-Status`` (RFC 9211 section 2: not for generated responses)."""
    headers = [(b"x-cache", label.encode())]
    if ticket is not None:
        headers.append((b"x-cache-key", ticket.manifest.exact_digest.encode()))
    return headers
