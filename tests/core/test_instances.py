"""Instances of the bot on one database: leases, and no two uncoordinated instances at once."""

from __future__ import annotations

import asyncio

from core.instances import Instance
from core.store import open_store


async def test_of_two_uncoordinated_instances_starting_together_one_waits_for_the_other(make_settings):
    store = await open_store(make_settings())
    one, two = (
        Instance(store, coordinated=False, lease_s=0.3),
        Instance(store, coordinated=False, lease_s=0.3),
    )
    joining = [asyncio.create_task(one.join()), asyncio.create_task(two.join())]
    done, waiting = await asyncio.wait(joining, timeout=1.0, return_when=asyncio.FIRST_COMPLETED)
    assert len(done) == 1 and len(waiting) == 1
    winner = one if joining[0] in done else two
    assert await store.live_instances() == [winner.id]
    await winner.leave()
    await asyncio.wait_for(waiting.pop(), 10.0)
    assert await store.live_instances() == [(two if winner is one else one).id]
    await store.close()


async def test_coordinated_instances_run_side_by_side(make_settings):
    store = await open_store(make_settings())
    one, two = Instance(store, coordinated=True), Instance(store, coordinated=True)
    await asyncio.wait_for(asyncio.gather(one.join(), two.join()), 2.0)
    assert await store.live_instances() == sorted([one.id, two.id])
    await store.close()
