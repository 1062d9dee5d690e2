"""The review console: what the cache serves, whether it is safe and worth it, and labels
from real traffic that tune its threshold and verifier.

``cachekit console --port 8090`` serves it; :func:`create_app` returns the ASGI app to
``Mount`` in your own Starlette/FastAPI app. Pages: Overview (counters, savings, a
traffic chart, breakers, memory), Quality (the similarity histogram with the threshold;
what the labels say), Review (sampled semantic hits, near misses and verifier
rejections, labelled with one key), Explain (a pasted request or ``X-Cache-Key``) and
Actions (invalidate / clear, confirmed). It needs ``jinja2`` (``cachekit[console]``).

Safety: a token for every page and action (``$CACHEKIT_CONSOLE_TOKEN`` or generated),
CSRF tokens on actions, every prompt and answer escaped (and a CSP with no inline
script), 127.0.0.1 by default, ``read_only=``, and ``tenant=`` to pin a console to one
tenant's data.
"""

from __future__ import annotations

from ._answer import answer_text
from ._app import TOKEN_ENV, Console, create_app
from ._history import record_snapshot
from ._review import LABELS, Label, export_labels, labels_key

__all__ = [
    "LABELS",
    "TOKEN_ENV",
    "Console",
    "Label",
    "answer_text",
    "create_app",
    "export_labels",
    "labels_key",
    "record_snapshot",
]
