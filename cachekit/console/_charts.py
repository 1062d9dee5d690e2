"""The console's charts as plain numbers for inline SVG (no chart library, no script):
the template draws rectangles and lines from these, and every label it prints is escaped."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from ._history import Interval
from ._quality import KINDS, Histogram

__all__ = ["Bar", "BarChart", "histogram_chart", "traffic_chart"]

WIDTH: Final = 720
HEIGHT: Final = 220
_PAD: Final = 30


@dataclass(frozen=True, slots=True)
class Bar:
    """One rectangle: x, y, width, height in SVG units, its series and a tooltip."""

    x: float
    y: float
    w: float
    h: float
    series: str
    title: str


@dataclass(frozen=True, slots=True)
class BarChart:
    bars: list[Bar]
    #: Vertical marker (the threshold), in SVG x units, and its label.
    marker_x: float | None
    marker_label: str
    x_labels: list[tuple[float, str]]
    y_max: int
    width: int = WIDTH
    height: int = HEIGHT

    @property
    def empty(self) -> bool:
        return not self.bars


def _stack(
    columns: Sequence[dict[str, int]], order: Sequence[str], titles: Sequence[str]
) -> tuple[list[Bar], int]:
    peak = max((sum(c.values()) for c in columns), default=0)
    if peak == 0:
        return [], 0
    plot_w, plot_h = WIDTH - 2 * _PAD, HEIGHT - 2 * _PAD
    step = plot_w / max(1, len(columns))
    bars: list[Bar] = []
    for i, (column, title) in enumerate(zip(columns, titles, strict=True)):
        base = float(HEIGHT - _PAD)
        for series in order:
            n = column.get(series, 0)
            if not n:
                continue
            h = plot_h * n / peak
            base -= h
            bars.append(
                Bar(
                    _PAD + i * step + 0.5,
                    base,
                    max(1.0, step - 1.0),
                    h,
                    series,
                    f"{title}: {n} {series}",
                )
            )
    return bars, peak


def traffic_chart(intervals: Sequence[Interval]) -> BarChart:
    """Lookups per interval, stacked by layer (exact, semantic hits, misses)."""
    columns = [{"exact": i.exact, "semantic": i.semantic, "miss": i.miss} for i in intervals]
    titles = [
        f"{_clock(i.start)}–{_clock(i.end)}"
        + (f" (hit rate {(i.exact + i.semantic) / i.lookups:.0%})" if i.lookups else "")
        for i in intervals
    ]
    bars, peak = _stack(columns, ("exact", "semantic", "miss"), titles)
    labels: list[tuple[float, str]] = []
    if intervals:
        step = (WIDTH - 2 * _PAD) / len(intervals)
        for i in range(0, len(intervals), max(1, len(intervals) // 6)):
            labels.append((_PAD + i * step, _clock(intervals[i].start)))
    return BarChart(bars, None, "", labels, peak)


def histogram_chart(hist: Histogram) -> BarChart:
    """Records per similarity bin, stacked by kind, with the threshold drawn."""
    columns = [{k: hist.counts[k][i] for k in KINDS} for i in range(hist.bins)]
    titles = [
        f"similarity {hist.low + i * hist.width:.2f}–{hist.low + (i + 1) * hist.width:.2f}"
        for i in range(hist.bins)
    ]
    bars, peak = _stack(columns, KINDS, titles)
    span = hist.high - hist.low

    def x_of(value: float) -> float:
        return _PAD + (WIDTH - 2 * _PAD) * (value - hist.low) / span

    marker = None
    if hist.threshold is not None and hist.low <= hist.threshold <= hist.high:
        marker = x_of(hist.threshold)
    labels = [(x_of(hist.low + i * span / 5), f"{hist.low + i * span / 5:.2f}") for i in range(6)]
    return BarChart(
        bars,
        marker,
        "" if hist.threshold is None else f"threshold {hist.threshold:g}",
        labels,
        peak,
    )


def _clock(t: float) -> str:
    return time.strftime("%H:%M", time.localtime(t))
