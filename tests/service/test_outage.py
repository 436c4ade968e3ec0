"""PostgreSQL or Redis out of reach mid-run (issue 12), through TCP proxies on 127.0.0.1 that the test
takes away and brings back (the real servers keep running for everyone else), with /readyz served by
the health server `seedbot run` builds (`bots.run.health_server`).

PostgreSQL is required: /readyz is 503 while it is away and 200 again when it returns, without a
restart; an answer finishing while it is away is whole in chat, and its ledger row and final text
are written once it returns. Redis is shown in /readyz, never
required: without it an instance still answers, pacing alone."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
import redis.asyncio as redis

from bots.run import health_server
from core.models import ConversationKey, Turn
from core.service import ChatService
from core.store.base import STORAGE_UNAVAILABLE, UsageFilter
from tests.core.service.test_answer import LIMITS, shown
from tests.fakes.memory_surface import MemorySurface
from tests.fakes.model_server import Script
from tests.proxy import Proxy

WORDS = 120


def through(url: str, proxy: Proxy) -> str:
    """`url` with its host and port replaced by the proxy's (user, database and schema kept)."""
    parts = urlsplit(url)
    user = parts.netloc.rpartition("@")[0]
    return urlunsplit(
        parts._replace(netloc=f"{user}@127.0.0.1:{proxy.port}" if user else f"127.0.0.1:{proxy.port}")
    )


async def readyz_until(
    http: httpx.AsyncClient, url: str, wanted: Callable[[httpx.Response], bool], within_s: float = 20.0
) -> dict[str, Any]:
    last: object = None
    for _ in range(int(within_s / 0.1)):
        response = await http.get(url)
        if wanted(response):
            return response.json()
        last = (response.status_code, response.text)
        await asyncio.sleep(0.1)
    raise AssertionError(f"/readyz never as wanted within {within_s} s (last: {last!r})")


@pytest.fixture
async def proxies(postgres_url: str) -> AsyncIterator[tuple[Proxy, Proxy]]:
    database, cache = Proxy(upstream=urlsplit(postgres_url).port or 5432), Proxy(upstream=6379)
    await database.start()
    await cache.start()
    yield database, cache
    await database.stop()
    await cache.stop()


async def test_readyz_follows_postgresql_and_only_shows_redis(
    make_settings, postgres_url, proxies, model_server
):
    database, cache = proxies
    key = ConversationKey("test", "W1", "C1", f"readiness-{uuid.uuid4().hex}")  # Redis is shared
    settings = make_settings(
        database_url=through(postgres_url, database), redis_url=f"redis://127.0.0.1:{cache.port}/0"
    )
    service = await ChatService.open(settings)
    server, _ = health_server(service, port=0, host="127.0.0.1")
    try:
        await service.join_instances(coordinated=True)
        assert service.stops is not None
        await asyncio.wait_for(service.stops.listening.wait(), 5)
        await server.start()
        url = f"http://127.0.0.1:{server.port}/readyz"
        async with httpx.AsyncClient(timeout=10.0) as http:
            ready = await readyz_until(http, url, lambda r: r.status_code == 200)
            assert ready["checks"] == {"database": True}
            assert ready["redis"] == {"stops": True}

            await database.stop()
            away = await readyz_until(http, url, lambda r: r.status_code == 503)
            assert away["checks"] == {"database": False}
            surface = MemorySurface(LIMITS)
            assert (await service.answer(Turn(key, "U1", "Ann", "during"), surface)).status == "error"
            assert STORAGE_UNAVAILABLE in surface.texts[-1]

            await database.start()
            back = await readyz_until(http, url, lambda r: r.status_code == 200)
            assert back["checks"] == {"database": True}

            await cache.stop()
            # Still ready: the detail says Redis is away, the checks do not depend on it.
            alone = await readyz_until(http, url, lambda r: r.json().get("redis", {}).get("stops") is False)
            assert alone["ready"] is True and alone["checks"] == {"database": True}
            surface = MemorySurface(LIMITS)
            assert (await service.answer(Turn(key, "U1", "Ann", "alone"), surface)).status == "complete"
            shown = (await http.get(url)).json()
            assert shown["ready"] is True and shown["redis"] == {"stops": False, "locks": False}

            await cache.start()
            again = await readyz_until(http, url, lambda r: r.json().get("redis", {}).get("stops") is True)
            assert again["ready"] is True
    finally:
        await server.stop()
        await service.close()
        client = redis.from_url("redis://127.0.0.1:6379/0")
        lock = f"seedbot:turn:{key.platform}:{key.workspace}:{key.channel}:{key.thread}"
        await client.delete(lock, f"{lock}:fence")
        await client.aclose()


async def test_an_answer_finishing_while_postgresql_is_away_is_whole_and_stored_with_its_cost_once_it_is_back(
    make_settings, postgres_url, proxies, model_server
):
    database, _ = proxies
    service = await ChatService.open(make_settings(database_url=through(postgres_url, database)))
    key = ConversationKey("test", "W1", "C1", "in-flight")
    try:
        model_server.enqueue(Script(content="word " * WORDS, chunk_chars=5, delay_s=0.01))
        surface = MemorySurface(LIMITS)
        task = asyncio.create_task(service.answer(Turn(key, "U1", "Ann", "count"), surface))
        await shown(surface, "word word")
        await database.stop()
        outcome = await asyncio.wait_for(task, 30)
        # Shown and paid for: the chat has all of it, footer included; the store catches up later.
        assert outcome.status == "complete" and surface.closed == 1
        final = "".join(surface.texts)
        assert final.count("word") >= WORDS and "effort" in final
        assert STORAGE_UNAVAILABLE not in final
        assert len(service.deferred) == 2  # its ledger row and its final text

        await database.start()  # no restart of the service
        for _ in range(150):  # up to 15 s: retried every few seconds until the database answers
            if not service.deferred:
                break
            await asyncio.sleep(0.1)
        assert not service.deferred
        [reply] = [m for m in await service.store.conversation(key, limit=10) if m.role == "assistant"]
        assert reply.status == "complete" and reply.text.count("word") == WORDS
        spent = await service.store.usage_totals(UsageFilter("test", "W1"))
        assert spent.requests == 1 and spent.usd == outcome.usd

        model_server.enqueue(Script(content="back again"))
        after = MemorySurface(LIMITS)
        assert (await service.answer(Turn(key, "U1", "Ann", "and now?"), after)).status == "complete"
        assert "back again" in "".join(after.texts)
    finally:
        await service.close()
