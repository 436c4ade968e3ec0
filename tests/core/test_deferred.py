"""Writes that found the database away are kept, in order, and written once it answers again."""

from __future__ import annotations

import asyncio

from core.deferred import DeferredWrites
from core.store import StoreError


class Database:
    """Takes writes while `up`, refuses them with StoreError while not."""

    def __init__(self) -> None:
        self.up = False
        self.written: list[str] = []

    def write(self, what: str):
        async def write() -> None:
            if not self.up:
                raise StoreError("the database is away")
            self.written.append(what)

        return write


async def test_writes_are_kept_while_the_database_is_away_and_written_in_order_when_it_returns():
    database = Database()
    deferred = DeferredWrites(retry_every_s=0.05)
    for what in ("ledger row", "final text", "second ledger row"):
        deferred.add(what, database.write(what))
    await asyncio.sleep(0.2)
    assert len(deferred) == 3 and database.written == []

    database.up = True
    for _ in range(100):  # up to 5 s
        if not deferred:
            break
        await asyncio.sleep(0.05)
    assert database.written == ["ledger row", "final text", "second ledger row"]
    await deferred.close()


async def test_beyond_the_limit_writes_are_counted_as_lost_and_shutdown_tries_once_more():
    database = Database()
    deferred = DeferredWrites(limit=2, retry_every_s=60)
    for what in ("one", "two", "three"):
        deferred.add(what, database.write(what))
    assert len(deferred) == 2 and deferred.dropped == 1
    database.up = True  # back just before the shutdown's last try
    await deferred.close()
    assert database.written == ["one", "two"]
