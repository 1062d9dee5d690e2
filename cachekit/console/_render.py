"""How the console's pages are rendered: the autoescaping Jinja2 environment, its
filters, and the security headers every page carries."""

from __future__ import annotations

import os
import time
from typing import Any, Final

__all__ = ["SECURITY_HEADERS", "templates"]

_HERE: Final = os.path.dirname(__file__)
SECURITY_HEADERS: Final = {
    # Prompts are attacker-controlled text: even if one escaped the templates, no inline
    # script or foreign resource would run.
    "content-security-policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    # same-origin: our own forms then carry a real Origin header for the gate to check.
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
    "x-frame-options": "DENY",
}


def templates() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(os.path.join(_HERE, "templates")),
        autoescape=True,  # every prompt and answer is attacker-controlled text
        undefined=jinja2.StrictUndefined,
    )
    env.filters["pct"] = lambda v: "–" if v is None else f"{v:.1%}"
    env.filters["usd"] = lambda v: f"${v:,.4f}" if v < 100 else f"${v:,.2f}"
    env.filters["num"] = lambda v: f"{v:,}"
    env.filters["bytes"] = _human_bytes
    env.filters["ago"] = lambda t: _ago(time.time() - t) if t else "–"
    return env


def _human_bytes(n: int | None) -> str:
    if n is None:
        return "–"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:,.0f} {unit}" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1024
    return f"{value:,.1f} GiB"


def _ago(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s ago"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 129600:
        return f"{seconds / 3600:.0f} h ago"
    return f"{seconds / 86400:.0f} days ago"
