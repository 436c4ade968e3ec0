"""Stacked bar charts as geometry for the `chart` template macro: inline SVG drawn on the server, so
the console needs no JavaScript and nothing from a CDN. The template does the escaping."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from core.money import format_usd

PALETTE = ("#3b6fd4", "#e07b39", "#3aa675", "#b552c7", "#c9a227", "#5bb5c9", "#d04f5f", "#7a7a7a")
LEFT, RIGHT, TOP, BOTTOM = 64, 8, 8, 40  # margins around the plot, in px


@dataclass(frozen=True, slots=True)
class Segment:
    x: float
    y: float
    width: float
    height: float
    colour: str
    series: str
    day: date
    usd: Decimal  # exact; the tooltip shows it rounded

    @property
    def title(self) -> str:
        return f"{self.day:%d %b}: {self.series} {format_usd(self.usd)}"


@dataclass(frozen=True, slots=True)
class Tick:
    position: float
    text: str


@dataclass(frozen=True, slots=True)
class Chart:
    width: int
    height: int
    plot_left: int
    plot_bottom: float
    segments: list[Segment]
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    legend: list[tuple[str, str]]  # (colour, series name)
    total: Decimal


def stacked_bars(
    days: Sequence[date],
    series: Mapping[str, Mapping[date, Decimal]],
    *,
    width: int = 900,
    height: int = 260,
) -> Chart:
    """One bar per day, one stacked segment per series (a platform or a workspace) that spent that day."""
    names = sorted(series)
    colours = {name: PALETTE[index % len(PALETTE)] for index, name in enumerate(names)}
    per_day = [sum((series[name].get(day, Decimal(0)) for name in names), Decimal(0)) for day in days]
    top = _nice_ceiling(max(per_day, default=Decimal(0)))
    plot_width, plot_height = width - LEFT - RIGHT, height - TOP - BOTTOM
    slot = plot_width / max(len(days), 1)
    scale = plot_height / float(top)
    segments = []
    for index, day in enumerate(days):
        base = float(height - BOTTOM)
        for name in names:
            usd = series[name].get(day, Decimal(0))
            if usd <= 0:
                continue
            tall = float(usd) * scale
            base -= tall
            left = LEFT + index * slot + slot * 0.1
            segments.append(Segment(left, base, slot * 0.8, tall, colours[name], name, day, usd))
    step = max(1, len(days) // 8)
    x_ticks = [Tick(LEFT + (i + 0.5) * slot, f"{day:%d %b}") for i, day in enumerate(days) if i % step == 0]
    y_ticks = [
        Tick(height - BOTTOM - plot_height * part / 4, format_usd(top * part / 4)) for part in range(5)
    ]
    return Chart(
        width, height, LEFT, float(height - BOTTOM), segments, x_ticks, y_ticks,
        [(colours[name], name) for name in names], sum(per_day, Decimal(0)),
    )  # fmt: skip


def _nice_ceiling(value: Decimal) -> Decimal:
    """The axis top: 1, 2 or 5 times a power of ten at or above `value` (a tenth of a cent at least)."""
    top = Decimal("0.001")
    while top < value:
        for factor in (2, Decimal("2.5"), 2):
            top *= factor
            if top >= value:
                break
    return top
