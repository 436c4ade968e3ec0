"""Instance leases, and recovery that takes over only the streaming replies of dead instances."""

from __future__ import annotations

import asyncio

from core.config import Settings
from core.models import ConversationKey
from core.store import open_store
from core.store.base import Store

THREAD = ConversationKey("slack", "T1", "C1", "1700000000.000100")


async def test_a_lease_is_live_until_it_expires_or_is_released(store: Store) -> None:
    assert await store.live_instances() == []
    await store.heartbeat("b", ttl_s=60)
    await store.heartbeat("a", ttl_s=60)
    await store.heartbeat("short", ttl_s=0.2)
    assert await store.live_instances() == ["a", "b", "short"]

    await asyncio.sleep(0.4)
    assert await store.live_instances() == ["a", "b"]
    await store.release_instance("b")
    assert await store.live_instances() == ["a"]


async def test_a_heartbeat_renews_an_expired_lease(store: Store) -> None:
    await store.heartbeat("a", ttl_s=0.1)
    await asyncio.sleep(0.3)
    assert await store.live_instances() == []
    await store.heartbeat("a", ttl_s=60)
    assert await store.live_instances() == ["a"]


async def streaming(store: Store, owner: str | None, text: str) -> int:
    return await store.add_message(THREAD, "assistant", "B1", "Seed", text, status="streaming", owner=owner)


async def test_recovery_leaves_the_replies_of_live_instances_alone(store: Store) -> None:
    await store.heartbeat("alive", ttl_s=60)
    await store.heartbeat("dying", ttl_s=0.1)
    await streaming(store, "alive", "in progress")
    dead = await streaming(store, "dying", "of an expired lease")
    gone = await streaming(store, "vanished", "of an instance without a lease")
    orphan = await streaming(store, None, "of a seedbot that recorded no owner")
    await asyncio.sleep(0.3)

    recovered = await store.recover_streaming("newcomer")

    assert [(m.id, m.status) for m in recovered] == [
        (dead, "interrupted"),
        (gone, "interrupted"),
        (orphan, "interrupted"),
    ]
    statuses = {m.text: m.status for m in await store.conversation(THREAD)}
    assert statuses["in progress"] == "streaming"
    assert await store.recover_streaming("newcomer") == []


async def test_a_restarted_instance_takes_over_its_own_replies_before_its_lease_runs_out(
    store: Store,
) -> None:
    await store.heartbeat("bot-1", ttl_s=60)
    mine = await streaming(store, "bot-1", "cut off by the restart")
    await store.heartbeat("bot-2", ttl_s=60)
    await streaming(store, "bot-2", "another live instance's")

    assert [m.id for m in await store.recover_streaming("bot-1")] == [mine]


async def test_without_an_instance_id_recovery_takes_every_reply_nobody_holds(settings: Settings) -> None:
    # One instance, as before leases: whatever it left streaming is taken over at its next start.
    store = await open_store(settings)
    first = await streaming(store, None, "one")
    second = await streaming(store, "bot-1", "two")
    await store.close()

    restarted = await open_store(settings)
    try:
        assert [m.id for m in await restarted.recover_streaming()] == [first, second]
    finally:
        await restarted.close()
