"""Concurrent writers, in one process and in two, lose no row and count nothing twice."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

from core.config import Settings
from core.models import AttachmentMeta, ConversationKey
from core.store.base import Store, UsageFilter
from tests.core.store.entries import entry
from tests.core.store.processes import finish, go, read_line, start_worker
from tests.core.store.worker import SHARED, TASKS


async def test_hundreds_of_concurrent_writer_tasks_lose_nothing(store: Store) -> None:
    key = ConversationKey("discord", "G1", "C1", "")

    async def writer(n: int) -> None:
        meta = AttachmentMeta("image", "image/png", n, f"{n:064x}", f"{n}.png")
        message_id = await store.add_message(
            key, "user", f"U{n % 7}", "someone", f"m{n}", attachments=[meta, meta]
        )
        await store.update_message(message_id, text=f"m{n}!")
        await store.record_usage(entry(request_id=f"task-{n}", platform="discord", workspace="G1"))
        await store.record_usage(entry(request_id=f"task-{n}", platform="discord", workspace="G1"))

    await asyncio.gather(*(writer(n) for n in range(300)))

    messages = await store.conversation(key, limit=1000)
    assert sorted(m.text for m in messages) == sorted(f"m{n}!" for n in range(300))
    assert all(len(m.attachments) == 2 for m in messages)
    assert (await store.usage_totals(UsageFilter("discord", "G1"))).requests == 300


async def test_a_cancelled_writer_leaves_no_half_transaction(store: Store) -> None:
    key = ConversationKey("slack", "T1", "C1", "cancel")
    metas = [AttachmentMeta("image", "image/png", n, f"{n:064x}", f"{n}.png") for n in range(5)]
    tasks = [
        asyncio.create_task(store.add_message(key, "user", "U1", "Ann", f"{n}", attachments=metas))
        for n in range(50)
    ]
    await asyncio.sleep(0)
    for task in tasks[::2]:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)

    # Later writes still work, and every stored message has all of its attachments.
    await store.add_message(key, "user", "U1", "Ann", "after", attachments=metas)
    messages = await store.conversation(key, limit=100)
    assert messages[-1].text == "after"
    assert all(len(m.attachments) == 5 for m in messages)


async def test_two_processes_on_one_database_lose_nothing_and_count_once(
    settings: Settings, store: Store
) -> None:
    url = settings.database_url.get_secret_value()
    workers = [await start_worker(url, name, "mix") for name in ("alpha", "beta")]
    for worker in workers:
        go(worker)
    summaries = [json.loads(await read_line(worker)) for worker in workers]
    assert [await finish(worker) for worker in workers] == [0, 0]

    messages = await store.conversation(SHARED, limit=10 * TASKS)
    assert sorted(m.text for m in messages) == sorted(
        f"{name}-{n}" for name in ("alpha", "beta") for n in range(TASKS)
    )
    assert all(len(m.attachments) == 2 for m in messages)
    # Each shared event id was claimed by exactly one of the two processes.
    claimed = summaries[0]["claimed"] + summaries[1]["claimed"]
    assert sorted(claimed) == list(range(TASKS))
    # Own request ids from both, shared ids once.
    assert (await store.usage_totals(UsageFilter("slack", "T1"))).requests == 3 * TASKS
    budget = await store.usage_totals(UsageFilter("slack", "T9", user="budget-user"))
    assert budget.usd <= Decimal("1.00")
    assert budget.requests == summaries[0]["granted"] + summaries[1]["granted"] == 33
