"""Plain-text output of the ``cachekit`` commands: shortened cells, numbers, tables."""

from __future__ import annotations

import math
from collections.abc import Sequence

import click


def shorten(text: str | None, width: int) -> str:
    """One line of at most ``width`` characters (newlines and runs of spaces collapsed)."""
    if text is None:
        return "-"
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: max(1, width - 1)] + "…"


def fmt_count(n: int | None) -> str:
    if n is None:
        return "-"
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size * 10:
            return f"{n / size:.1f}{unit}"
    return f"{n:,}"


def fmt_pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def fmt_usd(x: float | None) -> str:
    if x is None:
        return "-"
    if x == 0:
        return "$0"
    if abs(x) < 0.01:
        return f"${x:.4f}"
    return f"${x:,.2f}"


def fmt_age(seconds: float | None) -> str:
    if seconds is None or math.isnan(seconds):
        return "-"
    s = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= size:
            return f"{s / size:.1f}{unit}"
    return f"{s:.0f}s"


def fmt_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "KiB", "MiB"):
        if size < 1024:
            return f"{size:.0f}{unit}" if unit == "B" else f"{size:.1f}{unit}"
        size /= 1024
    return f"{size:.1f}GiB"


def echo_table(headers: Sequence[str], rows: Sequence[Sequence[str]], align: str) -> None:
    """A plain aligned text table (``align``: one ``l``/``r`` per column)."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))

    def line(cells: Sequence[str]) -> str:
        out = [
            c.rjust(widths[i]) if align[i] == "r" else c.ljust(widths[i])
            for i, c in enumerate(cells)
        ]
        return "  ".join(out).rstrip()

    click.echo(line(headers))
    click.echo("  ".join("-" * w for w in widths))
    for row in rows:
        click.echo(line(row))
