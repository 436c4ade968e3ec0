"""`seedbot usage export`: the usage ledger to a file or stdout, with a progress bar on a terminal."""

from __future__ import annotations

import contextlib
import sys
from datetime import date
from pathlib import Path
from typing import TextIO

from bots.progress import ProgressBar
from core.config import Settings
from core.store import StoreError, open_store
from core.usage_export import ExportFormat, ExportGroup, export_usage, ledger_rows_between

EXIT_CONFIG = 3


async def usage_export(
    settings: Settings,
    *,
    since: date | None,
    until: date | None,
    by: ExportGroup | None,
    fmt: ExportFormat,
    output: Path | None,
    err: TextIO = sys.stderr,
) -> int:
    if since is not None and until is not None and until < since:
        print(f"seedbot: --until {until} is before --since {since}", file=err)
        return 2
    try:
        store = await open_store(settings)
    except StoreError as error:
        print(f"seedbot: {error}", file=err)
        return EXIT_CONFIG
    try:
        with contextlib.ExitStack() as files:
            # newline="" lets the csv module write its own line endings, as it documents.
            out = sys.stdout
            if output is not None:
                out = files.enter_context(output.open("w", encoding="utf-8", newline=""))
            total = await ledger_rows_between(store, since, until) if by is None else 0
            bar = ProgressBar(err, total)
            written = await export_usage(
                store, out, since=since, until=until, by=by, fmt=fmt, progress=bar.update
            )
            bar.close(written)
    except OSError as error:
        print(f"seedbot: cannot write {output}: {error.strerror}", file=err)
        return 1
    except StoreError as error:
        print(f"seedbot: {error}", file=err)
        return 1
    finally:
        await store.close()
    what = "ledger rows" if by is None else f"rows of totals per {by}"
    if output is not None:
        print(f"exported {written:,} {what} to {output}", file=err)
    return 0
