"""Conservative token estimates for content parts, for fitting a conversation into the context window.

The API does not publish how Dola Seed counts image and video tokens, so these constants are deliberate
over-estimates in the style of ViT models (one token per 28x28 pixel patch; video sampled at about one
frame per second). Over-estimating drops an old turn a little early; under-estimating fails the call.

Parts made by the media pipeline carry their measurements (`SizedImagePart`, `TimedVideoPart`) so the
estimate costs nothing; any other image part has its size read from the data URL's header.
"""

from __future__ import annotations

import base64
import binascii
import io
import math

from PIL import Image, UnidentifiedImageError
from pydantic import PrivateAttr

from core.llm.types import ContentPart, ImagePart, ImageURL, TextPart, VideoPart, VideoURL

PATCH_PIXELS = 28
IMAGE_OVERHEAD_TOKENS = 8
# With detail "low" the image is seen at no more than about 768x768.
LOW_DETAIL_MAX_TOKENS = 768
# An image whose size cannot be read counts as the largest the pipeline produces by default.
UNKNOWN_IMAGE_TOKENS = math.ceil(2048 / PATCH_PIXELS) ** 2 + IMAGE_OVERHEAD_TOKENS
VIDEO_FRAMES_PER_SECOND = 1.0
VIDEO_TOKENS_PER_FRAME = 400
VIDEO_MAX_TOKENS = 80_000
# UTF-8 bytes / 3: one token per CJK character, a generous count for English (about 4 chars a token).
TEXT_BYTES_PER_TOKEN = 3
_HEADER_PROBE_BASE64 = 256 * 1024


class SizedImagePart(ImagePart):
    """An image part that knows its pixel size (not serialised; the wire format is unchanged)."""

    _width: int = PrivateAttr(default=0)
    _height: int = PrivateAttr(default=0)


class TimedVideoPart(VideoPart):
    """A video part that knows its duration (not serialised)."""

    _seconds: float = PrivateAttr(default=0.0)


def image_part(url: str, width: int, height: int, detail: str | None) -> SizedImagePart:
    part = SizedImagePart(image_url=ImageURL(url=url, detail=detail))
    part._width, part._height = width, height
    return part


def video_part(url: str, seconds: float) -> TimedVideoPart:
    part = TimedVideoPart(video_url=VideoURL(url=url))
    part._seconds = seconds
    return part


def image_tokens(width: int, height: int, detail: str | None = None) -> int:
    tokens = math.ceil(width / PATCH_PIXELS) * math.ceil(height / PATCH_PIXELS) + IMAGE_OVERHEAD_TOKENS
    return min(tokens, LOW_DETAIL_MAX_TOKENS) if detail == "low" else tokens


def video_tokens(seconds: float) -> int:
    frames = max(1, math.ceil(seconds * VIDEO_FRAMES_PER_SECOND))
    return min(frames * VIDEO_TOKENS_PER_FRAME, VIDEO_MAX_TOKENS)


def _data_url_image_size(url: str) -> tuple[int, int] | None:
    """Pixel size from the header of a base64 image data URL, decoding as little of it as needed."""
    if not url.startswith("data:") or ";base64," not in url[:100]:
        return None
    payload = url[url.index(";base64,") + len(";base64,") :]
    # A JPEG's size marker can sit behind a large EXIF block: try a prefix first, then the whole image.
    for probe in (payload[:_HEADER_PROBE_BASE64], payload):
        try:
            with Image.open(io.BytesIO(base64.b64decode(probe[: len(probe) // 4 * 4]))) as image:
                return image.size
        except (UnidentifiedImageError, OSError, ValueError, binascii.Error):
            if len(probe) == len(payload):
                return None
    return None


def estimate_text_tokens(text: str) -> int:
    """UTF-8 bytes / 3, rounded up: generous for English, one token per CJK character."""
    return math.ceil(len(text.encode("utf-8")) / TEXT_BYTES_PER_TOKEN)


def estimate_tokens(part: ContentPart) -> int:
    """A conservative token count for one content part."""
    if isinstance(part, TextPart):
        return estimate_text_tokens(part.text) + 1
    if isinstance(part, SizedImagePart):
        return image_tokens(part._width, part._height, part.image_url.detail)
    if isinstance(part, ImagePart):
        size = _data_url_image_size(part.image_url.url)
        return image_tokens(*size, part.image_url.detail) if size else UNKNOWN_IMAGE_TOKENS
    if isinstance(part, TimedVideoPart):
        return video_tokens(part._seconds)
    return VIDEO_MAX_TOKENS
