"""Media pipeline benchmark: time and bytes before/after for a 12 MP JPEG and a 30 s 1080p MP4, and a
summary of 50 chat messages carrying 20 photos, cold and warm.

    .venv/bin/python bench/bench_media.py [--runs 5] [--video-seconds 30]

The summary row runs the real ChatService against the fake model API on 127.0.0.1: the photos are
served as platform files with ids (as Slack's and Discord's are), so the warm run, a new process on
the same media cache, downloads and converts nothing.

Files are generated on the spot (Pillow, PyAV) in a temporary directory. The video is encoded at a
phone-like bitrate, so it is over the default 20 MB video limit and gets re-encoded; the per-file limit
is raised to 100 MB for this run (a 30 s phone clip is larger than the default 25 MB). Wall time, CPU
time (all threads) and the process's peak RSS are reported. Bounded: a few runs of each, about a minute.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import av

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.config import Settings
from core.media import MediaPipeline, PreparedMedia
from core.models import AttachmentError, ConversationKey, HistoryMessage, Turn
from core.reply.surface import PlatformLimits
from core.service import ChatService
from tests.core.media.helpers import payload
from tests.core.media.samples import encode, photo, write_video
from tests.fakes.memory_surface import MemorySurface
from tests.fakes.model_server import API_KEY, FakeModelServer, Script

SUMMARY_MESSAGES, SUMMARY_PHOTOS = 50, 20
LIMITS = PlatformLimits(name="bench", max_message_chars=12_000, edits_per_window=50, window_s=1.0)


class PlatformFile:
    """A shared photo as an adapter hands it over: fetched on demand, with an immutable platform id."""

    def __init__(self, number: int, data: bytes, fetched: list[str]):
        self.name, self.source = f"photo{number}.jpg", f"F{number:04d}"
        self.declared_size, self.declared_mime = len(data), "image/jpeg"
        self.cache_key = f"bench:{self.source}"
        self._data, self._fetched = data, fetched

    async def read(self, max_bytes: int) -> bytes:
        if len(self._data) > max_bytes:
            raise AttachmentError("too large")
        self._fetched.append(self.source)
        return self._data


async def summary_run(
    settings: Settings, model_server: FakeModelServer, photos: list[bytes]
) -> dict[str, float]:
    """One summary of SUMMARY_MESSAGES messages, SUMMARY_PHOTOS of them with a photo."""
    fetched: list[str] = []
    history = [
        HistoryMessage(
            role="user",
            author=f"person{n % 5}",
            text=f"message {n}: an update about the offsite",
            message_id=f"m{n}",
            attachments=[PlatformFile(n, photos[n // 2], fetched)]
            if n % 2 == 0 and n < 2 * len(photos)
            else (),
        )
        for n in range(SUMMARY_MESSAGES)
    ]
    key = ConversationKey("bench", "W1", "C1", f"summary-{time.monotonic_ns()}")
    turn = Turn(key, "U1", "asker", "Summarize this channel.", history=history, summary="messages")
    service = await ChatService.open(settings)
    model_server.enqueue(Script(content="A summary. " * 20, chunk_chars=20))
    started = time.perf_counter()
    outcome = await service.answer(turn, MemorySurface(LIMITS))
    total = time.perf_counter() - started
    await service.close()
    assert outcome.status == "complete" and outcome.result is not None, outcome.status
    body = model_server.requests[-1].body
    parts = [part for m in body["messages"] if isinstance(m["content"], list) for part in m["content"]]
    return {
        "bytes": len(json.dumps(body)),
        "images": sum(part["type"] == "image_url" for part in parts),
        "tokens": outcome.estimated_prompt_tokens,
        "ttft": outcome.result.time_to_first_token_s or 0.0,
        "total": total,
        "downloads": len(fetched),
    }


async def summary_rows() -> None:
    photos = [encode(photo(1600 + 8 * n, 1200), "JPEG", quality=88) for n in range(SUMMARY_PHOTOS)]
    async with FakeModelServer() as model_server:
        with tempfile.TemporaryDirectory(prefix="bench-summary-") as workdir:
            settings = Settings(
                _env_file=None,
                aiml_api_key=API_KEY,
                aiml_base_url=model_server.base_url,
                database_url=f"sqlite:///{workdir}/bench.db",
            )
            print(f"summary of {SUMMARY_MESSAGES} messages with {SUMMARY_PHOTOS} photos (1600x1200 JPEG):")
            for label in ("cold cache", "warm cache (a new process)"):
                row = await summary_run(settings, model_server, photos)
                print(
                    f"  {label:<27} request {row['bytes'] / 1e6:5.2f} MB, {row['images']:.0f} images, "
                    f"~{row['tokens']:,.0f} prompt tokens (estimated), "
                    f"first token after {row['ttft']:.2f} s, whole answer {row['total']:.2f} s, "
                    f"{row['downloads']:.0f} downloads"
                )


def describe_image(prepared: PreparedMedia) -> str:
    from PIL import Image

    mime, data = payload(prepared.parts[0])
    with Image.open(io.BytesIO(data)) as image:
        return f"{mime} {image.width}x{image.height}"


def describe_video(prepared: PreparedMedia) -> str:
    mime, data = payload(prepared.parts[0])
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        return f"{mime} {stream.width}x{stream.height} @ {float(stream.average_rate or 0):.0f} fps"


async def measure(
    settings: Settings, name: str, data: bytes, runs: int
) -> tuple[list[float], list[float], PreparedMedia]:
    walls, cpus = [], []
    prepared = PreparedMedia()
    for _ in range(runs):
        pipeline = MediaPipeline(settings)  # a fresh cache each run: measure the conversion, not a hit
        wall, cpu = time.perf_counter(), time.process_time()
        prepared = await pipeline.prepare_bytes(name, data)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return walls, cpus, prepared


def report(
    label: str, size: int, walls: list[float], cpus: list[float], prepared: PreparedMedia, shape: str
) -> None:
    out = len(payload(prepared.parts[0])[1])
    request = len(prepared.parts[0].model_dump_json())
    print(f"{label}")
    print(f"  before: {size / 1e6:8.2f} MB   after: {out / 1e6:8.2f} MB ({out / size:.0%})  {shape}")
    print(f"  request part (base64 JSON): {request / 1e6:.2f} MB   estimated tokens: {prepared.tokens:,}")
    print(
        f"  wall: median {statistics.median(walls) * 1000:8.0f} ms (min {min(walls) * 1000:.0f})   "
        f"cpu: median {statistics.median(cpus) * 1000:8.0f} ms   runs: {len(walls)}"
    )
    for note in prepared.notes:
        print(f"  note: {note}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="image runs (the video runs max(1, runs // 2))")
    parser.add_argument("--video-seconds", type=float, default=30.0)
    args = parser.parse_args()
    settings = Settings(_env_file=None, max_file_mb=100)

    jpeg = encode(photo(4000, 3000), "JPEG", quality=92)
    walls, cpus, prepared = await measure(settings, "IMG_0001.jpg", jpeg, args.runs)
    report("12 MP JPEG (4000x3000, quality 92)", len(jpeg), walls, cpus, prepared, describe_image(prepared))

    with tempfile.TemporaryDirectory(prefix="bench-media-") as workdir:
        started = time.perf_counter()
        path = write_video(
            Path(workdir, "clip.mp4"),
            seconds=args.video_seconds,
            width=1920,
            height=1080,
            bitrate=10_000_000,
            noisy=True,
        )
        generated = time.perf_counter() - started
        clip = path.read_bytes()
    print(f"(generated the {args.video_seconds:.0f} s 1080p test clip in {generated:.1f} s)")
    walls, cpus, prepared = await measure(settings, "clip.mp4", clip, max(1, args.runs // 2))
    report(
        f"{args.video_seconds:.0f} s 1080p30 H.264 MP4",
        len(clip),
        walls,
        cpus,
        prepared,
        describe_video(prepared),
    )
    await summary_rows()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of the whole run: {peak_mb:.0f} MB")


if __name__ == "__main__":
    asyncio.run(main())
