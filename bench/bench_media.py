"""Media pipeline benchmark: time and bytes before/after for a 12 MP JPEG and a 30 s 1080p MP4.

    .venv/bin/python bench/bench_media.py [--runs 5] [--video-seconds 30]

Files are generated on the spot (Pillow, PyAV) in a temporary directory. The video is encoded at a
phone-like bitrate, so it is over the default 20 MB video limit and gets re-encoded; the per-file limit
is raised to 100 MB for this run (a 30 s phone clip is larger than the default 25 MB). Wall time, CPU
time (all threads) and the process's peak RSS are reported. Bounded: a few runs of each, about a minute.
"""

from __future__ import annotations

import argparse
import asyncio
import io
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
from tests.core.media.helpers import payload
from tests.core.media.samples import encode, photo, write_video


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
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of the whole run: {peak_mb:.0f} MB")


if __name__ == "__main__":
    asyncio.run(main())
