"""Writes that found the database away, kept in order and written once it answers again.

An answer that finishes during a database outage has been shown in chat and paid for: its ledger row
and its final text must not be lost with the outage. Each write kept here is idempotent (a ledger row
is keyed by its request id, an update sets the same values again), so writing it once more after a
failure that may have landed anyway is safe. They are kept in memory, at most `MAX_DEFERRED`; a
process that ends before the database returns says how many it could not write.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Awaitable, Callable

from core.store import StoreError

log = logging.getLogger("seedbot.deferred")

MAX_DEFERRED = 10_000
RETRY_EVERY_S = 2.0
# At shutdown, how long the last attempt to write what is waiting may take.
CLOSING_FLUSH_S = 5.0

Write = Callable[[], Awaitable[object]]


class DeferredWrites:
    def __init__(self, *, limit: int = MAX_DEFERRED, retry_every_s: float = RETRY_EVERY_S) -> None:
        self.limit = limit
        self.retry_every_s = retry_every_s
        self._waiting: collections.deque[tuple[str, Write]] = collections.deque()
        self._retrying: asyncio.Task[None] | None = None
        self.dropped = 0  # writes not kept because `limit` were waiting already

    def __len__(self) -> int:
        return len(self._waiting)

    def add(self, what: str, write: Write) -> None:
        """Keep `write` (described as `what` in the log) until the database takes it."""
        if len(self._waiting) >= self.limit:
            self.dropped += 1
            log.error("the database has been away too long: %s is lost (%d writes waiting)", what, self.limit)
            return
        if not self._waiting:
            log.warning("the database is away: %s will be written once it is back", what)
        self._waiting.append((what, write))
        if self._retrying is None or self._retrying.done():
            self._retrying = asyncio.create_task(self._retry(), name="deferred-writes")

    async def flush(self) -> bool:
        """Write what is waiting, in order; False at the first write the database still refuses (it
        and those after it stay)."""
        written = 0
        while self._waiting:
            what, write = self._waiting[0]
            try:
                await write()
            except StoreError:
                return False
            except Exception:
                log.exception("writing %s later failed; it is dropped", what)
            else:
                written += 1
            self._waiting.popleft()
        if written:
            log.info("the database is back: %d waiting writes written", written)
        return True

    async def close(self) -> None:
        """One last try, bounded, then say what could not be written."""
        if self._retrying is not None:
            self._retrying.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retrying
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CLOSING_FLUSH_S):
                await self.flush()
        if self._waiting:
            log.error(
                "shutting down with %d writes the database never took: %s",
                len(self._waiting),
                ", ".join(what for what, _ in list(self._waiting)[:10]),
            )

    async def _retry(self) -> None:
        # Polling: nothing announces that the database is back but a write that works.
        while not await self.flush():  # noqa: ASYNC110
            await asyncio.sleep(self.retry_every_s)
