"""`seedbot db copy --from sqlite:///bot.db --to postgresql://…`: the command around `core.store.copy`."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import TextIO

from core.config import is_postgres_url, sqlite_path
from core.store.base import StoreError
from core.store.copy import CopyError, Progress, copy_database
from core.store.postgres import redacted_url

EXIT_MISMATCH = 1
EXIT_UNUSABLE = 3  # as `seedbot db upgrade` for a database it cannot open


def progress_printer(stream: TextIO) -> Progress:
    """Progress on `stream`: one line rewritten in place on a terminal, plain lines otherwise (logs)."""
    live = stream.isatty()

    def report(table: str, done: int, total: int) -> None:
        line = f"copying {table}: {done:,} of {total:,} rows"
        if live:
            stream.write(f"\r{line}\x1b[K" + ("\n" if done == total else ""))
        else:
            stream.write(line + "\n")
        stream.flush()

    return report


def db_copy(parser: argparse.ArgumentParser, source: str, target: str, *, force: bool) -> int:
    path = sqlite_path(source)
    if path is None or "://" not in source:
        parser.error(f"db copy: --from takes a sqlite:///path.db URL (got {source.split('://')[0]}://…)")
    if not is_postgres_url(target):
        parser.error("db copy: --to takes a postgresql://user:password@host:port/database URL")
    print(f"copying {path} into {redacted_url(target)}", file=sys.stderr)
    try:
        tally = asyncio.run(copy_database(path, target, force=force, progress=progress_printer(sys.stderr)))
    except CopyError as error:
        print(f"seedbot: {error}", file=sys.stderr)
        return EXIT_MISMATCH
    except StoreError as error:
        print(f"seedbot: {error}", file=sys.stderr)
        return EXIT_UNUSABLE
    counts = ", ".join(f"{count:,} {table}" for table, count in tally.rows.items())
    print(f"copied and verified: {counts}; ledger total ${tally.ledger_usd}")
    return 0
