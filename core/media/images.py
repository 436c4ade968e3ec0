"""Images: verify, honour EXIF orientation, downscale, and re-encode when that makes the request smaller.

Runs in a worker thread (the pipeline calls it through `asyncio.to_thread`); everything here is blocking.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field

from PIL import Image, ImageOps, UnidentifiedImageError

from core.media.errors import MediaRefused
from core.media.sniff import API_IMAGE_MIMES

try:  # HEIC (iPhone photos) needs the optional pillow-heif plugin; without it HEIC gets a clear note.
    from pillow_heif import register_heif_opener
except ImportError:
    HEIC_SUPPORTED = False
else:
    register_heif_opener()
    HEIC_SUPPORTED = True

JPEG_QUALITY = 85
# Untouched files this small are sent as they are: re-encoding would cost more CPU than it could save.
KEEP_SMALL_BYTES = 256 * 1024
# Keeping an untouched original beats a re-encode that saves less than this (each JPEG pass loses detail).
MIN_SAVING = 0.10
# Animated images (GIF, APNG, WebP) become this many still frames at most, spread over the animation.
MAX_ANIMATION_FRAMES = 4
# Decoded pixels we accept. JPEGs are decoded at reduced scale (draft mode), so they may be larger.
MAX_PIXELS = 40_000_000
MAX_JPEG_PIXELS = 180_000_000
_LOSSLESS_SOURCES = frozenset({"PNG", "GIF", "BMP", "TIFF"})
# Pixel modes every image decoder handles; others (CMYK, 16-bit) are converted even if nothing else changes.
_COMMON_MODES = frozenset({"1", "L", "LA", "P", "RGB", "RGBA"})
_DAMAGED = "could not be read as an image (the file looks damaged or incomplete)."


@dataclass(frozen=True, slots=True)
class EncodedImage:
    mime: str
    data: bytes
    width: int
    height: int


@dataclass(slots=True)
class PreparedImages:
    images: list[EncodedImage]
    notes: list[str] = field(default_factory=list)  # reasons, each completing "<file name>: ..."


def _has_alpha(image: Image.Image) -> bool:
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        alpha = image.convert("RGBA").getchannel("A")
        return alpha.getextrema()[0] < 255
    return False


def _encode(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    if fmt == "PNG":
        image.save(buffer, "PNG", compress_level=6)
    else:
        image.save(buffer, "JPEG", quality=JPEG_QUALITY, optimize=True, progressive=True)
    return buffer.getvalue()


def _reencode(image: Image.Image, source_format: str | None) -> EncodedImage:
    """The smallest faithful encoding: PNG keeps transparency, JPEG suits photos."""
    if _has_alpha(image):
        rgba = image.convert("RGBA")
        return EncodedImage("image/png", _encode(rgba, "PNG"), *rgba.size)
    rgb = image.convert("RGB")
    candidates = [("image/jpeg", _encode(rgb, "JPEG"))]
    if source_format in _LOSSLESS_SOURCES:
        # Screenshots and diagrams compress better (and stay sharp) as PNG; photos as JPEG. Try both.
        candidates.append(("image/png", _encode(rgb, "PNG")))
    mime, data = min(candidates, key=lambda candidate: len(candidate[1]))
    return EncodedImage(mime, data, *rgb.size)


def _still(image: Image.Image, max_side: int) -> tuple[Image.Image, bool]:
    """Downscaled and upright; the flag says whether the result must be re-encoded."""
    before = image.size
    image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    image.load()  # decodes the pixels: verify() alone does not notice a truncated JPEG
    orientation = image.getexif().get(0x0112, 1)
    if orientation != 1:
        ImageOps.exif_transpose(image, in_place=True)
    return image, image.size != before or orientation != 1 or image.mode not in _COMMON_MODES


def _open(data: bytes) -> Image.Image:
    try:
        with warnings.catch_warnings():
            # We enforce our own pixel limit below; Pillow's warning would only add noise to the log.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                probe.verify()
            image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError:
        raise MediaRefused("has too many pixels to process.") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError):
        raise MediaRefused(_DAMAGED) from None
    width, height = image.size
    limit = MAX_JPEG_PIXELS if image.format == "JPEG" else MAX_PIXELS
    if width * height > limit:
        image.close()
        raise MediaRefused(
            f"is {width}x{height} pixels, more than the {limit // 1_000_000} megapixels accepted."
        )
    return image


def _animation(image: Image.Image, max_side: int) -> PreparedImages:
    count = image.n_frames
    keep = min(count, MAX_ANIMATION_FRAMES)
    indices = sorted({round(i * (count - 1) / max(keep - 1, 1)) for i in range(keep)})
    stills = []
    for index in indices:
        image.seek(index)
        frame = image.convert("RGBA")
        frame.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
        stills.append(_reencode(frame, "PNG"))
    what = "the first frame" if len(stills) == 1 else f"{len(stills)} of its {count} frames as still images"
    return PreparedImages(stills, [f"is animated; sent {what}."])


def prepare_image(data: bytes, mime: str, max_side: int) -> PreparedImages:
    """Turn an image file into what the model receives; raises MediaRefused with the reason."""
    if mime == "image/heic" and not HEIC_SUPPORTED:
        raise MediaRefused("is a HEIC photo, which is not supported here; please send it as JPEG or PNG.")
    image = _open(data)
    try:
        if getattr(image, "n_frames", 1) > 1:
            return _animation(image, max_side)
        source_format = image.format
        image, changed = _still(image, max_side)
        keep_original = not changed and mime in API_IMAGE_MIMES
        if keep_original and len(data) <= KEEP_SMALL_BYTES:
            return PreparedImages([EncodedImage(mime, data, *image.size)])
        encoded = _reencode(image, source_format)
    except (OSError, ValueError, SyntaxError, EOFError):
        raise MediaRefused(_DAMAGED) from None
    finally:
        image.close()
    if keep_original and len(encoded.data) > len(data) * (1 - MIN_SAVING):
        return PreparedImages([EncodedImage(mime, data, encoded.width, encoded.height)])
    return PreparedImages([encoded])
