"""A separate OS process writing to the same database, for the multi-process tests.

    python -m tests.core.store.worker DATABASE_URL NAME MODE

It opens the store, prints "ready", waits for a line on stdin, then works:
- `mix`: many concurrent tasks append messages (two attachments each), claim shared event ids, record
  usage (some request ids shared with the other process) and take budget holds; prints a JSON summary.
- `budget`: BUDGET_TASKS concurrent tasks each reserve HOLD against a daily LIMIT and settle at the
  whole amount; prints how many were granted.
- `reply`: stores a prompt and a streaming reply, then keeps growing the reply and appending messages
  with attachments until it is killed; prints "streaming" once the reply exists.
"""

from __future__ import annotations

import asyncio
import json
import sys
from decimal import Decimal

from core.config import load_settings
from core.models import AttachmentMeta, ConversationKey
from core.store import open_store
from core.store.base import Reservation, ReservationRequest, Store
from tests.core.store.entries import NOW, entry

SHARED = ConversationKey("slack", "T1", "C1", "shared")
TASKS = 150
BUDGET_TASKS = 100
HOLD = Decimal("0.03")
LIMIT = Decimal("1.00")


def attachments(tag: str) -> list[AttachmentMeta]:
    return [AttachmentMeta("image", "image/png", n, f"{n:064x}", f"{tag}-{n}.png") for n in (1, 2)]


async def mix(store: Store, name: str) -> dict[str, object]:
    async def one(n: int) -> tuple[bool, bool]:
        await store.add_message(
            SHARED, "user", name, name, f"{name}-{n}", attachments=attachments(f"{name}-{n}")
        )
        claimed = await store.claim_event("slack", f"ev-{n}")
        await store.record_usage(entry(request_id=f"{name}-{n}", usd=Decimal("0.001")))
        await store.record_usage(entry(request_id=f"shared-{n}", usd=Decimal("0.001")))
        outcome = await store.reserve_budget(
            ReservationRequest("slack", "T9", "budget-user", Decimal("0.03"), Decimal("1.00"), None, at=NOW)
        )
        granted = isinstance(outcome, Reservation)
        if isinstance(outcome, Reservation):
            paid = entry(
                request_id=f"{name}-budget-{n}", workspace="T9", user="budget-user", usd=outcome.amount
            )
            await store.settle_reservation(outcome.id, paid)
        return claimed, granted

    results = await asyncio.gather(*(one(n) for n in range(TASKS)))
    return {
        "claimed": [n for n, (claimed, _) in enumerate(results) if claimed],
        "granted": sum(granted for _, granted in results),
    }


async def budget(store: Store, name: str) -> int:
    async def one(n: int) -> bool:
        outcome = await store.reserve_budget(
            ReservationRequest("slack", "T9", "budget-user", HOLD, LIMIT, None, at=NOW)
        )
        if not isinstance(outcome, Reservation):
            return False
        paid = entry(request_id=f"{name}-{n}", workspace="T9", user="budget-user", usd=outcome.amount)
        await store.settle_reservation(outcome.id, paid)
        return True

    return sum(await asyncio.gather(*(one(n) for n in range(BUDGET_TASKS))))


async def reply(store: Store, name: str) -> None:
    await store.add_message(SHARED, "user", "U1", "Ann", "tell me a long story")
    reply_id = await store.add_message(
        SHARED, "assistant", "B1", "Seed", "", status="streaming", platform_message_id="reply-1"
    )
    print("streaming", flush=True)
    text = ""
    for n in range(1_000_000):
        text += f"word{n} "
        await store.update_message(reply_id, text=text)
        await store.add_message(
            SHARED, "user", "U2", "Bob", f"aside {n}", attachments=attachments(f"aside-{n}")
        )


async def main(url: str, name: str, mode: str) -> None:
    store = await open_store(load_settings(_env_file=None, DATABASE_URL=url))
    try:
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        if mode == "mix":
            print(json.dumps(await mix(store, name)), flush=True)
        elif mode == "budget":
            print(await budget(store, name), flush=True)
        else:
            await reply(store, name)
    finally:
        await store.close()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
