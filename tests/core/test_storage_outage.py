"""PostgreSQL going away mid-run and coming back: new prompts and commands are told to try again
shortly, nothing crashes, and the service recovers without a restart (a real PostgreSQL: the test
database stops taking connections and its sessions are cut, then it is let back in)."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from core.access import Allowlist, Place
from core.admission import Admission, Arrival
from core.commands import Caller, Dialect, Effort, run_command
from core.models import ConversationKey, Turn
from core.reply.surface import ReplySurface
from core.service import ChatService
from core.store.base import STORAGE_UNAVAILABLE
from tests.core.service.test_answer import LIMITS
from tests.fakes.memory_surface import MemorySurface
from tests.postgres import _execute, with_database

KEY = ConversationKey("test", "W1", "C1", "T1")


class Asker:
    def __init__(self) -> None:
        self.told: list[str] = []

    async def tell(self, text: str) -> None:
        self.told.append(text)

    async def conversation(self) -> ConversationKey | None:
        return KEY

    async def turn(self) -> tuple[Turn, ReplySurface] | None:
        return Turn(KEY, "U1", "Ann", "hello", message_id="m1"), MemorySurface(LIMITS)


async def outage(url: str, *, down: bool) -> None:
    database = urlsplit(url).path.lstrip("/")
    admin = with_database(url, "postgres")
    if down:
        await _execute(
            admin,
            f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false',
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}'",
        )
    else:
        await _execute(admin, f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')


@pytest.fixture
async def service(make_settings, postgres_url):
    service = await ChatService.open(make_settings(database_url=postgres_url))
    yield service
    await outage(postgres_url, down=False)
    await service.close()


async def test_while_postgresql_is_away_people_are_told_and_it_recovers_without_a_restart(
    service, postgres_url, model_server
):
    arrival = Arrival(
        "test", "m1", "message:m1", Place("C1", "U1", workspace="W1"), False, "hi", addressed=True
    )
    assert (
        await service.answer(Turn(KEY, "U1", "Ann", "before"), MemorySurface(LIMITS))
    ).status == "complete"

    await outage(postgres_url, down=True)
    asker = Asker()
    assert await Admission(service, "", Allowlist()).admit(arrival, asker) is None
    assert asker.told == [STORAGE_UNAVAILABLE]
    surface = MemorySurface(LIMITS)
    outcome = await service.answer(Turn(KEY, "U1", "Ann", "during"), surface)
    assert outcome.status == "error" and surface.closed == 1
    assert STORAGE_UNAVAILABLE in surface.texts[-1]
    assert await run_command(service, Caller("test", "W1", "C1", "U1"), Effort(), Dialect(syntax=str)) == (
        STORAGE_UNAVAILABLE
    )

    await outage(postgres_url, down=False)
    again = await Admission(service, "", Allowlist()).admit(arrival, Asker())  # not claimed while away
    assert again is not None and again.status == "complete"
