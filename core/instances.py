"""This process among the bot's instances: an id, a lease in the store, and taking over the dead.

Every `seedbot run` process holds a lease (a heartbeat row with an expiry) and records itself as the
owner of the replies it streams. Another instance takes over a reply only once its owner's lease has
expired, so a live peer's answers are never marked interrupted, and a crashed one's always are, within
a lease of its death.

An instance that is not coordinated (no Redis to share pacing and stops with) does not answer beside
a live peer: it says so once and waits for that lease to end, so a rolling restart of one instance
still works while two uncoordinated instances never run by accident.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import secrets
import socket
from collections.abc import Awaitable, Callable

from core.store import Store, StoreError

log = logging.getLogger("seedbot.instances")

LEASE_S = 10.0
# Renewed three times a lease, so one slow heartbeat does not make a live instance look dead.
HEARTBEAT_EVERY_S = LEASE_S / 3
WAITING = (
    "another seedbot instance ({peers}) is running on this database; several instances need REDIS_URL "
    "to coordinate. Waiting for it to stop (its lease ends {lease:.0f} s after its last heartbeat)."
)


def new_instance_id() -> str:
    """Unique per process, and telling to an operator: host, pid and a random suffix."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


class Instance:
    def __init__(
        self,
        store: Store,
        *,
        coordinated: bool,
        lease_s: float = LEASE_S,
        on_heartbeat: Callable[[bool], object] = lambda renewed: None,
    ) -> None:
        self.id = new_instance_id()
        self.store = store
        self.coordinated = coordinated
        self.lease_s = lease_s
        self._on_heartbeat = on_heartbeat  # told whether each renewal reached the database

    async def join(self) -> None:
        """Take this instance's lease; uncoordinated, first wait until no other instance holds one.

        Two instances starting at the same moment both find the other only after taking their
        leases: both give them back and try again after a random pause, so one goes on first."""
        said = False
        while True:
            peers = await self._peers() if not self.coordinated else []
            if not peers:
                await self.store.heartbeat(self.id, self.lease_s)
                peers = await self._peers() if not self.coordinated else []
                if not peers:
                    break
                # Someone took a lease at the same moment: both step back, for different times.
                await self.store.release_instance(self.id)
                await asyncio.sleep(random.uniform(0.05, 0.5))
                continue
            if not said:
                log.warning(WAITING.format(peers=", ".join(peers), lease=self.lease_s))
                said = True
            await asyncio.sleep(self.lease_s / 3)
        if said:
            log.info("the other instance is gone; starting")

    async def keep_alive(self, after_each: Callable[[], Awaitable[object]]) -> None:
        """Renew the lease for as long as the bot runs and, beside the renewals, `after_each()` one
        (taking over the dead). A database that does not answer is logged and tried again (cancel
        the task to stop).

        Taking over edits chat messages at the platform's pace and can outlast a lease: were the
        renewals to wait for it, this live instance would look dead to its peers."""
        renewed = asyncio.Event()
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._renewals(renewed), name="lease-renewals")
            tasks.create_task(self._after_renewals(renewed, after_each), name="lease-take-over")

    async def _renewals(self, renewed: asyncio.Event) -> None:
        while True:
            await asyncio.sleep(self.lease_s / 3)
            if await self._renew():
                renewed.set()

    @staticmethod
    async def _after_renewals(renewed: asyncio.Event, after_each: Callable[[], Awaitable[object]]) -> None:
        while True:
            await renewed.wait()
            renewed.clear()
            try:
                await after_each()
            except Exception:
                log.exception("taking over interrupted replies failed; trying again")

    async def leave(self) -> None:
        """Give the lease up at a clean shutdown, so a successor need not wait for it to expire."""
        try:
            await self.store.release_instance(self.id)
        except StoreError as error:
            log.warning("lease not released (%s); it expires in %.0f s", error, self.lease_s)

    async def _renew(self) -> bool:
        renewed = False
        try:
            await self.store.heartbeat(self.id, self.lease_s)
            renewed = True
        except StoreError as error:
            log.warning("lease not renewed (%s); trying again", error)
        except Exception:
            log.exception("lease not renewed; trying again")
        self._on_heartbeat(renewed)
        return renewed

    async def _peers(self) -> list[str]:
        return [peer for peer in await self.store.live_instances() if peer != self.id]
