"""Budget holds: reserve the worst case atomically, settle to the real cost, never overspend."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal

from core.store.base import BudgetRefusal, Reservation, ReservationRequest, Store, UsageFilter
from tests.core.store.entries import NOW, entry

T1 = UsageFilter("slack", "T1")


def hold(amount: str, *, user: str = "U1", daily: str | None = None, monthly: str | None = None, at=NOW):
    return ReservationRequest(
        platform="slack",
        workspace="T1",
        user=user,
        amount=Decimal(amount),
        user_daily_limit=None if daily is None else Decimal(daily),
        workspace_monthly_limit=None if monthly is None else Decimal(monthly),
        at=at,
    )


async def test_holds_count_until_settled(store: Store) -> None:
    first = await store.reserve_budget(hold("0.30", daily="0.50"))
    assert isinstance(first, Reservation) and first.amount == Decimal("0.3")

    refused = await store.reserve_budget(hold("0.30", daily="0.50"))
    assert refused == BudgetRefusal("user_daily", Decimal("0.50"), Decimal(0), Decimal("0.3"), Decimal("0.3"))

    await store.settle_reservation(first.id, entry(usd=Decimal("0.05")))
    assert isinstance(await store.reserve_budget(hold("0.30", daily="0.50")), Reservation)
    assert (await store.usage_totals(T1)).usd == Decimal("0.05")


async def test_settled_spend_counts_for_the_day_and_the_month(store: Store) -> None:
    await store.record_usage(entry(usd=Decimal("0.45"), at=NOW))
    await store.record_usage(entry(usd=Decimal("9.00"), at=NOW - timedelta(days=1), user="U2"))
    await store.record_usage(
        entry(usd=Decimal("50.00"), at=NOW.replace(day=1) - timedelta(days=1), user="U2")
    )

    assert isinstance(await store.reserve_budget(hold("0.05", daily="0.50")), Reservation)
    daily = await store.reserve_budget(hold("0.01", daily="0.50"))
    assert isinstance(daily, BudgetRefusal) and daily.budget == "user_daily"
    assert (daily.spent, daily.reserved) == (Decimal("0.45"), Decimal("0.05"))

    # Yesterday's spend does not count against today's budget; last month's not against this month's.
    assert isinstance(await store.reserve_budget(hold("0.40", user="U2", daily="0.50")), Reservation)
    monthly = await store.reserve_budget(hold("0.60", user="U3", monthly="10"))
    assert isinstance(monthly, BudgetRefusal) and monthly.budget == "workspace_monthly"
    assert monthly.spent == Decimal("9.45") and monthly.reserved == Decimal("0.45")
    assert isinstance(await store.reserve_budget(hold("0.10", user="U3", monthly="10")), Reservation)


async def test_without_limits_every_hold_is_granted(store: Store) -> None:
    results = [await store.reserve_budget(hold("1000")) for _ in range(3)]
    assert all(isinstance(result, Reservation) for result in results)


async def test_holds_of_a_crashed_process_expire(store: Store) -> None:
    assert isinstance(
        await store.reserve_budget(hold("0.50", daily="0.50", at=NOW - timedelta(hours=2))), Reservation
    )
    assert isinstance(await store.reserve_budget(hold("0.50", daily="0.50", at=NOW)), Reservation)


async def test_settling_twice_or_releasing_counts_once(store: Store) -> None:
    reservation = await store.reserve_budget(hold("0.10", daily="1"))
    assert isinstance(reservation, Reservation)
    paid = entry(usd=Decimal("0.02"))
    await store.settle_reservation(reservation.id, paid)
    await store.settle_reservation(reservation.id, paid)
    released = await store.reserve_budget(hold("0.10", daily="1"))
    assert isinstance(released, Reservation)
    await store.settle_reservation(released.id, None)

    assert (await store.usage_totals(T1)).usd == Decimal("0.02")
    again = await store.reserve_budget(hold("0.98", daily="1"))
    assert isinstance(again, Reservation)


async def test_two_hundred_concurrent_reservations_never_overspend(store: Store) -> None:
    async def call(n: int) -> bool:
        outcome = await store.reserve_budget(hold("0.03", daily="1.00", monthly="50"))
        if isinstance(outcome, BudgetRefusal):
            return False
        await asyncio.sleep(0)
        # Half the calls cost their whole worst case, the rest a third of it.
        cost = outcome.amount if n % 2 else outcome.amount / 3
        await store.settle_reservation(outcome.id, entry(usd=cost, request_id=f"budget-{n}"))
        return True

    granted = await asyncio.gather(*(call(n) for n in range(200)))

    spent = (await store.usage_totals(T1)).usd
    assert spent <= Decimal("1.00")
    assert sum(granted) >= 33  # at least every call that fits at its worst case
    assert (await store.usage_totals(T1)).requests == sum(granted)
