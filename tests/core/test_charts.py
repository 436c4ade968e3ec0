"""Spend charts: a real PNG of the expected size, also with nothing to show, drawn off the event loop."""

from __future__ import annotations

import asyncio
import io
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from PIL import Image

from core.charts import HEIGHT_PX, WIDTH_PX, render_spend_png, spend_chart_png
from core.config import Settings
from core.store import open_store
from core.store.base import UsageFilter
from tests.core.store.entries import NOW, entry

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def picture(png: bytes) -> Image.Image:
    assert png.startswith(PNG_SIGNATURE)
    image = Image.open(io.BytesIO(png))
    image.load()  # decodes every pixel: a truncated or corrupt file fails here
    return image


def test_a_month_of_spend_is_a_png_of_the_expected_size() -> None:
    points = [(date(2026, 5, 1) + timedelta(days=n), Decimal(n) / 7) for n in range(30)]

    image = picture(render_spend_png(points))

    assert image.format == "PNG"
    assert image.size == (WIDTH_PX, HEIGHT_PX)
    assert len(image.getcolors(maxcolors=1 << 16) or []) > 2  # bars and text, not a blank canvas


def test_no_data_still_renders() -> None:
    assert picture(render_spend_png([])).size == (WIDTH_PX, HEIGHT_PX)
    zeros = [(date(2026, 5, 1) + timedelta(days=n), Decimal(0)) for n in range(30)]
    assert picture(render_spend_png(zeros)).size == (WIDTH_PX, HEIGHT_PX)


async def test_the_scope_chart_reads_the_store_and_leaves_the_event_loop_free(tmp_path: Path) -> None:
    store = await open_store(Settings(_env_file=None, database_url=f"sqlite:///{tmp_path / 'c.db'}"))
    try:
        await store.record_usage(
            entry(usd=Decimal("0.5")), entry(usd=Decimal(2), at=NOW - timedelta(days=3), channel="C2")
        )
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.005)
                ticks += 1

        ticker = asyncio.create_task(tick())
        png = await spend_chart_png(store, UsageFilter("slack", "T1"), today=NOW.date())
        ticker.cancel()
        empty = await spend_chart_png(store, UsageFilter("discord", "G9"), days=7, today=NOW.date())
    finally:
        await store.close()

    assert picture(png).size == (WIDTH_PX, HEIGHT_PX)
    assert picture(empty).size == (WIDTH_PX, HEIGHT_PX)
    assert ticks >= 3, "the event loop was blocked while the chart was drawn"
