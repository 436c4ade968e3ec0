"""Spend charts as PNG images, for the chat platforms to upload (`spend_chart_png`).

Drawn with matplotlib's Agg backend: its wheels bring their own fonts and rasteriser, so nothing has
to be installed on the host (an SVG library plus cairo would need system libraries and fonts). It is
imported on first use, so a process that never draws a chart never pays its start-up time or memory.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Sequence
from datetime import date, timedelta
from decimal import Decimal

from core.money import format_usd
from core.store.base import Store, UsageFilter, utc_now

WIDTH_PX, HEIGHT_PX = 1000, 500
DPI = 100
BAR_COLOUR = "#3b6fd4"
CHART_DAYS = 30  # what the console's charts and the chart sent with /cost cover


def day_range(first: date, days: int) -> list[date]:
    """`days` consecutive UTC days from `first`: a chart shows the days nothing was spent, too."""
    return [first + timedelta(days=n) for n in range(days)]


def render_spend_png(points: Sequence[tuple[date, Decimal]], title: str = "Spend per day") -> bytes:
    """A bar chart of USD per day, `WIDTH_PX` × `HEIGHT_PX`; CPU-bound, so call it in a thread."""
    # A bare Figure, not pyplot: pyplot keeps global state that threads drawing at once would share.
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    figure = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI, layout="constrained")
    axes = figure.add_subplot()
    days = [day for day, _ in points]
    amounts = [float(usd) for _, usd in points]
    axes.bar(range(len(days)), amounts, color=BAR_COLOUR, width=0.8)
    total = sum((usd for _, usd in points), Decimal(0))
    axes.set_title(f"{title} · total {format_usd(total)}", loc="left")
    step = max(1, len(days) // 10)
    axes.set_xticks(range(0, len(days), step), [f"{day:%d %b}" for day in days[::step]])
    axes.set_xlim(-0.6, max(len(days), 1) - 0.4)
    axes.set_ylim(bottom=0, top=max(amounts, default=0) * 1.1 or 1)
    axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _: format_usd(Decimal(str(float(value))))))
    axes.spines[["top", "right"]].set_visible(False)
    axes.grid(axis="y", alpha=0.3)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


async def spend_chart_png(
    store: Store, where: UsageFilter, days: int = CHART_DAYS, *, today: date | None = None
) -> bytes:
    """The last `days` UTC days' spend in a scope (a workspace, channel or user) as a PNG."""
    last = today or utc_now().date()
    first = last - timedelta(days=days - 1)
    spent: dict[date, Decimal] = {}
    for day in await store.usage_by_day(first, last, where):
        spent[day.day] = spent.get(day.day, Decimal(0)) + day.totals.usd
    points = [(day, spent.get(day, Decimal(0))) for day in day_range(first, days)]
    # Drawing takes tens of milliseconds of CPU: never on the event loop, where answers are streaming.
    return await asyncio.to_thread(render_spend_png, points, f"Spend per day, last {days} days")
