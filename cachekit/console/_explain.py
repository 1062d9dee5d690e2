"""The console's explain page: a pasted request body (keyed as the middleware and proxy
key it, through the API table) or an ``X-Cache-Key`` digest, explained read-only."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from .._layout import NAMESPACE_RE, Space
from .._stats_report import decode_tenant_token
from ._scope import ScopeError, ViewScope

if TYPE_CHECKING:
    from ..cache import LLMCache

__all__ = ["ExplainForm", "run_explain"]

MAX_BODY_CHARS: Final = 1 << 20


@dataclass(slots=True)
class ExplainForm:
    mode: str = "body"
    namespace: str = "proxy"
    path: str = "/v1/chat/completions"
    body: str = ""
    key: str = ""
    k: int = 5
    #: The entry point's ``history=`` option.
    history: str = "exact"

    @classmethod
    def from_request(cls, form: Any, scope: ViewScope) -> ExplainForm:
        out = cls(namespace=scope.namespace or "proxy")
        if form is None:
            return out
        out.mode = "key" if form.get("mode") == "key" else "body"
        out.namespace = str(form.get("namespace") or out.namespace)
        out.path = str(form.get("path") or out.path)
        out.body = str(form.get("body") or "")
        out.key = str(form.get("key") or "").strip().lower()
        out.history = "similar" if form.get("history") == "similar" else "exact"
        try:
            out.k = max(1, min(20, int(str(form.get("k") or 5))))
        except ValueError:
            out.k = 5
        return out


def _tenant_of(token: str | None) -> str | None:
    """The tenant id the key was built with, from its token (None: no tenant)."""
    if token is None or token == "_":
        return None
    decoded = decode_tenant_token(token)
    if decoded is None:
        raise ScopeError("a hashed (h...) tenant token cannot be explained by body: use the key")
    return decoded


async def run_explain(
    cache: LLMCache, form: ExplainForm, threshold: float | None, scope: ViewScope
) -> dict[str, Any]:
    """The explanation as a dict (the same as ``cachekit explain --json`` prints)."""
    if not NAMESPACE_RE.fullmatch(form.namespace):
        raise ScopeError(f"namespace must match {NAMESPACE_RE.pattern}")
    if not scope.allows(form.namespace, scope.tenant_token or "_") and scope.namespace:
        raise ScopeError("that namespace is outside this view", 403)
    if form.mode == "key":
        return await _explain_key(cache, form, scope)
    if len(form.body) > MAX_BODY_CHARS:
        raise ScopeError(f"the body is longer than {MAX_BODY_CHARS} characters")
    try:
        body = json.loads(form.body)
    except ValueError as exc:
        raise ScopeError(f"the body is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ScopeError("the body must be a JSON object (a request as the SDK sends it)")
    if not form.path.startswith("/"):
        raise ScopeError("the path must start with / (e.g. /v1/chat/completions)")
    from .._explanation import explain
    from ..middleware._options import Config

    config = Config(cache=cache, namespace=form.namespace, allow_global=True, history=form.history)
    manifest = config.manifest(body, None, _tenant_of(scope.tenant_token), form.path, "", None)
    if isinstance(manifest, str):
        raise ScopeError(f"this request is not cached: {manifest}")
    if scope.tenant_token is not None and cache.space(manifest).tenant_token != scope.tenant_token:
        raise ScopeError("the request's tenant is outside this view", 403)  # defence in depth
    embedder = cache.embedder
    if threshold is None and embedder is not None:
        threshold = embedder.default_threshold
    result = await explain(
        cache,
        manifest,
        function_id=f"http:{form.path}",
        embedder=embedder,
        threshold=threshold if embedder is not None else None,
        k=form.k,
    )
    return result.to_dict()


async def _explain_key(cache: LLMCache, form: ExplainForm, scope: ViewScope) -> dict[str, Any]:
    from .._explain_key import DIGEST_RE, KeyExplanation, _match, explain_key

    if not DIGEST_RE.fullmatch(form.key):
        raise ScopeError("the key must be the 32 hex digits of an X-Cache-Key header")
    if scope.tenant_token is not None:
        space = Space(form.namespace, scope.tenant_token)
        match = await _match(cache, space, form.key, [])
        found = KeyExplanation(form.namespace, form.key, scope.tenant_label, False, [match])
    else:
        found = await explain_key(cache, form.namespace, form.key, tenant=None, search=True)
    found.matches = [m for m in found.matches if scope.allows(form.namespace, m.tenant_token)]
    return found.to_dict()
