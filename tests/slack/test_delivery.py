"""Connection and delivery: Socket Mode acknowledgements, redeliveries answered once (also after a
restart), HTTP mode with real signatures, start-up errors and start-up recovery."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import aiohttp
import pytest

from bots.http import HttpServer
from bots.slack import SlackRunner, SlackStartupError
from core.config import Settings
from core.metrics import Metrics
from core.models import ConversationKey
from core.service import ChatService
from core.store import open_store
from tests.fakes.model_server import FakeModelServer, Script
from tests.fakes.slack import BOT_TOKEN, SIGNING_SECRET, TEAM_ID, FakeSlack
from tests.fakes.slack_delivery import Delivery, encode, sign
from tests.slack.conftest import StartBot, World, always_ready


def deliveries_for(slack: FakeSlack, ts: str) -> list[Delivery]:
    return [d for d in slack.deliveries if d.payload.get("event", {}).get("ts") == ts]


async def test_a_burst_of_events_after_start_up_checks_the_token_once_and_each_is_answered(
    start_bot: StartBot, world: World, model_server: FakeModelServer
):
    # auth.test at start-up says who the app is; events arriving together must not each ask again
    # (a burst after a restart could meet auth.test's rate limit, and an event not authorized is lost).
    bot = await start_bot()
    channels = [world.slack.add_channel(f"burst{n}", members=[world.alice]) for n in range(10)]
    model_server.enqueue(*[Script(content="Here.")] * len(channels))
    await asyncio.gather(*(world.slack.post(world.alice, c, world.mention("hi")) for c in channels))
    await bot.idle()
    assert all(world.slack.bot_messages(channel) for channel in channels)
    assert len(world.slack.calls_to("auth.test")) == 1


async def test_every_delivery_is_acknowledged_before_the_answer_is_done(
    start_bot: StartBot, world: World, model_server: FakeModelServer
):
    bot = await start_bot()
    # Each answer takes longer than the acknowledgement window: only work done after the ack passes.
    world.slack.socket.ack_timeout_s = 1.0
    model_server.enqueue(*[Script(content="Slow.", first_byte_delay_s=1.5)] * 2)
    await world.slack.post(world.alice, world.general, world.mention("hello"))
    await world.slack.slash(world.alice, world.general, "what is 1+1?")
    await bot.idle()
    await world.slack.echoes_delivered()
    assert len(world.slack.deliveries) >= 4
    assert all(delivery.acked for delivery in world.slack.deliveries)
    assert all(delivery.retry_attempt == 0 for delivery in world.slack.deliveries)


async def test_a_redelivered_event_is_answered_once(
    start_bot: StartBot, world: World, model_server: FakeModelServer
):
    bot = await start_bot()
    ts = await world.slack.post(world.alice, world.general, world.mention("hello"))
    await bot.idle()
    for delivery in deliveries_for(world.slack, ts):
        again = await world.slack.redeliver(delivery)
        assert again.acked and again.retry_attempt == 1
    await bot.idle()
    assert len(model_server.requests) == 1
    assert len(world.slack.bot_messages(world.general, thread_ts=ts)) == 1


async def test_a_redelivery_after_a_restart_is_not_answered_again(
    start_bot: StartBot, world: World, model_server: FakeModelServer
):
    first = await start_bot()
    ts = await world.slack.post(world.alice, world.general, world.mention("hello"))
    await first.idle()
    await first.stop()
    second = await start_bot()  # the same SQLite file
    for delivery in deliveries_for(world.slack, ts):
        await world.slack.redeliver(delivery)
    await second.idle()
    assert len(model_server.requests) == 1
    assert len(world.slack.bot_messages(world.general, thread_ts=ts)) == 1


async def test_http_mode_answers_signed_events(
    start_bot: StartBot, world: World, model_server: FakeModelServer
):
    bot = await start_bot(http=True)
    ts = await world.slack.post(world.alice, world.general, world.mention("over HTTP"))
    await bot.idle()
    assert world.slack.bot_messages(world.general, thread_ts=ts)
    assert {d.status for d in world.slack.deliveries} == {200}


async def test_http_mode_rejects_bad_and_stale_signatures(
    start_bot: StartBot, world: World, model_server: FakeModelServer
):
    bot = await start_bot(http=True)
    assert world.slack.http is not None
    event = world.slack.event_callback(
        {
            "type": "app_mention",
            "user": world.alice,
            "text": world.mention("forged"),
            "ts": "1.0",
            "channel": world.general,
        }
    )
    forged = await world.slack.http.deliver("events_api", event, signature="v0=" + "0" * 64)
    stale_stamp = "1600000000"
    stale = await world.slack.http.deliver(
        "events_api",
        event,
        timestamp=stale_stamp,
        signature=sign(SIGNING_SECRET, stale_stamp, encode("events_api", event)[0]),
    )
    await bot.idle()
    assert (forged.status, stale.status) == (401, 401)
    assert model_server.requests == []


async def test_http_mode_answers_slacks_url_verification(start_bot: StartBot, world: World):
    await start_bot(http=True)
    assert world.slack.http is not None
    delivery = await world.slack.http.deliver(
        "events_api", {"type": "url_verification", "challenge": "c-123", "token": "t"}
    )
    assert delivery.status == 200 and delivery.ack_payload == {"challenge": "c-123"}


async def test_http_mode_answers_a_retried_delivery_once(
    start_bot: StartBot, world: World, model_server: FakeModelServer
):
    bot = await start_bot(http=True)
    ts = await world.slack.post(world.alice, world.general, world.mention("hello"))
    await bot.idle()
    for delivery in deliveries_for(world.slack, ts):
        again = await world.slack.redeliver(delivery)  # X-Slack-Retry-Num: 1
        assert again.status == 200
    await bot.idle()
    assert len(model_server.requests) == 1


async def test_http_mode_commands_and_shortcuts_are_signed_forms(
    start_bot: StartBot, world: World, model_server: FakeModelServer
):
    bot = await start_bot(http=True)
    help_reply = await world.slack.slash(world.alice, world.general, "help")
    assert help_reply.status == 200 and "/seed" in (help_reply.ack_payload or {}).get("text", "")
    ts = await world.slack.post(world.alice, world.general, "some news to sum up")
    shortcut = await world.slack.shortcut(world.alice, world.general, ts, "seed_summarize")
    assert shortcut.status == 200
    await bot.idle()
    assert world.slack.bot_messages(world.general, thread_ts=ts)


async def test_while_shutting_down_http_mode_asks_slack_to_retry_later(start_bot: StartBot, world: World):
    bot = await start_bot(http=True)
    bot.runner.bot.work.accepting = False  # what stop() does first
    delivery = await world.slack.post(world.alice, world.general, world.mention("late"))
    assert all(
        d.status == 503 for d in world.slack.deliveries if d.payload.get("event", {}).get("ts") == delivery
    )


async def test_http_mode_asks_slack_to_retry_an_event_that_comes_before_start_up_is_done(
    make_settings: Callable[..., Settings], world: World, model_server: FakeModelServer
):
    slack = world.slack
    settings = make_settings(
        slack_bot_token=BOT_TOKEN, slack_signing_secret=SIGNING_SECRET, slack_api_url=slack.api_url
    )
    service = await ChatService.open(settings)
    server = HttpServer(Metrics(), always_ready, host="127.0.0.1", port=0)
    runner = SlackRunner(settings, service, http=server)
    await server.start()
    try:
        slack.use_http(f"http://127.0.0.1:{server.port}/slack/events")
        slack.auto_retry = False
        ts = await slack.post(world.alice, world.general, world.mention("early bird"))
        assert {d.status for d in deliveries_for(slack, ts)} == {503}
        await runner.start()
        for delivery in deliveries_for(slack, ts):
            assert (await slack.redeliver(delivery)).status == 200
        assert await runner.bot.work.idle(15.0)
        assert len(model_server.requests) == 1
        assert slack.bot_messages(world.general, thread_ts=ts)
    finally:
        await runner.stop(grace_s=1)
        await server.stop()
        await service.close()


async def test_a_wrong_bot_token_stops_start_up_with_a_fix(start_bot: StartBot):
    with pytest.raises(SlackStartupError, match=r"SLACK_BOT_TOKEN \(invalid_auth\)"):
        await start_bot(slack_bot_token="xoxb-wrong")


async def test_a_wrong_app_token_stops_start_up_with_a_fix(start_bot: StartBot):
    with pytest.raises(SlackStartupError, match=r"SLACK_APP_TOKEN \(invalid_auth\).*connections:write"):
        await start_bot(slack_app_token="xapp-wrong")


async def test_http_mode_needs_the_http_server(make_settings: Callable[..., Settings], slack: FakeSlack):
    settings = make_settings(
        slack_bot_token=BOT_TOKEN, slack_signing_secret=SIGNING_SECRET, slack_api_url=slack.api_url
    )
    service = await ChatService.open(settings)
    try:
        with pytest.raises(SlackStartupError, match="SEEDBOT_HTTP_PORT"):
            SlackRunner(settings, service, http=None)
    finally:
        await service.close()


async def test_replies_left_streaming_by_a_crash_are_marked_interrupted_at_start_up(
    start_bot: StartBot, world: World, make_settings: Callable[..., Settings]
):
    root = world.slack.add_message(world.general, "a question", user=world.alice).ts
    left = world.slack.add_message(world.general, "Half an answ", thread_ts=root)
    store = await open_store(make_settings())
    key = ConversationKey("slack", TEAM_ID, world.general, root)
    await store.add_message(key, "user", world.alice, "alice", "a question", platform_message_id=root)
    await store.add_message(
        key, "assistant", "seedbot", "seedbot", left.text, status="streaming", platform_message_id=left.ts
    )
    await store.close()

    await start_bot()
    assert left.text.startswith("Half an answ") and "Interrupted" in left.text
    assert not left.streaming


async def test_a_recovered_reply_too_full_for_the_warning_gets_it_in_the_thread(
    start_bot: StartBot, world: World, make_settings: Callable[..., Settings]
):
    root = world.slack.add_message(world.general, "a question", user=world.alice).ts
    full = "word " * 2399  # just under the 12,000 characters of one message
    left = world.slack.add_message(world.general, full, thread_ts=root)
    left.streaming = False  # posted and edited (edit mode), not a native stream
    store = await open_store(make_settings())
    key = ConversationKey("slack", TEAM_ID, world.general, root)
    await store.add_message(
        key, "assistant", "seedbot", "seedbot", full, status="streaming", platform_message_id=left.ts
    )
    await store.close()

    await start_bot()
    assert left.text.startswith("word word") and "Interrupted" not in left.text
    [notice] = [m for m in world.slack.bot_messages(world.general, thread_ts=root) if m.ts != left.ts]
    assert "Interrupted" in notice.text
    assert [c.error for c in world.slack.calls_to("chat.update")] == [None]
    assert world.slack.calls_to("chat.stopStream") == []  # a plain edit was enough


async def test_socket_mode_reconnects_when_slack_asks_and_keeps_answering(
    start_bot: StartBot, world: World, model_server: FakeModelServer
):
    bot = await start_bot()
    assert bot.runner.ready()
    await world.slack.socket.refresh()
    assert len(world.slack.calls_to("apps.connections.open")) == 2
    ts = await world.slack.post(world.alice, world.general, world.mention("still there?"))
    await bot.idle()
    assert world.slack.bot_messages(world.general, thread_ts=ts)
    assert bot.runner.ready()
    await bot.stop()
    assert not bot.runner.ready()


async def test_starting_logs_no_warning_about_the_bot_token(start_bot: StartBot, caplog, monkeypatch) -> None:
    # As in production, the token is in the environment, where Bolt also looks for it.
    monkeypatch.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)
    with caplog.at_level(logging.WARNING):
        await start_bot()
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert not [text for text in warnings if "token" in text], warnings


async def test_the_fake_spreads_events_over_an_apps_connections_and_retries_on_the_next(slack: FakeSlack):
    # What tests of several instances rely on (tests/service/test_slack_instances.py): like Slack, the
    # fake holds several Socket Mode connections of one app, sends each envelope to one of them in
    # turn (or to the one named), and retries an unacknowledged envelope on the next one.
    slack.socket.ack_timeout_s = 0.5
    received: list[list[str]] = [[], []]

    async def app(ws: aiohttp.ClientWebSocketResponse, index: int, acks: bool) -> None:
        async for message in ws:
            envelope = message.json()
            received[index].append(envelope["payload"]["event"]["text"])
            if acks:
                await ws.send_json({"envelope_id": envelope["envelope_id"]})

    event = {"type": "message", "channel": "C1", "user": "U1", "ts": "1.0"}
    async with aiohttp.ClientSession() as session:
        url = slack.origin.replace("http://", "ws://") + "/link"
        first, second = await session.ws_connect(url), await session.ws_connect(url)
        hellos = [await first.receive_json(), await second.receive_json()]
        assert [hello["num_connections"] for hello in hellos] == [1, 2]
        apps = [asyncio.create_task(app(first, 0, True)), asyncio.create_task(app(second, 1, False))]
        for text in ("one", "two"):
            await slack.send_event({**event, "text": text})
        await slack.send_event({**event, "text": "three"}, connection=0)
        assert received == [["one", "two", "three"], ["two"]]
        assert [(d.connection, d.retry_attempt, d.acked) for d in slack.deliveries] == [
            (0, 0, True),
            (1, 0, False),
            (0, 1, True),  # the retry, on the other connection
            (0, 0, True),
        ]
        await first.close()
        await slack.wait_for(lambda: slack.socket.live == [1])
        assert slack.socket.is_connected and slack.socket.connected.is_set()
        await second.close()
        await slack.wait_for(lambda: not slack.socket.is_connected)
        assert not slack.socket.connected.is_set()
        await asyncio.gather(*apps)
