"""Attachments: images reach the model; oversized and unsupported files get a note, not a download."""

from __future__ import annotations

import io

from PIL import Image

from tests.discord.conftest import StartBot, World, last_user_text, request_parts
from tests.discord.test_messages import wait_answer
from tests.fakes.model_server import FakeModelServer


def png(width: int = 64, height: int = 48) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


async def test_an_attached_image_is_downloaded_and_sent_to_the_model(
    world: World, start_bot: StartBot, model_server: FakeModelServer
) -> None:
    api = world.api
    photo = api.add_attachment("photo.png", png(), "image/png")
    await start_bot()
    await api.user_message(world.general, world.alice, world.mention("what colour?"), attachments=[photo])
    await wait_answer(api, world.general, "what colour?")
    assert api.attachment_downloads == [photo.id]
    images = request_parts(model_server, "image_url")
    assert len(images) == 1
    assert images[0]["image_url"]["url"].startswith("data:image/")


async def test_oversized_and_unsupported_files_get_notes_and_the_rest_is_answered(
    world: World, start_bot: StartBot, model_server: FakeModelServer
) -> None:
    api = world.api
    huge = api.add_attachment("huge.png", png(), "image/png", declared_size=50_000_000)
    song = api.add_attachment("song.mp3", b"ID3" + bytes(2000), "audio/mpeg")
    photo = api.add_attachment("ok.png", png(), "image/png")
    await start_bot(max_file_mb=10)
    await api.user_message(
        world.general, world.alice, world.mention("look at these"), attachments=[huge, song, photo]
    )
    reply = await wait_answer(api, world.general, "look at these")
    assert api.attachment_downloads == [photo.id]  # size and type were judged before downloading
    assert "huge.png" in reply["content"]
    assert "song.mp3" in reply["content"]
    assert len(request_parts(model_server, "image_url")) == 1


async def test_an_image_earlier_in_the_reply_chain_reaches_the_model(
    world: World, start_bot: StartBot, model_server: FakeModelServer
) -> None:
    api = world.api
    photo = api.add_attachment("chart.png", png(), "image/png")
    await start_bot()
    shared = await api.user_message(world.general, world.bob, "our latest chart", attachments=[photo])
    await api.user_message(world.general, world.alice, world.mention("what does it show?"), reply_to=shared)
    await wait_answer(api, world.general, "what does it show?")
    assert api.attachment_downloads == [photo.id]
    assert len(request_parts(model_server, "image_url")) == 1


async def test_asking_again_about_an_image_in_the_reply_chain_does_not_download_it_again(
    world: World, start_bot: StartBot, model_server: FakeModelServer
) -> None:
    api = world.api
    photo = api.add_attachment("chart.png", png(), "image/png")
    await start_bot()
    shared = await api.user_message(world.general, world.bob, "our latest chart", attachments=[photo])
    for question in ("what does it show?", "and the trend?", "any outliers?"):
        await api.user_message(world.general, world.alice, world.mention(question), reply_to=shared)
        await wait_answer(api, world.general, question)
    assert len(model_server.requests) == 3
    assert all(len(request_parts(model_server, "image_url", index)) == 1 for index in range(3))
    assert api.attachment_downloads == [photo.id]


async def test_a_forwarded_message_is_read_with_its_text_and_attachments(
    world: World, start_bot: StartBot, model_server: FakeModelServer
) -> None:
    api = world.api
    photo = api.add_attachment("plan.png", png(), "image/png")
    await start_bot()
    original = await api.user_message(world.random, world.bob, "the launch plan", attachments=[photo])
    forwarded = await api.forward(world.general, world.bob, original)
    await api.user_message(world.general, world.alice, world.mention("what is in it?"), reply_to=forwarded)
    await wait_answer(api, world.general, "what is in it?")
    assert "[forwarded message] the launch plan" in last_user_text(model_server)
    assert len(request_parts(model_server, "image_url")) == 1
    assert api.attachment_downloads == [photo.id]
