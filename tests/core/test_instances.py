"""Instances of the bot on one database: leases, and no two uncoordinated instances at once."""

from __future__ import annotations

import asyncio

from core.instances import Instance
from core.store import open_store


async def test_coordinated_instances_run_side_by_side(make_settings):
    store = await open_store(make_settings())
    one, two = Instance(store, coordinated=True), Instance(store, coordinated=True)
    await asyncio.wait_for(asyncio.gather(one.join(), two.join()), 2.0)
    assert await store.live_instances() == sorted([one.id, two.id])
    await store.close()
