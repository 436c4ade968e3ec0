"""Admin console benchmark: page times over a big ledger, and the spend chart PNG.

    .venv/bin/python bench/bench_console.py [--ledger-rows 1000000]

Fills a fresh SQLite file (in a temporary directory) with a year of calls, serves the console on
127.0.0.1 and times each page as the server answers it (goal for the overview: under 200 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import httpx
from bench_store import ledger_rows, percentiles

from bots.http import HttpServer, readiness_from_probes
from bots.web.app import mount_console
from core.charts import spend_chart_png
from core.config import Settings, load_settings
from core.service import ChatService
from core.store.base import UsageFilter

TOKEN = "bench-console-token-0123456789"
PAGES = ["/admin", "/admin/budgets", "/admin/channels", "/admin/problems", "/admin/channel/slack/T1/C01"]


async def fill(service: ChatService, rows: int) -> None:
    rng = random.Random(7)
    started = time.perf_counter()
    batch = 20_000
    for offset in range(0, rows, batch):
        await service.store.record_usage(*ledger_rows(offset, min(batch, rows - offset), rows, rng))
    print(f"ledger: {rows:,} rows recorded in {time.perf_counter() - started:.1f} s")


async def bench_pages(service: ChatService, settings: Settings, runs: int) -> None:
    server = HttpServer(service.metrics, readiness_from_probes({}), host="127.0.0.1")
    mount_console(server, service, settings)
    await service.store.set_setting("user_daily_budget_usd", "2", "workspace", "slack", "T1")
    async with server, httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}", timeout=30) as client:
        form = await client.get("/admin/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert csrf is not None
        await client.post("/admin/login", data={"token": TOKEN, "csrf": csrf.group(1)})
        print("console pages (request to last byte on loopback; goal for the overview: < 200 ms):")
        for path in PAGES:
            samples = []
            for _ in range(runs):
                started = time.perf_counter()
                answer = await client.get(path)
                samples.append(time.perf_counter() - started)
                assert answer.status_code == 200, (path, answer.status_code)
            print(f"  {path}: {percentiles(samples)}, {len(answer.content) / 1000:.0f} kB")


async def bench_chart(service: ChatService, runs: int) -> None:
    await spend_chart_png(service.store, UsageFilter("slack", "T1"))  # matplotlib's first import
    samples, png = [], b""
    for _ in range(runs):
        started = time.perf_counter()
        png = await spend_chart_png(service.store, UsageFilter("slack", "T1"))
        samples.append(time.perf_counter() - started)
    print(f"spend chart PNG, workspace T1, 30 days: {percentiles(samples)}, {len(png) / 1000:.1f} kB")


async def main(rows: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "bench.db"
        settings = load_settings(
            _env_file=None,
            DATABASE_URL=f"sqlite:///{path}",
            SEEDBOT_ADMIN_TOKEN=TOKEN,
            SEEDBOT_WORKSPACE_MONTHLY_BUDGET_USD=str(Decimal(5000)),
        )
        service = await ChatService.open(settings)
        try:
            await fill(service, rows)
            await bench_pages(service, settings, runs=30)
            await bench_chart(service, runs=20)
        finally:
            await service.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ledger-rows", type=int, default=1_000_000)
    asyncio.run(main(parser.parse_args().ledger_rows))
