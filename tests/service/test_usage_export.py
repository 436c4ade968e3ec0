"""`seedbot usage export`: CSV and JSON Lines that add up to the store's own totals, in flat memory."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bots.cli import main
from bots.progress import ProgressBar
from core.config import Settings
from core.store import open_store
from core.store.base import LedgerEntry, UsageFilter, UsageTotals
from core.usage_export import ENTRY_COLUMNS, export_usage
from tests.core.store.entries import NOW, entry
from tests.process import REPO, SEEDBOT

TODAY = NOW.date()


def ledger() -> list[LedgerEntry]:
    """Two platforms, several scopes and days, amounts down to the nano-dollar."""
    rows = []
    for n in range(60):
        rows.append(
            entry(
                platform="slack" if n % 3 else "discord",
                workspace=f"W{n % 2}",
                channel=f"C{n % 5}",
                user=f"U{n % 7}",
                prompt_tokens=100 + n,
                completion_tokens=50 + n,
                reasoning_tokens=n,
                cached_tokens=n // 2,
                usd=Decimal(n + 1) / Decimal(1_000_000_000) + Decimal(n) / 1000,
                cost_source="estimated" if n % 4 == 0 else "reported",
                outcome="error" if n == 5 else "ok",
                at=NOW - timedelta(days=n % 10, minutes=n),
            )
        )
    return rows


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Path]:
    """A database holding `rows`, which the `seedbot` command will find through DATABASE_URL."""
    path = tmp_path / "seedbot.db"
    monkeypatch.chdir(tmp_path)  # no stray .env is read
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{path}")

    def fill(rows: list[LedgerEntry]) -> Path:
        async def record() -> None:
            store = await open_store(Settings(_env_file=None, database_url=f"sqlite:///{path}"))
            try:
                await store.record_usage(*rows)
            finally:
                await store.close()

        asyncio.run(record())
        return path

    return fill


async def store_totals(path: Path, where: UsageFilter, since: Any = None) -> UsageTotals:
    store = await open_store(Settings(_env_file=None, database_url=f"sqlite:///{path}"))
    try:
        return await store.usage_totals(where, since)
    finally:
        await store.close()


def totals_of(rows: list[dict[str, str]]) -> UsageTotals:
    return UsageTotals(
        requests=sum(int(row.get("requests", 1)) for row in rows),
        prompt_tokens=sum(int(row["prompt_tokens"]) for row in rows),
        completion_tokens=sum(int(row["completion_tokens"]) for row in rows),
        reasoning_tokens=sum(int(row["reasoning_tokens"]) for row in rows),
        cached_tokens=sum(int(row["cached_tokens"]) for row in rows),
        usd=sum((Decimal(row["usd"]) for row in rows), Decimal(0)),
    )


def export(tmp_path: Path, *args: str) -> str:
    output = tmp_path / "export.out"
    assert main(["usage", "export", "--output", str(output), *args]) == 0
    return output.read_text(encoding="utf-8")


def test_one_csv_row_per_call_adds_up_to_the_stores_totals(database, tmp_path: Path) -> None:
    path = database(ledger())
    rows = list(csv.DictReader(io.StringIO(export(tmp_path))))

    assert tuple(rows[0]) == ENTRY_COLUMNS
    assert len(rows) == 60 and len({row["request_id"] for row in rows}) == 60
    for platform in ("slack", "discord"):
        mine = [row for row in rows if row["platform"] == platform]
        assert totals_of(mine) == asyncio.run(store_totals(path, UsageFilter(platform)))
    assert {row["cost_source"] for row in rows} == {"reported", "estimated"}
    assert [row["at"] for row in rows] == sorted(row["at"] for row in rows)
    assert "E-" not in "".join(row["usd"] for row in rows)  # exact decimals, never exponents


def test_since_and_until_take_whole_utc_days(database, tmp_path: Path) -> None:
    path = database(ledger())
    since = TODAY - timedelta(days=3)
    rows = list(csv.DictReader(io.StringIO(export(tmp_path, "--since", since.isoformat()))))
    until = list(
        csv.DictReader(io.StringIO(export(tmp_path, "--until", (since - timedelta(days=1)).isoformat())))
    )

    slack_rows = [row for row in rows if row["platform"] == "slack"]
    assert totals_of(slack_rows) == asyncio.run(store_totals(path, UsageFilter("slack"), since))
    assert len(rows) + len(until) == 60


@pytest.mark.parametrize("by", ["user", "channel", "workspace", "day"])
def test_grouped_totals_add_up_to_the_stores_totals(database, tmp_path: Path, by: str) -> None:
    path = database(ledger())
    rows = list(csv.DictReader(io.StringIO(export(tmp_path, "--by", by))))

    keys = {"user": ["platform", "workspace", "user"], "channel": ["platform", "workspace", "channel"]}
    expected_keys = keys.get(by, ["platform", "workspace"] if by == "workspace" else ["day", "platform"])
    assert list(rows[0])[: len(expected_keys)] == expected_keys
    assert len({tuple(row[key] for key in expected_keys) for row in rows}) == len(rows)
    for platform in ("slack", "discord"):
        mine = [row for row in rows if row["platform"] == platform]
        assert totals_of(mine) == asyncio.run(store_totals(path, UsageFilter(platform)))


def test_json_lines_carry_exact_money_as_strings(database, tmp_path: Path) -> None:
    database([entry(usd=Decimal("0.000000001")), entry(usd=Decimal("1234.5"))])

    lines = export(tmp_path, "--format", "json").splitlines()

    objects = [json.loads(line) for line in lines]
    assert sorted(obj["usd"] for obj in objects) == ["0.000000001", "1234.5"]
    assert set(objects[0]) == set(ENTRY_COLUMNS)
    assert isinstance(objects[0]["prompt_tokens"], int)


def test_bad_dates_are_a_usage_error(database, capsys: pytest.CaptureFixture[str]) -> None:
    database([])
    with pytest.raises(SystemExit) as exited:
        main(["usage", "export", "--since", "last tuesday"])
    assert exited.value.code == 2
    assert "not a date" in capsys.readouterr().err
    assert main(["usage", "export", "--since", "2026-05-02", "--until", "2026-05-01"]) == 2


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


async def test_progress_is_drawn_on_a_terminal_only(tmp_path: Path) -> None:
    store = await open_store(Settings(_env_file=None, database_url=f"sqlite:///{tmp_path / 'p.db'}"))
    try:
        await store.record_usage(*(entry() for _ in range(5000)))
        terminal, pipe = Terminal(), io.StringIO()
        for stream in (terminal, pipe):
            bar = ProgressBar(stream, 5000)
            written = await export_usage(store, io.StringIO(), progress=bar.update)
            bar.close(written)
    finally:
        await store.close()

    assert pipe.getvalue() == ""
    assert terminal.getvalue().endswith("] 100%  5,000 / 5,000 rows\n")
    assert terminal.getvalue().count("\r") >= 1


# --- memory ---------------------------------------------------------------------------------------------

FILL = """
import asyncio, sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from core.config import Settings
from core.store import open_store
from core.store.base import LedgerEntry

