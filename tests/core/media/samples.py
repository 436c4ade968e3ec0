"""Real media files made on the spot (Pillow, PyAV, pypdf), shared by the media tests and the benchmark."""

from __future__ import annotations

import io
import random
from fractions import Fraction
from pathlib import Path

import av
from PIL import Image, ImageDraw

ORIENTATION_TAG = 0x0112


def photo(width: int, height: int, *, seed: int = 1) -> Image.Image:
    """A photo-like picture: smooth gradients plus noise, so JPEG sizes resemble a camera's."""
    rng = random.Random(seed)
    small = Image.new("RGB", (64, 48))
    small.putdata([(rng.randrange(256), rng.randrange(256), rng.randrange(256)) for _ in range(64 * 48)])
    image = small.resize((width, height), Image.Resampling.BICUBIC)
    noise = Image.effect_noise((width, height), 24).convert("RGB")
    return Image.blend(image, noise, 0.15)


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def marked_jpeg(width: int, height: int, orientation: int) -> bytes:
    """A JPEG stored sideways with a red block in its stored top-left corner and an EXIF orientation."""
    image = Image.new("RGB", (width, height), "white")
    ImageDraw.Draw(image).rectangle((0, 0, width // 4, height // 4), fill="red")
    exif = Image.Exif()
    exif[ORIENTATION_TAG] = orientation
    return encode(image, "JPEG", quality=90, exif=exif)


def animated_gif(frames: int, size: tuple[int, int] = (40, 30)) -> bytes:
    images = [Image.new("P", size, color) for color in range(frames)]
    for index, image in enumerate(images):
        image.putpalette([channel for i in range(256) for channel in (i, 255 - i, (i * 7 + index) % 256)])
    return encode(images[0], "GIF", save_all=True, append_images=images[1:], duration=100, loop=0)


def write_video(
    path: Path,
    *,
    seconds: float,
    width: int,
    height: int,
    fps: int = 30,
    fmt: str = "mp4",
    codec: str = "libx264",
    bitrate: int | None = None,
    noisy: bool = False,
) -> Path:
    """A real encoded clip: moving gradient (plus noise when `noisy`, to make it hard to compress)."""
    base = photo(width, height, seed=3)
    noise = Image.effect_noise((width, height), 60).convert("RGB") if noisy else None
    with av.open(str(path), "w", format=fmt) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if bitrate:
            stream.bit_rate = bitrate
        if codec == "libx264":
            stream.codec_context.options = {"preset": "ultrafast"}
        for index in range(round(seconds * fps)):
            shift = index * 4 % width
            image = Image.merge(
                "RGB",
                [
                    band.transform(base.size, Image.Transform.AFFINE, (1, 0, shift, 0, 1, 0))
                    for band in base.split()
                ],
            )
            if noise is not None:
                image = Image.blend(image, noise.rotate(index * 7), 0.3)
            frame = av.VideoFrame.from_image(image)
            frame.pts, frame.time_base = index, Fraction(1, fps)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def pdf_with_text(lines: list[str]) -> bytes:
    """A one-page PDF with a real text layer, written by hand (pypdf only reads)."""
    text_ops = " ".join(f"({line}) Tj T*" for line in lines)
    stream = f"BT /F1 12 Tf 14 TL 72 720 Td {text_ops} ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    return _pdf(objects)


def pdf_without_text() -> bytes:
    """A one-page PDF with nothing on it (like a scan without OCR)."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>",
    ]
    return _pdf(objects)


def _pdf(objects: list[bytes]) -> bytes:
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)
