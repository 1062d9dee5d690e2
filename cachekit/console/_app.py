"""The console's Starlette app: pages (server-rendered, autoescaped Jinja2) and actions.

One :class:`Console` per app holds the cache and the settings; each handler reads what
its page shows through ``cache.run`` (the cache's own loop) and renders it. Filters come
from the query string and are checked against the console's pinned scope first.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from .._policy import CACHE_ERRORS
from ..errors import CacheKitError
from . import _history, _overview, _quality, _review
from ._actions import parse_action
from ._auth import CSRF_FIELD, TokenGate, csrf_token, new_token
from ._charts import histogram_chart, traffic_chart
from ._explain import ExplainForm, run_explain
from ._render import SECURITY_HEADERS, templates
from ._scope import ScopeError, ViewScope, pin

if TYPE_CHECKING:
    from ..cache import LLMCache

__all__ = ["TOKEN_ENV", "Console", "create_app"]

log = logging.getLogger("cachekit.console")

TOKEN_ENV: Final = "CACHEKIT_CONSOLE_TOKEN"
_HERE: Final = os.path.dirname(__file__)  # the static files
#: What a page shows as "Redis could not be read" (503) instead of a traceback.
_FAILURES: Final[tuple[type[BaseException], ...]] = (CacheKitError, *CACHE_ERRORS)
_WINDOWS: Final = {"1h": 3600.0, "6h": 6 * 3600.0, "24h": 86400.0}


@dataclass(slots=True)
class Console:
    cache: LLMCache
    token: str
    read_only: bool = False
    pinned: ViewScope = field(default_factory=ViewScope)
    history_interval: float = 60.0
    threshold: float | None = None
    target_precision: float = 0.95
    measure_memory: bool = True
    _last_snapshot: float = 0.0
    _last_counts: dict[tuple[str, str], tuple[int, ...]] = field(default_factory=dict)

    @property
    def verifier(self) -> Any:
        return self.cache.config.verifier

    async def maybe_snapshot(self, force: bool = False) -> None:
        """Record the counters' snapshot if the last is ``history_interval`` old."""
        now = time.time()
        if self.read_only or (not force and now - self._last_snapshot < self.history_interval):
            return
        self._last_snapshot = now
        report = await self.cache.stats(
            self.pinned.namespace, tenant_token=self.pinned.tenant_token
        )
        rows = [r for r in report.rows if self.pinned.allows(r.namespace, r.tenant_token)]
        await self.cache.run(_history.record_snapshot, self.cache, rows, now, self._last_counts)


def create_app(
    cache: LLMCache,
    *,
    token: str | None = None,
    read_only: bool = False,
    namespace: str | None = None,
    tenant: str | None = None,
    tenant_token: str | None = None,
    history_interval: float = 60.0,
    threshold: float | None = None,
    target_precision: float = 0.95,
    measure_memory: bool = True,
) -> TokenGate:
    """The review console as an ASGI app, to serve or to ``Mount`` in your app.

    ``token``: what every request must present (default: ``$CACHEKIT_CONSOLE_TOKEN``, else
    a new one, logged once at WARNING); ``read_only``: no labels, invalidations or clears;
    ``namespace``/``tenant``/``tenant_token``: pin the whole console to one namespace
    and/or tenant; ``threshold``: the semantic threshold your app uses (default: the one
    recorded with the near misses, else the embedder's); ``target_precision``: what the
    label calibration aims for. Snapshots for the traffic chart are taken every
    ``history_interval`` seconds while the app serves (and on each overview view).
    """
    if token is None:
        token = os.environ.get(TOKEN_ENV) or None
    if token is None:
        token = new_token()
        log.warning("cachekit console token (pass token= or set %s): %s", TOKEN_ENV, token)
    if not 0.0 < target_precision <= 1.0:
        raise ValueError(f"target_precision must be in (0, 1], got {target_precision!r}")
    if history_interval <= 0:
        raise ValueError(f"history_interval must be positive, got {history_interval!r}")
    console = Console(
        cache,
        token,
        read_only,
        pin(namespace, tenant, tenant_token),
        history_interval,
        threshold,
        target_precision,
        measure_memory,
    )
    pages = _Pages(console)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        task = asyncio.get_running_loop().create_task(_sample_forever(console))
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app = Starlette(
        routes=[
            Route("/", pages.overview),
            Route("/quality", pages.quality),
            Route("/review", pages.review),
            Route("/review/label", pages.label, methods=["POST"]),
            Route("/labels.jsonl", pages.export),
            Route("/explain", pages.explain, methods=["GET", "POST"]),
            Route("/actions", pages.actions),
            Route("/actions/confirm", pages.confirm, methods=["POST"]),
            Route("/actions/run", pages.run_action, methods=["POST"]),
            Route("/favicon.ico", _no_icon),
            Mount("/static", StaticFiles(directory=os.path.join(_HERE, "static")), name="static"),
        ],
        lifespan=lifespan,
    )
    app.state.console = console
    gate = TokenGate(app, token)
    return gate


