"""The usage export: the ledger as CSV or JSON Lines, one row per model call or totals per group.

Rows are written as they are read (`Store.iter_ledger` reads the ledger in keyset batches), so memory
stays flat however big the ledger is. JSON output is JSON Lines, one object per line, because a
streamed array cannot be read back until its closing bracket arrives and JSON Lines can be read (and
`grep`ed, split, appended to) line by line. Money is a string with the exact decimal amount.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Sequence
from datetime import date
from decimal import Decimal
from typing import Literal, Protocol, TextIO

from core.store.base import LedgerEntry, Store, UsageTotals

ExportGroup = Literal["user", "channel", "workspace", "day"]
EXPORT_GROUPS: tuple[ExportGroup, ...] = ("user", "channel", "workspace", "day")
ExportFormat = Literal["csv", "json"]
EXPORT_FORMATS: tuple[ExportFormat, ...] = ("csv", "json")

Row = dict[str, str | int | None]

ENTRY_COLUMNS = (
    "request_id", "at", "platform", "workspace", "channel", "user", "model", "effort", "prompt_tokens",
    "completion_tokens", "reasoning_tokens", "cached_tokens", "usd", "cost_source", "outcome",
)  # fmt: skip
TOTAL_COLUMNS = ("requests", "prompt_tokens", "completion_tokens", "reasoning_tokens", "cached_tokens", "usd")
GROUP_KEYS: dict[ExportGroup, tuple[str, ...]] = {
    "user": ("platform", "workspace", "user"),
    "channel": ("platform", "workspace", "channel"),
    "workspace": ("platform", "workspace"),
    "day": ("day", "platform"),
}
# How often the progress callback hears about rows written: often enough for a smooth bar, rarely
# enough to cost nothing per row.
PROGRESS_EVERY = 2000


class RowWriter(Protocol):
    def write(self, row: Row) -> None: ...


class _CsvWriter:
    def __init__(self, out: TextIO, columns: Sequence[str]) -> None:
        self._writer = csv.DictWriter(out, columns, lineterminator="\n")
        self._writer.writeheader()

    def write(self, row: Row) -> None:
        self._writer.writerow(row)


class _JsonLinesWriter:
    def __init__(self, out: TextIO) -> None:
        self._out = out

    def write(self, row: Row) -> None:
        self._out.write(json.dumps(row, ensure_ascii=False, separators=(",", ":")))
        self._out.write("\n")


def usd_text(usd: Decimal) -> str:
    """An exact decimal amount, never in exponent notation (`Decimal.normalize` may give `1E-9`)."""
    return format(usd, "f")


def entry_row(entry: LedgerEntry) -> Row:
    return {
        "request_id": entry.request_id,
        "at": entry.at.isoformat(),
        "platform": entry.platform,
        "workspace": entry.workspace,
        "channel": entry.channel,
        "user": entry.user,
        "model": entry.model,
        "effort": entry.effort,
        "prompt_tokens": entry.prompt_tokens,
        "completion_tokens": entry.completion_tokens,
        "reasoning_tokens": entry.reasoning_tokens,
        "cached_tokens": entry.cached_tokens,
        "usd": usd_text(entry.usd),
        "cost_source": entry.cost_source,
        "outcome": entry.outcome,
    }


def _totals_row(keys: Row, totals: UsageTotals) -> Row:
    return {
        **keys,
        "requests": totals.requests,
        "prompt_tokens": totals.prompt_tokens,
        "completion_tokens": totals.completion_tokens,
        "reasoning_tokens": totals.reasoning_tokens,
        "cached_tokens": totals.cached_tokens,
        "usd": usd_text(totals.usd),
    }


async def _group_rows(store: Store, by: ExportGroup, since: date | None, until: date | None) -> list[Row]:
    """Grouped totals come from the roll-ups: exact, and as many rows as groups, not calls."""
    if by == "day":
        return [
            _totals_row({"day": day.day.isoformat(), "platform": day.platform}, day.totals)
            for day in await store.usage_by_day(since, until)
        ]
    rows = []
    for group in await store.usage_groups(by, since, until):
        keys: Row = {"platform": group.platform, "workspace": group.workspace}
        if by != "workspace":
            keys[by] = group.key
        rows.append(_totals_row(keys, group.totals))
    return rows


async def export_usage(
    store: Store,
    out: TextIO,
    *,
    since: date | None = None,
    until: date | None = None,
    by: ExportGroup | None = None,
    fmt: ExportFormat = "csv",
    progress: Callable[[int], None] | None = None,
) -> int:
    """Write the ledger rows (or with `by`, the totals per group) of UTC days `since`..`until` (both
    included) to `out`; returns how many rows were written. `progress` hears the running count."""
    columns = ENTRY_COLUMNS if by is None else (*GROUP_KEYS[by], *TOTAL_COLUMNS)
    writer: RowWriter = _CsvWriter(out, columns) if fmt == "csv" else _JsonLinesWriter(out)
    written = 0
    if by is None:
        async for entry in store.iter_ledger(since, until):
            writer.write(entry_row(entry))
            written += 1
            if progress is not None and written % PROGRESS_EVERY == 0:
                progress(written)
    else:
        for row in await _group_rows(store, by, since, until):
            writer.write(row)
            written += 1
    if progress is not None:
        progress(written)
    return written


async def ledger_rows_between(store: Store, since: date | None, until: date | None) -> int:
    """How many ledger rows an export of those days will write, from the daily roll-up (cheap)."""
    return sum(day.totals.requests for day in await store.usage_by_day(since, until))
