"""Files shared with a prompt: downloaded with the bot token from Slack (and only from Slack), looked
up with files.info when Slack says so, and Slack's sign-in page recognised as a missing scope."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from tests.core.media.samples import encode, photo, write_video
from tests.fakes.loopback import serve_on_loopback
from tests.fakes.model_server import FakeModelServer
from tests.slack.conftest import StartBot, World, model_parts, model_prompt, reply_text

PNG = encode(photo(64, 48), "PNG")


class ForeignHost:
    """A web server that is not Slack, recording what it is sent."""

    def __init__(self) -> None:
        self.requests: list[dict[str, str]] = []
        self.port = 0
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/cat.png"

    async def __aenter__(self) -> ForeignHost:
        app = web.Application()
        app.router.add_get("/cat.png", self._serve)
        self._runner, self.port = await serve_on_loopback(app)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _serve(self, request: web.Request) -> web.Response:
        self.requests.append(dict(request.headers))
        return web.Response(body=PNG, content_type="image/png")


@pytest.fixture
async def foreign() -> AsyncIterator[ForeignHost]:
    async with ForeignHost() as host:
        yield host


async def test_an_image_in_the_prompt_is_downloaded_with_the_bot_token_and_sent_to_the_model(
    start_bot: StartBot, world: World, model_server: FakeModelServer
):
    bot = await start_bot()
    image = world.slack.add_file("cat.png", PNG, "image/png", owner=world.alice)
    await world.slack.post(world.alice, world.general, world.mention("what is this?"), files=[image])
    await bot.idle()
    assert len(model_parts(model_server, "image_url")) == 1
    assert world.slack.downloads == [(f"/files-pri/T0FAKE-{image['id']}/cat.png", True)]


async def test_a_video_in_a_dm_goes_through_the_media_pipeline(
    start_bot: StartBot, world: World, model_server: FakeModelServer, tmp_path: Path
):
    bot = await start_bot()
    clip = write_video(tmp_path / "clip.mp4", seconds=1, width=64, height=48, fps=10).read_bytes()
    video = world.slack.add_file("clip.mp4", clip, "video/mp4", owner=world.alice)
    await world.slack.post(world.alice, world.slack.open_dm(world.alice), "what happens here?", files=[video])
    await bot.idle()
    assert len(model_parts(model_server, "video_url")) == 1


async def test_a_file_shown_only_by_id_is_looked_up_with_files_info_first(
    start_bot: StartBot, world: World, model_server: FakeModelServer
):
    bot = await start_bot()
    image = world.slack.add_file("cat.png", PNG, "image/png", owner=world.alice, check_file_info=True)
    assert "url_private" not in image
    await world.slack.post(world.alice, world.general, world.mention("and this?"), files=[image])
    await bot.idle()
    assert [call.args["file"] for call in world.slack.calls_to("files.info")] == [image["id"]]
    assert len(model_parts(model_server, "image_url")) == 1


async def test_the_token_is_never_sent_to_a_host_that_is_not_slack(
    start_bot: StartBot, world: World, model_server: FakeModelServer, foreign: ForeignHost
):
    bot = await start_bot()
    image = world.slack.add_file("cat.png", PNG, "image/png", owner=world.alice, url_private=foreign.url)
    ts = await world.slack.post(world.alice, world.general, world.mention("look"), files=[image])
    await bot.idle()
    assert foreign.requests == []
    assert model_parts(model_server, "image_url") == []
    assert "not stored on Slack" in reply_text(world.slack.bot_messages(world.general, thread_ts=ts))


async def test_a_redirect_off_slack_is_followed_without_the_token(
    start_bot: StartBot, world: World, model_server: FakeModelServer, foreign: ForeignHost
):
    bot = await start_bot()
    image = world.slack.add_file("cat.png", PNG, "image/png", owner=world.alice, redirect_to=foreign.url)
    await world.slack.post(world.alice, world.general, world.mention("look"), files=[image])
    await bot.idle()
    assert world.slack.downloads[0][1] is True  # Slack's own host got the token...
    assert len(foreign.requests) == 1
    assert "Authorization" not in foreign.requests[0]  # ...the other host did not
    assert len(model_parts(model_server, "image_url")) == 1


async def test_slacks_sign_in_page_means_the_files_read_scope_is_missing(
    start_bot: StartBot, world: World, model_server: FakeModelServer
):
    bot = await start_bot()
    world.slack.scopes.discard("files:read")
    image = world.slack.add_file("cat.png", PNG, "image/png", owner=world.alice)
    ts = await world.slack.post(world.alice, world.general, world.mention("what is this?"), files=[image])
    await bot.idle()
    assert model_parts(model_server, "image_url") == []
    reply = reply_text(world.slack.bot_messages(world.general, thread_ts=ts))
    assert "cat.png" in reply and "`files:read`" in reply and "admin" in reply


async def test_files_info_without_the_scope_says_the_same(
    start_bot: StartBot, world: World, model_server: FakeModelServer
):
    bot = await start_bot()
    world.slack.scopes.discard("files:read")
    image = world.slack.add_file("cat.png", PNG, "image/png", owner=world.alice, check_file_info=True)
    ts = await world.slack.post(world.alice, world.general, world.mention("and this?"), files=[image])
    await bot.idle()
    assert "`files:read`" in reply_text(world.slack.bot_messages(world.general, thread_ts=ts))


async def test_images_earlier_in_the_thread_come_along_as_context(
    start_bot: StartBot, world: World, model_server: FakeModelServer
):
    bot = await start_bot()
    image = world.slack.add_file("cat.png", PNG, "image/png", owner=world.bob)
    root = await world.slack.post(world.bob, world.general, "look at my cat", files=[image])
    await world.slack.post(world.alice, world.general, world.mention("what breed is it?"), thread_ts=root)
    await bot.idle()
    assert len(model_parts(model_server, "image_url")) == 1


async def test_a_thread_of_ten_images_asked_about_ten_times_downloads_each_image_once(
    start_bot: StartBot, world: World, model_server: FakeModelServer
):
    bot = await start_bot(context_media_turns=30)
    root = await world.slack.post(world.bob, world.general, "holiday pictures coming")
    for number in range(10):
        image = world.slack.add_file(
            f"day{number}.png", encode(photo(40 + number, 30), "PNG"), "image/png", owner=world.bob
        )
        await world.slack.post(world.bob, world.general, f"day {number}", files=[image], thread_ts=root)
    for question in range(10):
        await world.slack.post(
            world.alice, world.general, world.mention(f"question {question}?"), thread_ts=root
        )
        await bot.idle()
    assert len(model_server.requests) == 10
    assert all(len(model_parts(model_server, "image_url", index)) == 10 for index in range(10))
    downloaded = [path for path, _ in world.slack.downloads]
    assert len(downloaded) == 10 and len(set(downloaded)) == 10


async def test_prepared_files_outlive_a_restart(
    start_bot: StartBot, world: World, model_server: FakeModelServer
):
    bot = await start_bot()
    image = world.slack.add_file("cat.png", PNG, "image/png", owner=world.bob)
    root = await world.slack.post(world.bob, world.general, "look at my cat", files=[image])
    await world.slack.post(world.alice, world.general, world.mention("what breed is it?"), thread_ts=root)
    await bot.idle()
    await bot.stop()
    bot = await start_bot()  # the same database folder, so the same media cache
    await world.slack.post(world.alice, world.general, world.mention("and its age?"), thread_ts=root)
    await bot.idle()
    assert len(model_parts(model_server, "image_url")) == 1
    assert len(world.slack.downloads) == 1


async def test_a_message_shared_into_the_thread_is_read_with_its_text_and_files(
    start_bot: StartBot, world: World, model_server: FakeModelServer
):
    bot = await start_bot()
    image = world.slack.add_file("plan.png", PNG, "image/png", owner=world.bob)
    original = await world.slack.post(world.bob, world.random, "the launch plan", files=[image])
    root = await world.slack.post(
        world.alice, world.general, "look at this", sharing=(world.random, original)
    )
    await world.slack.post(world.alice, world.general, world.mention("what is in it?"), thread_ts=root)
    await bot.idle()
    assert "[shared message from " in model_prompt(model_server) and "the launch plan" in model_prompt(
        model_server
    )
    assert len(model_parts(model_server, "image_url")) == 1
