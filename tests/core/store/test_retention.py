"""Retention and forgetting: old messages go, and so does everything of one conversation or one person."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from core.config import Settings
from core.models import AttachmentMeta, ConversationKey
from core.store import apply_retention
from core.store.base import Store, UsageFilter
from tests.core.store.entries import NOW, entry

SHARED = ConversationKey("slack", "T1", "C1", "100.0")
DM = ConversationKey("slack", "T1", "D1", "")
PHOTO = AttachmentMeta("image", "image/png", 10, "ee" * 32, "cat.png")


async def test_messages_older_than_the_cut_are_purged(store: Store) -> None:
    await store.add_message(
        SHARED, "user", "U1", "Ann", "old", at=NOW - timedelta(days=40), attachments=[PHOTO]
    )
    await store.add_message(SHARED, "user", "U1", "Ann", "new", at=NOW - timedelta(days=1))
    await store.add_message(DM, "user", "U1", "Ann", "old dm", at=NOW - timedelta(days=31))

    assert await store.purge_messages(NOW - timedelta(days=30)) == 2

    assert [m.text for m in await store.conversation(SHARED)] == ["new"]
    assert not await store.has_conversation(DM)


async def test_forgetting_a_conversation_leaves_the_others(store: Store) -> None:
    await store.add_message(SHARED, "user", "U1", "Ann", "one", attachments=[PHOTO])
    await store.add_message(SHARED, "assistant", "B1", "Seed", "two", platform_message_id="r1")
    await store.add_message(DM, "user", "U1", "Ann", "private")

    assert await store.forget_conversation(SHARED) == 2

    assert not await store.has_conversation(SHARED)
    assert await store.find_by_platform_message("slack", "r1") is None
    assert [m.text for m in await store.conversation(DM)] == ["private"]
    assert await store.forget_conversation(SHARED) == 0


async def test_forgetting_a_user_removes_their_data_but_not_other_peoples(store: Store) -> None:
    await store.add_message(DM, "user", "U1", "Ann", "my secret")
    await store.add_message(DM, "assistant", "B1", "Seed", "about your secret")
    await store.add_message(SHARED, "user", "U1", "Ann", "ann asks")
    await store.add_message(SHARED, "user", "U2", "Bob", "bob asks")
    await store.add_message(SHARED, "assistant", "B1", "Seed", "answer to both")
    other_platform = ConversationKey("discord", "G1", "C1", "")
    await store.add_message(other_platform, "user", "U1", "Ann", "same id elsewhere")
    await store.set_setting("effort", "high", "user", "slack", "U1")
    await store.set_setting("effort", "low", "user", "slack", "U2")
    await store.record_usage(entry(user="U1", usd=Decimal("0.01")))

    assert await store.forget_user("slack", "U1") == 3

    assert not await store.has_conversation(DM)
    assert [m.text for m in await store.conversation(SHARED)] == ["bob asks", "answer to both"]
    assert [m.text for m in await store.conversation(other_platform)] == ["same id elsewhere"]
    assert await store.get_setting("effort", "user", "slack", "U1") is None
    assert await store.get_setting("effort", "user", "slack", "U2") == "low"
    # Spend stays on the books, or forgetting would reset a budget.
    assert (await store.usage_totals(UsageFilter("slack", user="U1"))).usd == Decimal("0.01")


async def test_retention_follows_the_setting(settings: Settings, store: Store) -> None:
    await store.add_message(SHARED, "user", "U1", "Ann", "ancient", at=NOW - timedelta(days=100))
    await store.add_message(SHARED, "user", "U1", "Ann", "recent", at=NOW - timedelta(days=2))

    assert await apply_retention(store, settings, now=NOW) == 0  # unset: keep everything
    assert await apply_retention(store, settings.model_copy(update={"retention_days": 30}), now=NOW) == 1

    assert [m.text for m in await store.conversation(SHARED)] == ["recent"]
