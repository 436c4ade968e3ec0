"""Conversations: messages with attachments, kept in order, found again after a restart."""

from __future__ import annotations

from core.config import Settings
from core.models import AttachmentMeta, ConversationKey
from core.store import open_store
from core.store.base import Store

THREAD = ConversationKey("slack", "T1", "C1", "1700000000.000100")
PHOTO = AttachmentMeta("image", "image/jpeg", 123_456, "ab" * 32, "photo.jpg", "F123")
CLIP = AttachmentMeta("video", "video/mp4", 9_999_999, "cd" * 32, "clip.mp4", "https://files.example/clip")


async def test_messages_come_back_oldest_first_with_their_attachments(store: Store) -> None:
    first = await store.add_message(
        THREAD, "user", "U1", "Ann", "what is in these?", attachments=[PHOTO, CLIP]
    )
    second = await store.add_message(
        THREAD, "assistant", "B1", "Seed", "a cat and a dog", platform_message_id="m2"
    )

    messages = await store.conversation(THREAD)

    assert [m.id for m in messages] == [first, second]
    assert messages[0].attachments == (PHOTO, CLIP)
    assert (messages[0].role, messages[0].author_id, messages[0].author_name) == ("user", "U1", "Ann")
    assert messages[1].attachments == ()
    assert messages[1].platform_message_id == "m2"
    assert all(m.key == THREAD and m.status == "complete" for m in messages)


async def test_limit_keeps_the_most_recent_messages(store: Store) -> None:
    for index in range(10):
        await store.add_message(THREAD, "user", "U1", "Ann", f"message {index}")

    messages = await store.conversation(THREAD, limit=3)

    assert [m.text for m in messages] == ["message 7", "message 8", "message 9"]


async def test_conversations_are_separated_by_platform_workspace_channel_and_thread(store: Store) -> None:
    keys = [
        THREAD,
        ConversationKey("discord", "T1", "C1", THREAD.thread),
        ConversationKey("slack", "T2", "C1", THREAD.thread),
        ConversationKey("slack", "T1", "C2", THREAD.thread),
        ConversationKey("slack", "T1", "C1", ""),
    ]
    for index, key in enumerate(keys):
        await store.add_message(key, "user", "U1", "Ann", f"in {index}")

    for index, key in enumerate(keys):
        assert [m.text for m in await store.conversation(key)] == [f"in {index}"]


async def test_has_conversation_only_once_something_was_said(store: Store) -> None:
    assert not await store.has_conversation(THREAD)
    await store.add_message(THREAD, "user", "U1", "Ann", "hello")
    assert await store.has_conversation(THREAD)
    assert not await store.has_conversation(ConversationKey("slack", "T1", "C1", "other"))


async def test_a_platform_message_id_leads_back_to_its_conversation(store: Store) -> None:
    reply = await store.add_message(THREAD, "assistant", "B1", "Seed", "answer", platform_message_id="1700.2")

    found = await store.find_by_platform_message("slack", "1700.2")

    assert found is not None and found.id == reply and found.key == THREAD
    assert await store.find_by_platform_message("discord", "1700.2") is None
    assert await store.find_by_platform_message("slack", "unknown") is None


async def test_update_changes_only_the_given_fields(store: Store) -> None:
    reply = await store.add_message(THREAD, "assistant", "B1", "Seed", "", status="streaming")

    assert await store.update_message(reply, text="partial")
    assert await store.update_message(reply, status="complete", platform_message_id="1700.3")
    assert not await store.update_message(reply + 1000, text="nobody")

    (message,) = await store.conversation(THREAD)
    assert (message.text, message.status, message.platform_message_id) == ("partial", "complete", "1700.3")


async def test_replies_left_streaming_by_a_crash_become_interrupted(settings: Settings) -> None:
    store = await open_store(settings)
    await store.add_message(THREAD, "user", "U1", "Ann", "question", platform_message_id="p1")
    streaming = await store.add_message(
        THREAD, "assistant", "B1", "Seed", "half an ans", status="streaming", platform_message_id="r1"
    )
    done = await store.add_message(THREAD, "assistant", "B1", "Seed", "whole answer")
    await store.close()

    restarted = await open_store(settings)
    try:
        recovered = await restarted.recover_streaming()
        assert [(m.id, m.status, m.text, m.key, m.platform_message_id) for m in recovered] == [
            (streaming, "interrupted", "half an ans", THREAD, "r1")
        ]
        statuses = {m.id: m.status for m in await restarted.conversation(THREAD)}
        assert statuses[streaming] == "interrupted" and statuses[done] == "complete"
        assert await restarted.recover_streaming() == []
    finally:
        await restarted.close()


async def test_everything_survives_a_restart(settings: Settings) -> None:
    store = await open_store(settings)
    await store.add_message(THREAD, "user", "U1", "Ann", "remember me", attachments=[PHOTO])
    await store.close()

    reopened = await open_store(settings)
    try:
        (message,) = await reopened.conversation(THREAD)
        assert message.text == "remember me" and message.attachments == (PHOTO,)
    finally:
        await reopened.close()


async def test_a_reply_posted_in_parts_is_found_by_any_part(store: Store) -> None:
    reply = await store.add_message(
        THREAD, "assistant", "B1", "Seed", "long answer", platform_message_id="p3"
    )
    await store.add_message_parts(reply, ["p1", "p2", "p3"])
    await store.add_message_parts(reply, ["p2"])  # again: harmless

    for part in ("p1", "p2", "p3"):
        found = await store.find_by_platform_message("slack", part)
        assert found is not None and found.id == reply and found.key == THREAD
    assert await store.find_by_platform_message("discord", "p1") is None
    assert await store.find_by_platform_message("slack", "p4") is None


async def test_forgetting_a_conversation_forgets_its_parts(store: Store) -> None:
    reply = await store.add_message(THREAD, "assistant", "B1", "Seed", "long answer")
    await store.add_message_parts(reply, ["p1"])
    await store.forget_conversation(THREAD)
    assert await store.find_by_platform_message("slack", "p1") is None