async def fill(url, rows):
    store = await open_store(Settings(_env_file=None, database_url=url))
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for first in range(0, rows, 20_000):
        await store.record_usage(*(
            LedgerEntry(f"r{n}", "slack", f"T{n % 3}", f"C{n % 40}", f"U{n % 300}", "m", "medium",
                        n % 9000, n % 3000, n % 1000, n % 500, Decimal(n % 7919) / 10**9, "reported",
                        0.5, 2.0, "ok", start + timedelta(seconds=n * 10))
            for n in range(first, min(first + 20_000, rows))
        ))
    await store.close()

asyncio.run(fill(sys.argv[1], int(sys.argv[2])))
"""


def peak_rss_of_export(database: Path, output: Path) -> int:
    """Peak resident memory (KiB) of a `seedbot usage export` process, measured by the kernel."""
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{database}"}
    process = subprocess.Popen(
        [*SEEDBOT, "usage", "export", "--output", str(output)], cwd=database.parent, env=env
    )
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    assert process.returncode == 0
    return usage.ru_maxrss


@pytest.mark.timeout(240)
def test_exporting_ten_times_the_rows_takes_no_more_memory(tmp_path: Path) -> None:
    sizes = {"small": 20_000, "big": 200_000}
    peaks = {}
    for name, rows in sizes.items():
        (tmp_path / name).mkdir()
        path = tmp_path / name / "seedbot.db"
        subprocess.run([sys.executable, "-c", FILL, f"sqlite:///{path}", str(rows)], cwd=REPO, check=True)
        peaks[name] = peak_rss_of_export(path, tmp_path / name / "out.csv")
        assert sum(1 for _ in (tmp_path / name / "out.csv").open()) == rows + 1

    # Holding the rows would cost ~1 KiB each (a LedgerEntry and its CSV row): ~175 MiB more for the
    # big export. What may grow is bounded: SQLite's page cache (32 MiB) fills with a bigger file.
    grown_mib = (peaks["big"] - peaks["small"]) / 1024
    assert grown_mib < 40, f"peak RSS grew by {grown_mib:.0f} MiB from 20k to 200k rows: {peaks}"
