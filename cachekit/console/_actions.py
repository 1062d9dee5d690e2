"""The console's actions (invalidate, clear): what a form asks for, checked against the
console's pinned scope and read-only mode before anything runs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .._layout import NAMESPACE_RE
from .._stats_report import tenant_label
from ._scope import ScopeError, ViewScope

__all__ = ["Action", "parse_action"]


@dataclass(frozen=True, slots=True)
class Action:
    name: str
    namespace: str
    #: One tenant's token, or None for every tenant of the namespace.
    tenant_token: str | None

    @property
    def where(self) -> str:
        token = self.tenant_token
        who = "every tenant" if token is None else f"tenant {tenant_label(token)}"
        return f"namespace {self.namespace}, {who}"


def parse_action(form: Any, pinned: ViewScope, read_only: bool) -> Action:
    """The action a form names; ScopeError (400/403) for one this console may not run."""
    if read_only:
        raise ScopeError("This console is read-only.", 403)
    name = str(form.get("action", ""))
    if name not in ("invalidate", "clear"):
        raise ScopeError("action must be invalidate or clear")
    namespace = str(form.get("namespace", ""))
    if not NAMESPACE_RE.fullmatch(namespace):
        raise ScopeError(f"namespace must match {NAMESPACE_RE.pattern}")
    token = str(form.get("tenant_token", "")) or None
    scope = pinned.narrow(namespace, None, token)
    if pinned.tenant_token is not None and token is None:
        raise ScopeError("this console acts on its own tenant only: name it", 403)
    return Action(name, namespace, scope.tenant_token)
