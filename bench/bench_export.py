"""Usage export benchmark: `seedbot usage export` of a 1,000,000-row ledger against a tenth of it.

    .venv/bin/python bench/bench_export.py [--ledger-rows 1000000]

Peak RSS of each export process is the kernel's figure (wait4); flat memory means the whole ledger
costs no more than a tenth of it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from bench_store import NOW, YEAR, ledger_rows

from core.config import load_settings
from core.store import open_store


async def fill(url: str, rows: int) -> None:
    store = await open_store(load_settings(_env_file=None, DATABASE_URL=url))
    rng = random.Random(7)
    started = time.perf_counter()
    for offset in range(0, rows, 20_000):
        await store.record_usage(*ledger_rows(offset, min(20_000, rows - offset), rows, rng))
    await store.close()
    print(f"ledger: {rows:,} rows recorded in {time.perf_counter() - started:.1f} s")


def export(url: str, output: Path, *args: str) -> tuple[float, int, int]:
    """(seconds, peak RSS in KiB, rows written) of one export process."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "bots.cli", "usage", "export", "--output", str(output), *args],
        env={**os.environ, "DATABASE_URL": url},
        stderr=subprocess.DEVNULL,
    )
    _, status, usage = os.wait4(process.pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    with output.open("rb") as written:
        rows = sum(1 for _ in written) - 1
    return time.perf_counter() - started, usage.ru_maxrss, rows


def main(rows: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        url = f"sqlite:///{Path(directory) / 'bench.db'}"
        asyncio.run(fill(url, rows))
        # The ledger spreads evenly over the past year: its first 36 days are about a tenth of it.
        tenth_until = (NOW - YEAR + timedelta(days=36)).date().isoformat()
        out = Path(directory) / "out.csv"
        results = {
            "a tenth": export(url, out, "--until", tenth_until),
            "all": export(url, out),
        }
        json_seconds, json_rss, _ = export(url, Path(directory) / "out.jsonl", "--format", "json")
        for name, (seconds, rss, written) in results.items():
            print(
                f"export {name}: {written:,} rows in {seconds:.1f} s ({written / seconds:,.0f} rows/s),"
                f" peak RSS {rss / 1024:.0f} MiB"
            )
        print(f"export all as JSON Lines: {json_seconds:.1f} s, peak RSS {json_rss / 1024:.0f} MiB")
        grown = (results["all"][1] - results["a tenth"][1]) / 1024
        print(f"peak RSS grew by {grown:.0f} MiB for ten times the rows")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ledger-rows", type=int, default=1_000_000)
    main(parser.parse_args().ledger_rows)
