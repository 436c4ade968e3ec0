"""Processed platform events: a redelivered event is handled once, also after a restart."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from core.config import Settings
from core.store import open_store
from core.store.base import Store


async def test_an_event_is_claimed_only_the_first_time(store: Store) -> None:
    assert await store.claim_event("slack", "Ev1")
    assert not await store.claim_event("slack", "Ev1")
    assert await store.claim_event("discord", "Ev1")  # ids are per platform
    assert await store.claim_event("slack", "Ev2")


async def test_concurrent_redeliveries_are_claimed_exactly_once(store: Store) -> None:
    claims = await asyncio.gather(*(store.claim_event("slack", f"Ev{n % 10}") for n in range(200)))
    assert sum(claims) == 10


async def test_a_claim_survives_a_restart(settings: Settings) -> None:
    store = await open_store(settings)
    assert await store.claim_event("slack", "Ev1")
    await store.close()

    reopened = await open_store(settings)
    try:
        assert not await reopened.claim_event("slack", "Ev1")
    finally:
        await reopened.close()


async def test_old_claims_are_purged(store: Store) -> None:
    now = datetime(2026, 5, 10, 12, tzinfo=UTC)
    await store.claim_event("slack", "old", at=now - timedelta(days=8))
    await store.claim_event("slack", "new", at=now - timedelta(days=1))

    assert await store.purge_events(now - timedelta(days=7)) == 1

    assert await store.claim_event("slack", "old")
    assert not await store.claim_event("slack", "new")
