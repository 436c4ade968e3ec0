"""Start-up recovery: replies a crash left mid-stream are edited to say they were interrupted."""

from __future__ import annotations

from collections.abc import Callable

from core.config import Settings
from core.models import ConversationKey
from core.store import open_store
from tests.discord.conftest import StartBot, World


async def test_replies_left_streaming_by_a_crash_are_marked_interrupted_at_start_up(
    world: World, start_bot: StartBot, make_settings: Callable[..., Settings]
) -> None:
    api = world.api
    thread = api.add_thread(world.general, "long talk", owner=world.alice)
    in_channel = api.add_bot_message(world.general, "Half an answer in the chan")
    in_thread = api.add_bot_message(thread, "Half an answer in the thr")
    random = world.random
    full = api.add_bot_message(random, "A part as long as a message can be. " * 55)  # 1,980 chars
    # What a process killed mid-answer leaves behind: replies still marked streaming.
    store = await open_store(make_settings())
    for key, message in [
        (ConversationKey("discord", world.guild["id"], world.general["id"], "1234"), in_channel),
        (ConversationKey("discord", world.guild["id"], world.general["id"], thread["id"]), in_thread),
        (ConversationKey("discord", world.guild["id"], random["id"], "5678"), full),
    ]:
        await store.add_message(key, "user", world.alice["id"], "alice", "a question")
        await store.add_message(
            key,
            "assistant",
            "seedbot",
            "seedbot",
            message["content"],
            status="streaming",
            platform_message_id=message["id"],
        )
    await store.close()

    await start_bot()
    for message in (in_channel, in_thread):
        assert message["content"].startswith("Half an answer")
        assert "Interrupted" in message["content"]
    # No room left in the full one: the warning follows as a reply to it.
    assert "Interrupted" not in full["content"] and len(full["content"]) <= 2000
    (warning,) = [m for m in api.bot_messages(random) if m["id"] != full["id"]]
    assert "Interrupted" in warning["content"]
    assert warning["message_reference"]["message_id"] == full["id"]
    assert api.rate_limited == []
