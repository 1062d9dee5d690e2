"""Which namespaces and tenants a console view may show.

A console can be pinned to one namespace and/or one tenant (``create_app(tenant=...)``):
then every page, count and action is limited to it, and a request asking for another is
refused (403), never silently widened. Within what the console may show, a page's
``?namespace=`` / ``?tenant=`` filters narrow it further.
"""

from __future__ import annotations

from dataclasses import dataclass

from .._layout import NAMESPACE_RE, TENANT_TOKEN_RE, encode_tenant
from .._stats_report import decode_tenant_token, tenant_label

__all__ = ["ScopeError", "ViewScope", "pin"]


class ScopeError(ValueError):
    """A filter the console may not (or cannot) apply; ``status`` is the HTTP status."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class ViewScope:
    """What one view shows: a namespace (None: every one) and a tenant token (None: every)."""

    namespace: str | None = None
    tenant_token: str | None = None

    def allows(self, namespace: str, tenant_token: str) -> bool:
        return (self.namespace is None or namespace == self.namespace) and (
            self.tenant_token is None or tenant_token == self.tenant_token
        )

    @property
    def tenant_label(self) -> str | None:
        return None if self.tenant_token is None else tenant_label(self.tenant_token)

    def query(self) -> dict[str, str]:
        """The filters as query parameters (for links that keep the view)."""
        out: dict[str, str] = {}
        if self.namespace is not None:
            out["namespace"] = self.namespace
        if self.tenant_token is not None:
            out["tenant_token"] = self.tenant_token
        return out

    def narrow(
        self, namespace: str | None, tenant: str | None, tenant_token: str | None
    ) -> ViewScope:
        """This scope narrowed by a request's filters; raises :class:`ScopeError` for a
        filter outside it (403) or malformed (400). Empty strings mean "no filter"."""
        namespace = namespace or None
        if namespace is not None and not NAMESPACE_RE.fullmatch(namespace):
            raise ScopeError(f"namespace must match {NAMESPACE_RE.pattern}, got {namespace!r}")
        token = check_token(tenant_token) if tenant_token else None
        if tenant:
            by_name = encode_tenant(tenant)  # calls without a tenant: tenant_token=_
            if token is not None and token != by_name:
                raise ScopeError("tenant and tenant_token name different tenants")
            token = by_name
        if namespace is not None and self.namespace is not None and namespace != self.namespace:
            raise ScopeError(f"this console shows namespace {self.namespace!r} only", 403)
        if token is not None and self.tenant_token is not None and token != self.tenant_token:
            raise ScopeError("this console shows one tenant only", 403)
        return ViewScope(namespace or self.namespace, token or self.tenant_token)


def check_token(token: str) -> str:
    """A tenant token as the keys spell it (``_``, ``b<base64>``, ``h<sha-256 hex>``)."""
    if not TENANT_TOKEN_RE.fullmatch(token):
        raise ScopeError(f"not a tenant token: {token[:80]!r}")
    if token.startswith("b"):
        # Only the canonical spelling: "bYWNtZR" decodes to "acme" too, but acme's keys
        # are under "bYWNtZQ" (a view pinned to one must not reach the other's data).
        decoded = decode_tenant_token(token)
        if decoded is None or encode_tenant(decoded) != token:
            raise ScopeError(f"not a tenant token as cachekit writes them: {token[:80]!r}")
    return token


def pin(namespace: str | None, tenant: str | None, tenant_token: str | None) -> ViewScope:
    """The scope a whole console is limited to (``create_app``'s arguments)."""
    return ViewScope().narrow(namespace, tenant, tenant_token)
