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


async def nothing() -> None:
    """What a test instance does after each heartbeat: it has no dead peers to take over from."""


async def test_of_two_uncoordinated_instances_starting_together_one_waits_while_the_other_lives(
    make_settings,
):
    store = await open_store(make_settings())
    instances = [Instance(store, coordinated=False, lease_s=4.0) for _ in range(2)]
    joining = {asyncio.create_task(instance.join()): instance for instance in instances}
    started, waiting = await asyncio.wait(joining, timeout=20, return_when=asyncio.FIRST_COMPLETED)
    [first] = started  # both at once would be two uncoordinated instances answering
    winner = joining[first]
    [still_waiting] = waiting
    loser = joining[still_waiting]
    renewing = asyncio.create_task(winner.keep_alive(nothing))
    # Two whole leases later the winner, renewing, is still the only one.
    await asyncio.wait([still_waiting], timeout=2 * winner.lease_s)
    assert not still_waiting.done()
    assert await store.live_instances() == [winner.id]
    renewing.cancel()
    await asyncio.gather(renewing, return_exceptions=True)
    await winner.leave()
    await asyncio.wait_for(still_waiting, 20)
    assert await store.live_instances() == [loser.id]
    await store.close()


async def test_each_renewal_of_the_lease_is_reported_renewed_or_failed(make_settings):
    store = await open_store(make_settings())
    outcomes: list[bool] = []
    instance = Instance(store, coordinated=True, lease_s=0.3, on_heartbeat=outcomes.append)
    await instance.join()
    renewing = asyncio.create_task(instance.keep_alive(nothing))
    for _ in range(100):  # up to 10 s
        if outcomes.count(True) >= 2:
            break
        await asyncio.sleep(0.1)
    await store.close()  # the database is gone from under the instance
    for _ in range(100):
        if False in outcomes:
            break
        await asyncio.sleep(0.1)
    renewing.cancel()
    await asyncio.gather(renewing, return_exceptions=True)
    assert outcomes.count(True) >= 2
    assert outcomes[-1] is False


async def test_the_lease_is_renewed_while_taking_over_outlasts_it(make_settings):
    """Taking over edits chat at the platform's pace and can take longer than a lease: the instance
    must not look dead to its peers meanwhile."""
    store = await open_store(make_settings())
    renewals: list[bool] = []
    instance = Instance(store, coordinated=True, lease_s=0.3, on_heartbeat=renewals.append)
    await instance.join()
    taking_over = asyncio.Event()
    taken_over = asyncio.Event()

    async def slow_take_over() -> None:
        taking_over.set()
        await taken_over.wait()

    renewing = asyncio.create_task(instance.keep_alive(slow_take_over))
    await asyncio.wait_for(taking_over.wait(), 10)
    renewed_before = len(renewals)
    for _ in range(100):  # up to 10 s
        if len(renewals) >= renewed_before + 3:
            break
        await asyncio.sleep(0.1)
    still_live = await store.live_instances()
    taken_over.set()
    renewing.cancel()
    await asyncio.gather(renewing, return_exceptions=True)
    await store.close()
    assert renewals[renewed_before:] == [True] * (len(renewals) - renewed_before)
    assert len(renewals) >= renewed_before + 3
    assert still_live == [instance.id]