async def _no_icon(request: Request) -> Response:
    return Response(status_code=204, headers=SECURITY_HEADERS)


async def _sample_forever(console: Console) -> None:
    while True:
        try:
            await console.maybe_snapshot()
        except _FAILURES as exc:
            log.debug("cachekit console: snapshot failed: %s", exc)
        except Exception as exc:  # noqa: BLE001 - a failed snapshot must not stop the sampler
            log.warning("cachekit console: snapshot failed: %s", exc)
        await asyncio.sleep(console.history_interval)


class _Pages:
    def __init__(self, console: Console) -> None:
        self.c = console
        self.env = templates()
        self.csrf = csrf_token(console.token)

    # -- helpers ------------------------------------------------------------------------

    def scope_of(self, request: Request, form: Any = None) -> ViewScope:
        source = form if form is not None else request.query_params
        return self.c.pinned.narrow(
            source.get("namespace") or None,
            source.get("tenant") or None,
            source.get("tenant_token") or None,
        )

    def render(self, request: Request, name: str, status: int = 200, **context: Any) -> Response:
        base = request.scope.get("root_path", "") or ""
        html = self.env.get_template(name).render(
            base=base,
            csrf=self.csrf,
            csrf_field=CSRF_FIELD,
            read_only=self.c.read_only,
            pinned=self.c.pinned,
            page=name.removesuffix(".html"),
            **context,
        )
        return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)

    def error(self, request: Request, status: int, message: str) -> Response:
        return self.render(
            request, "error.html", status=status, status_code=status, message=message
        )

    # -- pages --------------------------------------------------------------------------

    async def overview(self, request: Request) -> Response:
        try:
            scope = self.scope_of(request)
        except ScopeError as exc:
            return self.error(request, exc.status, str(exc))
        window = request.query_params.get("window", "1h")
        seconds = _WINDOWS.get(window, 3600.0)
        try:
            await self.c.maybe_snapshot()
            data = await _overview.read_overview(
                self.c.cache, scope, measure_memory=self.c.measure_memory
            )
            spaces = [(r.namespace, r.tenant_token) for r in data.rows]
            now = time.time()
            history = await self.c.cache.run(
                _history.read_history, self.c.cache, spaces, now - seconds
            )
        except _FAILURES as exc:
            return self.error(request, 503, f"Redis could not be read: {exc}")
        chart = traffic_chart(_history.intervals(history, now - seconds, now, 30))
        snapshots = sum(len(v) for v in history.values())
        return self.render(
            request,
            "overview.html",
            scope=scope,
            data=data,
            chart=chart,
            snapshots=snapshots,
            window=window,
            windows=list(_WINDOWS),
            history_interval=self.c.history_interval,
        )

    async def quality(self, request: Request) -> Response:
        try:
            scope = self.scope_of(request)
        except ScopeError as exc:
            return self.error(request, exc.status, str(exc))
        try:
            records = await self.c.cache.run(_review.sampled_records, self.c.cache, scope)
            labels = await self.c.cache.run(_review.all_labels, self.c.cache, scope)
        except _FAILURES as exc:
            return self.error(request, 503, f"Redis could not be read: {exc}")
        hist = _quality.histogram(records, threshold=self.c.threshold)
        calibration = _quality.calibrate(labels, self.c.verifier, self.c.target_precision)
        reasons: dict[str, int] = {}
        for r in records:
            if r.kind == "rejected":
                reasons[r.reason or "?"] = reasons.get(r.reason or "?", 0) + 1
        return self.render(
            request,
            "quality.html",
            scope=scope,
            hist=hist,
            chart=histogram_chart(hist),
            calibration=calibration,
            reasons=sorted(reasons.items(), key=lambda kv: -kv[1]),
            counts={k: sum(hist.counts[k]) for k in _quality.KINDS},
        )

    async def review(self, request: Request) -> Response:
        try:
            scope = self.scope_of(request)
        except ScopeError as exc:
            return self.error(request, exc.status, str(exc))
        kind = request.query_params.get("kind") or ""
        if kind and kind not in _quality.KINDS:
            return self.error(request, 400, f"kind must be one of {', '.join(_quality.KINDS)}")
        unlabelled = request.query_params.get("all") != "1"
        try:
            items = await self.c.cache.run(
                functools.partial(
                    _review.review_items,
                    kinds=(kind,) if kind else _quality.KINDS,
                    unlabelled_only=unlabelled,
                ),
                self.c.cache,
                scope,
            )
        except _FAILURES as exc:
            return self.error(request, 503, f"Redis could not be read: {exc}")
        return self.render(
            request,
            "review.html",
            scope=scope,
            items=items,
            kind=kind,
            kinds=_quality.KINDS,
            unlabelled=unlabelled,
        )

    async def label(self, request: Request) -> Response:
        wants_json = "application/json" in request.headers.get("content-type", "")
        if self.c.read_only:
            return self._refuse(request, wants_json, 403, "This console is read-only.")
        try:
            if wants_json:
                payload = await request.json()
                if not isinstance(payload, dict):
                    raise ScopeError("expected a JSON object with id and label")
                item_id, label = str(payload.get("id", "")), str(payload.get("label", ""))
            else:
                form = await request.form()
                item_id, label = str(form.get("id", "")), str(form.get("label", ""))
            made = await self.c.cache.run(
                _review.put_label, self.c.cache, self.c.pinned, item_id, label
            )
        except ScopeError as exc:
            return self._refuse(request, wants_json, exc.status, str(exc))
        except ValueError as exc:
            return self._refuse(request, wants_json, 400, f"bad request body: {exc}")
        except _FAILURES as exc:
            return self._refuse(request, wants_json, 503, f"Redis could not be written: {exc}")
        if wants_json:
            return JSONResponse(
                {"ok": True, "id": item_id, "label": made.label}, headers=SECURITY_HEADERS
            )
        back = request.headers.get("referer")
        root = request.scope.get("root_path", "") or ""
        target = _local(back) if back else f"{root}/review"
        return RedirectResponse(target, status_code=303)

    def _refuse(self, request: Request, wants_json: bool, status: int, message: str) -> Response:
        if wants_json:
            return JSONResponse({"ok": False, "error": message}, status, SECURITY_HEADERS)
        return self.error(request, status, message)

    async def export(self, request: Request) -> Response:
        try:
            scope = self.scope_of(request)
            labels = await self.c.cache.run(_review.all_labels, self.c.cache, scope)
        except ScopeError as exc:
            return self.error(request, exc.status, str(exc))
        except _FAILURES as exc:
            return self.error(request, 503, f"Redis could not be read: {exc}")
        return Response(
            _review.export_labels(labels),
            media_type="application/x-ndjson",
            headers={
                **SECURITY_HEADERS,
                "content-disposition": 'attachment; filename="cachekit-labels.jsonl"',
            },
        )

    async def explain(self, request: Request) -> Response:
        form_data = await request.form() if request.method == "POST" else None
        try:
            scope = self.scope_of(request, form_data)
        except ScopeError as exc:
            return self.error(request, exc.status, str(exc))
        form = ExplainForm.from_request(form_data, scope)
        result = None
        error = None
        if form_data is not None:
            try:
                result = await run_explain(self.c.cache, form, self.c.threshold, scope)
            except ScopeError as exc:
                error = str(exc)
            except _FAILURES as exc:
                error = f"Redis could not be read: {exc}"
        return self.render(
            request,
            "explain.html",
            status=400 if error else 200,
            scope=scope,
            form=form,
            result=result,
            result_json=None if result is None else json.dumps(result, indent=2, default=str),
            error=error,
        )

    async def actions(self, request: Request) -> Response:
        try:
            scope = self.scope_of(request)
            data = await _overview.read_overview(self.c.cache, scope, measure_memory=False)
        except ScopeError as exc:
            return self.error(request, exc.status, str(exc))
        except _FAILURES as exc:
            return self.error(request, 503, f"Redis could not be read: {exc}")
        return self.render(request, "actions.html", scope=scope, rows=data.rows)

    async def confirm(self, request: Request) -> Response:
        form = await request.form()
        try:
            action = parse_action(form, self.c.pinned, self.c.read_only)
        except ScopeError as exc:
            return self.error(request, exc.status, str(exc))
        return self.render(request, "confirm.html", action=action)

    async def run_action(self, request: Request) -> Response:
        form = await request.form()
        try:
            action = parse_action(form, self.c.pinned, self.c.read_only)
        except ScopeError as exc:
            return self.error(request, exc.status, str(exc))
        if form.get("confirm", "") != action.namespace:
            return self.error(
                request, 400, "Not confirmed: type the namespace's name to confirm the action."
            )
        try:
            token = action.tenant_token
            if action.name == "invalidate":
                value = await self.c.cache.invalidate(action.namespace, tenant_token=token)
                done = f"Invalidated: {'generation' if token else 'epoch'} is now {value}."
            else:
                value = await self.c.cache.clear(action.namespace, tenant_token=token)
                done = f"Cleared: {value} keys deleted."
        except _FAILURES as exc:
            return self.error(request, 503, f"The action failed: {exc}")
        log.warning("cachekit console: %s %s (%s)", action.name, action.where, done)
        return self.render(request, "done.html", action=action, done=done)


def _local(url: str) -> str:
    """A same-site redirect target: the path (and query) of ``url`` only, never one a
    browser would read as another host (``//host``, ``/\\host``)."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        return "/"
    path = "/" + parts.path.lstrip("/\\")
    return path + ("?" + parts.query if parts.query else "")
