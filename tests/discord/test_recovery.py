"""Start-up recovery: replies a crash left mid-stream are edited to say they were interrupted."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from core.config import Settings
from core.models import ConversationKey
from core.store import open_store
from tests.discord.conftest import StartBot, World


async def left_streaming(
    settings: Settings, world: World, replies: list[tuple[ConversationKey, dict[str, Any]]]
) -> None:
    """What a process killed mid-answer leaves behind: each reply still marked streaming."""
    store = await open_store(settings)
    for key, message in replies:
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


async def test_replies_left_streaming_by_a_crash_are_marked_interrupted_at_start_up(
    world: World, start_bot: StartBot, make_settings: Callable[..., Settings]
) -> None:
    api = world.api
    thread = api.add_thread(world.general, "long talk", owner=world.alice)
    in_channel = api.add_bot_message(world.general, "Half an answer in the chan")
    in_thread = api.add_bot_message(thread, "Half an answer in the thr")
    random = world.random
    full = api.add_bot_message(random, "A part as long as a message can be. " * 55)  # 1,980 chars
    await left_streaming(
        make_settings(),
        world,
        [
            (ConversationKey("discord", world.guild["id"], world.general["id"], "1234"), in_channel),
            (ConversationKey("discord", world.guild["id"], world.general["id"], thread["id"]), in_thread),
            (ConversationKey("discord", world.guild["id"], random["id"], "5678"), full),
        ],
    )

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


@pytest.mark.parametrize("discord_api", [{"global_rate": (10, 1.0)}], indirect=True)
async def test_many_interrupted_replies_are_fixed_within_the_bots_global_limit(
    world: World, start_bot: StartBot, make_settings: Callable[..., Settings]
) -> None:
    # A global limit of 10 a second and a bot told it has 5: the start-up calls take the rest of the
    # first second, and a dozen edits sent as fast as the server answers would take 10 within it.
    api = world.api
    replies = [
        api.add_bot_message(api.add_channel(world.guild, f"c{n}"), f"Half answer {n}") for n in range(12)
    ]
    keys = [
        ConversationKey("discord", world.guild["id"], m["channel_id"], str(9000 + n))
        for n, m in enumerate(replies)
    ]
    await left_streaming(make_settings(), world, list(zip(keys, replies, strict=True)))

    await start_bot(discord_global_rate_limit=5)
    assert all("Interrupted" in message["content"] for message in replies)
    assert api.rate_limited == []
