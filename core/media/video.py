"""Videos: probe duration and size with PyAV; re-encode smaller (and trim) when over the limits.

Policy: a video within the limits in a format the API accepts (MP4, MOV, WebM) is sent untouched. A video
over the byte limit, over the length limit, of unknown length or in another container is re-encoded to
H.264 MP4 without sound, trying lower resolutions and frame rates until it fits. A video longer than
`max_seconds` is trimmed to its first `max_seconds` (with a note) rather than refused: the start of a
clip is usually what the question is about, and the user learns exactly what the model saw. A video
that cannot be made small enough even at the lowest rung is refused with a note.

Blocking code: the pipeline runs it in a worker thread. Files go through a temporary directory so that
at most the input bytes and the output bytes are in memory, never decoded frames beyond one at a time.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import av.filter

from core.media.errors import MediaRefused
from core.media.sniff import API_VIDEO_MIMES
from core.media.units import length_text, size_text

# Progress of a re-encode, 0.0 to 1.0, reported from the worker thread.
ProgressCallback = Callable[[float], None]


@dataclass(frozen=True, slots=True)
class Rung:
    """One step down the quality ladder."""

    short_side: int
    fps: int
    max_bitrate: int  # bits/s that already look good at this size
    min_bitrate: int  # below this the picture is too smeared to be worth sending


LADDER = (
    Rung(720, 15, 2_500_000, 300_000),
    Rung(480, 10, 1_000_000, 120_000),
    Rung(360, 6, 500_000, 40_000),
)
# Aim below the byte limit: the encoder's rate control overshoots a little, and the container adds bytes.
BYTE_TARGET_SHARE = 0.85
_PROGRESS_STEP = 0.05


@dataclass(frozen=True, slots=True)
class VideoProbe:
    seconds: float | None  # None when the container does not say (browser-recorded WebM, streams)
    width: int
    height: int
    fps: float
    rotation: int  # degrees counter-clockwise the player must turn the picture


@dataclass(frozen=True, slots=True)
class Encoded:
    width: int
    height: int
    fps: int
    seconds: float
    trimmed: bool  # stopped at the length limit with more video left


@dataclass(slots=True)
class PreparedVideo:
    mime: str
    data: bytes
    seconds: float
    notes: list[str] = field(default_factory=list)  # reasons, each completing "<file name>: ..."


def _seconds(container: av.container.InputContainer, stream: av.VideoStream) -> float | None:
    if container.duration and container.duration > 0:
        return container.duration / av.time_base
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if stream.frames and stream.average_rate:
        return float(stream.frames / stream.average_rate)
    return None


def probe(path: Path) -> VideoProbe:
    """Duration, size and frame rate from the container headers (and the first frame's rotation)."""
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise MediaRefused("has no video track (sound-only files are not supported).")
            stream = container.streams.video[0]
            first = next(container.decode(stream), None)
            if first is None:
                raise MediaRefused("has no frames to show.")
            return VideoProbe(
                seconds=_seconds(container, stream),
                width=first.width,
                height=first.height,
                fps=float(stream.average_rate or stream.guessed_rate or 30),
                rotation=first.rotation,
            )
    except (av.FFmpegError, StopIteration, ValueError):
        raise MediaRefused("could not be read as a video (the file looks damaged or incomplete).") from None


def _even(value: float) -> int:
    return max(2, round(value / 2) * 2)


def _output_size(info: VideoProbe, short_side: int) -> tuple[int, int]:
    """Scaled to `short_side` at most (never up), upright, with even dimensions as H.264 requires."""
    width, height = (info.height, info.width) if info.rotation % 180 else (info.width, info.height)
    scale = min(1.0, short_side / min(width, height))
    return _even(width * scale), _even(height * scale)


def _filters(
    graph: av.filter.Graph, info: VideoProbe, size: tuple[int, int]
) -> list[av.filter.FilterContext]:
    """Turn the picture upright (re-encoding drops the rotation flag players rely on), then scale."""
    turns = {
        90: ["transpose=cclock"],
        -90: ["transpose=clock"],
        180: ["hflip", "vflip"],
        -180: ["hflip", "vflip"],
    }
    nodes = []
    for spec in [*turns.get(info.rotation, []), f"scale={size[0]}:{size[1]}", "format=yuv420p"]:
        name, _, args = spec.partition("=")
        nodes.append(graph.add(name, args or None))
    return nodes


def _encode(
    source: Path,
    target: Path,
    info: VideoProbe,
    rung: Rung,
    seconds: float,
    bitrate: int,
    progress: ProgressCallback | None,
) -> Encoded:
    """Re-encode the first `seconds` of `source` to H.264 MP4 at `target`."""
    fps = max(1, min(rung.fps, math.floor(info.fps) or rung.fps))
    width, height = _output_size(info, rung.short_side)
    with (
        av.open(str(source)) as reader,
        av.open(str(target), "w", format="mp4", container_options={"movflags": "+faststart"}) as writer,
    ):
        stream_in = reader.streams.video[0]
        stream_in.thread_type = "AUTO"
        stream_out = writer.add_stream("libx264", rate=fps)
        stream_out.width, stream_out.height, stream_out.pix_fmt = width, height, "yuv420p"
        stream_out.bit_rate = bitrate
        stream_out.codec_context.options = {
            "preset": "veryfast",
            "maxrate": str(bitrate * 3 // 2),
            "bufsize": str(bitrate * 2),
        }
        graph = av.filter.Graph()
        nodes = [
            graph.add_buffer(template=stream_in),
            *_filters(graph, info, (width, height)),
            graph.add("buffersink"),
        ]
        graph.link_nodes(*nodes).configure()
        start: float | None = None
        written = 0
        trimmed = False
        reported = 0.0
        for frame in reader.decode(stream_in):
            at = frame.time if frame.time is not None else written / fps
            start = at if start is None else start
            elapsed = at - start
            if elapsed >= seconds:
                trimmed = True
                break
            if elapsed + 1e-6 < written / fps:
                continue  # dropping frames to reach the lower frame rate
            graph.vpush(frame)
            scaled = graph.vpull()
            scaled.pts, scaled.time_base = written, Fraction(1, fps)
            writer.mux(stream_out.encode(scaled))
            written += 1
            if progress is not None and elapsed / seconds - reported >= _PROGRESS_STEP:
                reported = elapsed / seconds
                progress(reported)
        if written == 0:
            raise MediaRefused("has no frames to show.")
        writer.mux(stream_out.encode(None))
    return Encoded(width, height, fps, written / fps, trimmed)


def prepare_video(
    data: bytes, mime: str, *, max_seconds: float, max_bytes: int, progress: ProgressCallback | None = None
) -> PreparedVideo:
    """Make a video fit the limits (see the module docstring); raises MediaRefused with the reason."""
    with tempfile.TemporaryDirectory(prefix="seedbot-video-") as workdir:
        source = Path(workdir, "source")
        source.write_bytes(data)
        info = probe(source)
        fits = info.seconds is not None and info.seconds <= max_seconds and len(data) <= max_bytes
        if fits and mime in API_VIDEO_MIMES:
            return PreparedVideo(mime, data, info.seconds or 0.0)
        seconds = min(info.seconds or max_seconds, max_seconds)
        budget = int(max_bytes * BYTE_TARGET_SHARE * 8 / max(seconds, 1.0))
        target = Path(workdir, "shrunk.mp4")
        for rung in LADDER:
            bitrate = min(rung.max_bitrate, budget)
            if bitrate < rung.min_bitrate:
                continue
            encoded = _encode(source, target, info, rung, seconds, bitrate, progress)
            if target.stat().st_size <= max_bytes:
                notes = _video_notes(info, len(data), max_seconds, max_bytes, encoded)
                return PreparedVideo("video/mp4", target.read_bytes(), encoded.seconds, notes)
        raise MediaRefused(
            f"is too large to send even at low quality ({size_text(len(data))}"
            f"{', ' + length_text(info.seconds) if info.seconds else ''}; the limit is "
            f"{size_text(max_bytes)} per video). Try a shorter clip."
        )


def _video_notes(
    info: VideoProbe, size: int, max_seconds: float, max_bytes: int, output: Encoded
) -> list[str]:
    notes = []
    if output.trimmed:
        length = f"is {length_text(info.seconds)} long" if info.seconds else "is longer than the limit"
        notes.append(f"{length}; only the first {length_text(max_seconds)} were sent.")
    if size > max_bytes:
        notes.append(
            f"is {size_text(size)}, over the {size_text(max_bytes)} video limit, so it was sent "
            f"smaller ({output.width}x{output.height}, {output.fps} fps)."
        )
    return notes
