"""Store benchmark: turn appends, context for a long conversation, /cost over a big ledger, budget holds.

    .venv/bin/python bench/bench_store.py [--ledger-rows 1000000]

Runs on a fresh SQLite file in a temporary directory and prints its numbers (a couple of minutes at most).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from core.config import Settings, load_settings
from core.context import NewTurn, assemble_context
from core.costs import BudgetPolicy, spend_report, worst_case_cost
from core.llm.types import TextPart
from core.models import AttachmentMeta, ConversationKey
from core.store import open_store
from core.store.base import LedgerEntry, Reservation, Store, UsageFilter

NOW = datetime.now(UTC)
YEAR = timedelta(days=365)
PHOTO = AttachmentMeta("image", "image/jpeg", 345_678, "ab" * 32, "photo.jpg", "F0123")
ANSWER = "Here is a reasonably long answer with some detail. " * 20


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"p50 {ms(statistics.median(ordered))}, p99 {ms(p99)} (n={len(ordered)})"


async def timed(action: Callable[[], Awaitable[object]], runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        await action()
        samples.append(time.perf_counter() - started)
    return samples


async def bench_appends(store: Store, turns: int) -> None:
    key = ConversationKey("slack", "T1", "C1", "append")
    messages, whole_turns = [], []
    for n in range(turns):
        started = time.perf_counter()
        await store.add_message(
            key, "user", "U1", "Ann", f"question {n}", attachments=[PHOTO], platform_message_id=f"q{n}"
        )
        asked = time.perf_counter()
        reply = await store.add_message(key, "assistant", "B1", "Seed", "", status="streaming")
        await store.update_message(reply, text=ANSWER, status="complete", platform_message_id=f"a{n}")
        done = time.perf_counter()
        messages.append(asked - started)
        whole_turns.append(done - started)
    print(f"append a message (with 1 attachment): {percentiles(messages)}")
    print(f"append a turn (prompt, streaming reply, final update): {percentiles(whole_turns)}")


async def bench_context(store: Store, settings: Settings) -> None:
    key = ConversationKey("slack", "T1", "C2", "long")
    for n in range(500):
        attachments = [PHOTO] if n % 10 == 0 else []
        await store.add_message(
            key, "user", f"U{n % 3}", f"user{n % 3}", f"question {n} " * 10, attachments=attachments
        )
        await store.add_message(key, "assistant", "B1", "Seed", ANSWER)
    turn = NewTurn("U1", "user1", [TextPart(text="and what about the last one?")])

    async def load_and_assemble() -> None:
        history = await store.conversation(key, limit=1000)
        assemble_context(history, turn, settings=settings, media_parts=lambda meta: None)

    history = await store.conversation(key, limit=1000)
    context = assemble_context(history, turn, settings=settings)
    print(
        f"context for a 500-turn conversation (1,000 messages, ~{context.estimated_prompt_tokens:,} tokens,"
        f" {context.used_turns} used): load + assemble {percentiles(await timed(load_and_assemble, 30))}"
    )
    loading = await timed(lambda: store.conversation(key, 1000), 30)
    print(f"  of which loading 1,000 messages: {percentiles(loading)}")


def ledger_rows(first: int, count: int, total: int, rng: random.Random) -> list[LedgerEntry]:
    """Rows `first` .. `first + count` of a ledger of `total` calls spread evenly over the past year."""
    workspaces = ["T1", "T2", "T3"]
    users = [
        (workspaces[u % 3], f"U{u:03d}", [f"C{(u * 7 + k) % 30:02d}" for k in range(3)]) for u in range(300)
    ]
    rows = []
    for n in range(first, first + count):
        workspace, user, channels = users[rng.randrange(len(users))]
        prompt, completion = rng.randrange(200, 20_000), rng.randrange(50, 4_000)
        rows.append(
            LedgerEntry(
                request_id=f"bench-{n}",
                platform="slack",
                workspace=workspace,
                channel=rng.choice(channels),
                user=user,
                model="bytedance/dola-seed-2-0-lite",
                effort="medium",
                prompt_tokens=prompt,
                completion_tokens=completion,
                reasoning_tokens=completion // 2,
                cached_tokens=prompt // 4,
                usd=Decimal(prompt * 325 + completion * 2600) / Decimal(1_000_000_000),
                cost_source="reported",
                ttft_s=0.9,
                latency_s=4.5,
                outcome="ok",
                at=NOW - YEAR + YEAR * n / total,
            )
        )
    return rows


async def bench_reports(store: Store, settings: Settings, rows: int) -> None:
    rng = random.Random(7)
    started = time.perf_counter()
    batch = 20_000
    for offset in range(0, rows, batch):
        recorded = await store.record_usage(*ledger_rows(offset, min(batch, rows - offset), rows, rng))
        assert recorded == min(batch, rows - offset)
    loaded = time.perf_counter() - started
    print(
        f"ledger: recorded {rows:,} rows in {loaded:.1f} s"
        f" ({rows / loaded:,.0f} rows/s, batches of {batch:,})"
    )
    key = ConversationKey("slack", "T1", "C01", "")
    checks: list[tuple[str, Callable[[], Awaitable[object]]]] = [
        (
            "/cost me today",
            lambda: spend_report(store, settings, key=key, user="U000", scope="me", period="today"),
        ),
        (
            "/cost channel 30d",
            lambda: spend_report(store, settings, key=key, user="U000", scope="channel", period="30d"),
        ),
        (
            "/cost workspace all + top spenders",
            lambda: spend_report(
                store, settings, key=key, user="U000", scope="workspace", period="all", include_top=True
            ),
        ),
        ("totals, whole platform, all time", lambda: store.usage_totals(UsageFilter("slack"))),
        ("top workspaces, all time", lambda: store.usage_breakdown(UsageFilter("slack"), "workspace")),
    ]
    print(f"/cost reports over the {rows:,}-row ledger (goal: under 100 ms):")
    for label, check in checks:
        print(f"  {label}: {percentiles(await timed(check, 20))}")


async def bench_reservations(store: Store, settings: Settings, concurrency: int, per_task: int) -> None:
    policy = BudgetPolicy(settings, store)
    worst = worst_case_cost(settings, 20_000)
    latencies: list[float] = []
    granted = 0

    async def client(task: int) -> None:
        nonlocal granted
        key = ConversationKey("discord", f"G{task % 4}", f"C{task}", "")
        for n in range(per_task):
            started = time.perf_counter()
            hold = await policy.reserve(key, f"U{task}", worst)
            latencies.append(time.perf_counter() - started)
            if isinstance(hold, Reservation):
                granted += 1
                entry = LedgerEntry(
                    f"hold-{task}-{n}", "discord", key.workspace, key.channel, f"U{task}", "m", "low",
                    1000, 100, 0, 0, worst / 10, "estimated", 0.5, 1.0, "ok",
                )  # fmt: skip
                await policy.settle(hold, entry)

    started = time.perf_counter()
    await asyncio.gather(*(client(task) for task in range(concurrency)))
    elapsed = time.perf_counter() - started
    total = concurrency * per_task
    print(
        f"budget holds, {concurrency} concurrent requests: {total / elapsed:,.0f} reserve+settle/s"
        f" ({total:,} in {elapsed:.1f} s, {granted:,} granted); reserve latency {percentiles(latencies)}"
    )


async def main(ledger: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "bench.db"
        settings = load_settings(
            _env_file=None,
            DATABASE_URL=f"sqlite:///{path}",
            SEEDBOT_USER_DAILY_BUDGET_USD="1000",
            SEEDBOT_WORKSPACE_MONTHLY_BUDGET_USD="100000",
        )
        store = await open_store(settings)
        try:
            await bench_appends(store, 2_000)
            await bench_context(store, settings)
            await bench_reports(store, settings, ledger)
            await bench_reservations(store, settings, concurrency=200, per_task=20)
        finally:
            await store.close()
        print(f"database size: {path.stat().st_size / 1e6:,.0f} MB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ledger-rows", type=int, default=1_000_000)
    asyncio.run(main(parser.parse_args().ledger_rows))
