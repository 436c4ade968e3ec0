"""The pipeline over a message's files: early refusals, limits, notes, metadata, the cache."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from core.llm.types import ImagePart, TextPart, UserMessage
from core.media import MediaPipeline
from tests.core.media.helpers import MemorySource, media_settings, payload
from tests.core.media.samples import encode, photo


def pipeline(**settings: object) -> MediaPipeline:
    return MediaPipeline(media_settings(**settings))


def png(seed: int = 1, size: tuple[int, int] = (64, 48)) -> bytes:
    return encode(photo(*size, seed=seed), "PNG")


async def test_a_file_declared_too_large_is_refused_without_downloading() -> None:
    source = MemorySource(png(), name="huge.png", declared_size=30_000_000)
    prepared = await pipeline(max_file_mb=25).prepare([source])
    assert source.reads == 0
    assert prepared.parts == [] and prepared.attachments == []
    assert prepared.notes == ["huge.png: is 30 MB, over the 25 MB limit per file."]


async def test_a_file_declared_as_audio_is_refused_without_downloading() -> None:
    source = MemorySource(b"ID3" + bytes(100), name="memo.m4a", declared_mime="audio/mp4")
    prepared = await pipeline().prepare([source])
    assert source.reads == 0
    assert prepared.notes == ["memo.m4a: is an audio file, which cannot be sent to the model."]


async def test_a_file_larger_than_declared_is_stopped_by_the_read_limit() -> None:
    source = MemorySource(bytes(3_000_000), name="liar.png", declared_size=1000)
    prepared = await pipeline(max_file_mb=1).prepare([source])
    assert source.reads == 1 and prepared.parts == []
    assert prepared.notes == ["liar.png is larger than 1000000 bytes"]


async def test_download_failures_become_notes_and_the_rest_is_still_prepared() -> None:
    @dataclass
    class Exploding(MemorySource):
        async def read(self, max_bytes: int) -> bytes:
            raise RuntimeError("adapter bug")

    sources = [
        MemorySource(b"", name="gone.png", error="the file was deleted"),
        Exploding(b"", name="weird.png"),
        MemorySource(png(), name="ok.png"),
        MemorySource(b"", name="empty.txt"),
        MemorySource(bytes(range(256)) * 10, name="blob.dat"),
    ]
    prepared = await pipeline().prepare(sources)

    assert [meta.name for meta in prepared.attachments] == ["ok.png"]
    assert len(prepared.parts) == 1 and isinstance(prepared.parts[0], ImagePart)
    assert prepared.notes == [
        "gone.png: the file was deleted",
        "weird.png: could not be downloaded.",
        "empty.txt: is empty.",
        "blob.dat: is of a type that cannot be read (not an image, video, PDF or text).",
    ]


async def test_only_the_allowed_number_of_files_is_read() -> None:
    sources = [MemorySource(png(seed=index), name=f"{index}.png") for index in range(5)]
    prepared = await pipeline(max_files=3).prepare(sources)
    assert [meta.name for meta in prepared.attachments] == ["0.png", "1.png", "2.png"]
    assert [source.reads for source in sources] == [1, 1, 1, 0, 0]
    assert prepared.notes == ["Only 3 files per message are read; left out: 3.png, 4.png."]


async def test_metadata_describes_each_accepted_file() -> None:
    data = png()
    source = MemorySource(data, name="chart.png", source="slack:F123")
    [meta] = (await pipeline().prepare([source])).attachments
    assert meta.kind == "image" and meta.mime == "image/png" and meta.size == len(data)
    assert meta.sha256 == hashlib.sha256(data).hexdigest()
    assert (meta.name, meta.source) == ("chart.png", "slack:F123")


async def test_the_same_file_twice_is_sent_once() -> None:
    data = png()
    prepared = await pipeline().prepare([MemorySource(data, name="a.png"), MemorySource(data, name="b.png")])
    assert len(prepared.parts) == 1 and len(prepared.attachments) == 1
    assert prepared.notes == ["b.png: is the same file as a.png; it was sent once."]


async def test_prepared_parts_fit_a_user_message_and_keep_their_order() -> None:
    sources = [MemorySource(b"first", name="a.txt"), MemorySource(png(), name="b.png")]
    prepared = await pipeline().prepare(sources)
    message = UserMessage(content=[TextPart(text="What is this?"), *prepared.parts])
    wire = message.model_dump(mode="json", exclude_none=True)
    assert [part["type"] for part in wire["content"]] == ["text", "text", "image_url"]
    assert wire["content"][2]["image_url"]["url"].startswith("data:image/png;base64,")
    assert prepared.tokens > 0


async def test_recent_media_can_be_re_sent_from_the_cache_without_downloading() -> None:
    media = pipeline()
    data = png()
    prepared = await media.prepare([MemorySource(data, name="a.png")])
    [meta] = prepared.attachments
    assert media.parts_for(meta) == prepared.parts

    again = MemorySource(data, name="renamed.png")
    second = await media.prepare([again])
    assert second.parts == prepared.parts and second.attachments[0].name == "renamed.png"


async def test_the_cache_forgets_the_least_recently_used_files_beyond_its_budget() -> None:
    files = [png(seed=index, size=(120, 90)) for index in range(4)]
    one_entry = len(payload((await pipeline().prepare_bytes("x.png", files[0])).parts[0])[1]) * 4 // 3
    media = MediaPipeline(media_settings(), cache_bytes=int(one_entry * 2.5))
    metas = [
        (await media.prepare_bytes(f"{index}.png", data)).attachments[0] for index, data in enumerate(files)
    ]

    assert media.parts_for(metas[0]) is None and media.parts_for(metas[1]) is None
    assert media.parts_for(metas[2]) is not None and media.parts_for(metas[3]) is not None
    assert media.cache.total_bytes <= media.cache.max_bytes


async def test_prepare_bytes_applies_the_size_limit() -> None:
    prepared = await pipeline(max_file_mb=0.001).prepare_bytes("big.txt", b"x" * 5000)
    assert prepared.parts == [] and prepared.notes == ["big.txt: is 5 KB, over the 1 KB limit per file."]


async def test_a_login_page_served_instead_of_an_image_is_not_inlined_as_text() -> None:
    page = b"<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body>Sign in</body></html>"
    source = MemorySource(page, name="photo.jpg", declared_mime="image/jpeg")
    prepared = await pipeline().prepare([source])
    assert prepared.parts == []
    assert prepared.notes == [
        "photo.jpg: could not be downloaded: the server sent a web page instead of the file "
        "(the bot may lack permission to read files)."
    ]
