"""Shared rate budgets: the token-bucket store in-process and in the real Redis on 127.0.0.1:6379
(each test under a key prefix of its own, deleted afterwards), and the fallback when Redis goes away."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as redis

from core.coordination import BucketStore, Draw, FailoverBuckets, MemoryBuckets, Rate, RedisBuckets
from tests.proxy import Proxy

REDIS_URL = "redis://127.0.0.1:6379/0"
TIER = Rate.per_minute(60, burst=3)  # one token a second


def draw(key: str = "update", *, rate: Rate = TIER, cost: float = 1.0, keep: float = 0.0) -> Draw:
    return Draw(key, rate, name=key, cost=cost, keep=keep)


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    prefix = f"seedbot-test:{uuid.uuid4().hex}:"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    keys = [key async for key in client.scan_iter(match=prefix + "*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest, redis_prefix: str) -> AsyncIterator[BucketStore]:
    if request.param == "memory":
        yield MemoryBuckets()
        return
    client = redis.Redis.from_url(REDIS_URL)
    yield RedisBuckets(client, prefix=redis_prefix)
    await client.aclose()


async def test_a_burst_is_granted_at_once_then_calls_wait_for_the_refill(store: BucketStore):
    taken = [await store.take([draw()], 100.0) for _ in range(4)]
    assert [t.wait for t in taken[:3]] == [0, 0, 0]
    assert taken[2].tokens == (pytest.approx(0.0),)
    assert taken[3].wait == pytest.approx(1.0)
    assert (await store.take([draw()], 100.5)).wait == pytest.approx(0.5)
    assert (await store.take([draw()], 101.0)).wait == 0


async def test_several_budgets_are_taken_together_or_not_at_all(store: BucketStore):
    scarce = draw("stop", rate=Rate.per_minute(60, burst=1))
    assert (await store.take([scarce], 10.0)).wait == 0
    refused = await store.take([draw("start"), scarce], 10.0)
    assert refused.wait == pytest.approx(1.0)
    assert refused.tokens[0] == pytest.approx(3.0)  # the start budget was left untouched
    assert (await store.take([draw("start", cost=3)], 10.0)).wait == 0


async def test_a_call_that_must_keep_tokens_behind_waits_longer(store: BucketStore):
    assert (await store.take([draw(keep=2.0)], 0.0)).wait == 0  # 3 -> 2
    assert (await store.take([draw(keep=2.0)], 0.0)).wait == pytest.approx(1.0)
    assert (await store.take([draw()], 0.0)).wait == 0  # an urgent call still gets the token


async def test_a_penalty_empties_the_budget_until_retry_after(store: BucketStore):
    await store.penalize("update", 50.0)
    assert (await store.take([draw()], 49.0)).wait == pytest.approx(2.0)  # blocked, then a refill
    assert (await store.take([draw()], 51.0)).wait == 0


async def test_instances_sharing_redis_share_one_budget(redis_prefix: str):
    first, second = redis.Redis.from_url(REDIS_URL), redis.Redis.from_url(REDIS_URL)
    try:
        one, other = RedisBuckets(first, prefix=redis_prefix), RedisBuckets(second, prefix=redis_prefix)
        grants = [await (one if n % 2 else other).take([draw()], 7.0) for n in range(4)]
        assert [g.wait == 0 for g in grants] == [True, True, True, False]
    finally:
        await first.aclose()
        await second.aclose()


async def test_when_redis_goes_away_budgets_fall_back_once_logged_and_come_back(
    redis_prefix: str, caplog: pytest.LogCaptureFixture
):
    proxy = Proxy()
    await proxy.start()
    client = redis.Redis.from_url(f"redis://127.0.0.1:{proxy.port}/0", socket_timeout=1.0)
    now = [0.0]
    fallbacks: list[int] = []
    store = FailoverBuckets(
        RedisBuckets(client, prefix=redis_prefix),
        retry_s=5.0,
        on_fallback=lambda: fallbacks.append(1),
        clock=lambda: now[0],
    )
    try:
        assert (await store.take([draw()], 1.0)).wait == 0
        assert not store.degraded
        await proxy.stop()
        with caplog.at_level(logging.WARNING, logger="seedbot.coordination"):
            for _ in range(3):
                assert (await store.take([draw()], 1.0)).wait == 0  # the in-process budget's burst
        assert store.degraded and len(fallbacks) == 3
        assert len([r for r in caplog.records if "unreachable" in r.message]) == 1
        assert (await store.take([draw()], 1.0)).wait > 0  # still paced while Redis is away

        await proxy.start()
        now[0] += 5.0  # time to look at Redis again
        taken = await store.take([draw()], 1.0)
        assert not store.degraded
        assert taken.wait == 0 and taken.tokens == (pytest.approx(1.0),)  # Redis still had its 2 left
        assert len(fallbacks) == 4  # three granted and one refused while Redis was away
    finally:
        await client.aclose()
        await proxy.stop()
