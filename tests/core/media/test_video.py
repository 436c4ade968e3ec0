"""Videos: sent untouched when within the limits, otherwise trimmed and shrunk, or refused."""

from __future__ import annotations

import io
import threading
from fractions import Fraction
from pathlib import Path

import av
from PIL import Image, ImageDraw

from core.llm.types import VideoPart
from core.media import MediaPipeline, MediaProgress, estimate_tokens
from tests.core.media.helpers import media_settings, payload
from tests.core.media.samples import write_video


def pipeline(**settings: object) -> MediaPipeline:
    return MediaPipeline(media_settings(**settings))


def describe(data: bytes) -> tuple[float, int, int, float, int]:
    """Duration, width, height, frame rate and rotation of an encoded video."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
        rate = float(stream.average_rate or 0)
        return len(frames) / rate, frames[0].width, frames[0].height, rate, frames[0].rotation


async def test_a_short_mp4_within_the_limits_is_sent_untouched(tmp_path: Path) -> None:
    clip = write_video(tmp_path / "clip.mp4", seconds=2, width=160, height=120).read_bytes()
    prepared = await pipeline().prepare_bytes("clip.mp4", clip)

    [part] = prepared.parts
    assert isinstance(part, VideoPart)
    assert payload(part) == ("video/mp4", clip)
    assert prepared.notes == []
    [meta] = prepared.attachments
    assert (meta.kind, meta.mime, meta.size) == ("video", "video/mp4", len(clip))
    assert estimate_tokens(part) < estimate_tokens(
        (await pipeline().prepare_bytes("long.mp4", _long_clip(tmp_path))).parts[0]
    )


def _long_clip(tmp_path: Path) -> bytes:
    return write_video(tmp_path / "long.mp4", seconds=6, width=64, height=48, fps=10).read_bytes()


async def test_a_video_over_the_length_limit_is_trimmed_with_a_note(tmp_path: Path) -> None:
    clip = write_video(tmp_path / "long.mp4", seconds=3, width=320, height=240).read_bytes()
    prepared = await pipeline(video_max_seconds=1).prepare_bytes("long.mp4", clip)

    mime, data = payload(prepared.parts[0])
    assert mime == "video/mp4"
    seconds, width, height, fps, _ = describe(data)
    assert abs(seconds - 1.0) < 0.2
    assert (width, height) == (320, 240)  # never upscaled
    assert fps <= 15
    assert prepared.notes == ["long.mp4: is 3 s long; only the first 1 s were sent."]


async def test_a_video_over_the_size_limit_is_re_encoded_smaller(tmp_path: Path) -> None:
    clip = write_video(
        tmp_path / "big.mp4", seconds=2, width=1280, height=720, noisy=True, bitrate=4_000_000
    ).read_bytes()
    limit_mb = 0.3
    assert len(clip) > limit_mb * 1_000_000
    prepared = await pipeline(video_max_mb=limit_mb).prepare_bytes("big.mp4", clip)

    [part] = prepared.parts
    mime, data = payload(part)
    assert mime == "video/mp4" and len(data) <= limit_mb * 1_000_000
    seconds, width, height, _, _ = describe(data)
    assert height <= 720 and abs(width / height - 16 / 9) < 0.01 and abs(seconds - 2.0) < 0.25
    [note] = prepared.notes
    assert note.startswith("big.mp4: is ") and "over the 0.3 MB video limit, so it was sent smaller" in note


async def test_a_video_that_cannot_be_made_small_enough_is_refused(tmp_path: Path) -> None:
    clip = write_video(tmp_path / "noisy.mp4", seconds=2, width=320, height=240, noisy=True).read_bytes()
    prepared = await pipeline(video_max_mb=0.002).prepare_bytes("noisy.mp4", clip)
    assert prepared.parts == [] and prepared.attachments == []
    [note] = prepared.notes
    assert note.startswith("noisy.mp4: is too large to send even at low quality")
    assert "the limit is 2 KB per video" in note


async def test_a_sideways_phone_video_is_turned_upright_when_re_encoded(tmp_path: Path) -> None:
    picture = Image.new("RGB", (320, 240), "white")
    ImageDraw.Draw(picture).rectangle((0, 0, 80, 60), fill="red")
    path = tmp_path / "phone.mov"
    with av.open(str(path), "w", format="mov") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        stream.set_display_rotation(-90)  # players turn it 90° clockwise
        for index in range(20):
            frame = av.VideoFrame.from_image(picture)
            frame.pts, frame.time_base = index, Fraction(1, 10)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))

    prepared = await pipeline(video_max_seconds=1).prepare_bytes("phone.mov", path.read_bytes())
    _, data = payload(prepared.parts[0])
    _, width, height, _, rotation = describe(data)
    assert (width, height, rotation) == (240, 320, 0)
    with av.open(io.BytesIO(data)) as container:
        first = next(container.decode(video=0)).to_image()
    assert first.getpixel((first.width - 10, 10))[0] > 200 and first.getpixel((first.width - 10, 10))[2] < 80


async def test_webm_is_accepted_and_matroska_converted_to_mp4(tmp_path: Path) -> None:
    webm = write_video(tmp_path / "a.webm", seconds=1, width=64, height=48, fmt="webm", codec="libvpx")
    mkv = write_video(tmp_path / "b.mkv", seconds=1, width=64, height=48, fmt="matroska")
    prepared = await pipeline().prepare_bytes("a.webm", webm.read_bytes())
    assert payload(prepared.parts[0]) == ("video/webm", webm.read_bytes())
    prepared = await pipeline().prepare_bytes("b.mkv", mkv.read_bytes())
    assert payload(prepared.parts[0])[0] == "video/mp4"
    assert prepared.attachments[0].mime == "video/x-matroska" and prepared.notes == []


async def test_a_damaged_video_gets_a_note(tmp_path: Path) -> None:
    clip = write_video(tmp_path / "clip.mp4", seconds=1, width=64, height=48).read_bytes()
    damaged = clip[:48] + bytes(len(clip) - 48)
    prepared = await pipeline().prepare_bytes("clip.mp4", damaged)
    assert prepared.parts == []
    assert prepared.notes == [
        "clip.mp4: could not be read as a video (the file looks damaged or incomplete)."
    ]


async def test_re_encoding_reports_progress_on_the_event_loop(tmp_path: Path) -> None:
    clip = write_video(tmp_path / "long.mp4", seconds=3, width=160, height=120).read_bytes()
    seen: list[MediaProgress] = []
    loop_thread = threading.get_ident()

    def on_progress(progress: MediaProgress) -> None:
        assert threading.get_ident() == loop_thread
        seen.append(progress)

    await pipeline(video_max_seconds=2).prepare_bytes("long.mp4", clip, on_progress=on_progress)
    fractions = [progress.fraction for progress in seen]
    assert fractions and fractions == sorted(fractions) and all(0 < value <= 1 for value in fractions)
    assert {progress.name for progress in seen} == {"long.mp4"}
