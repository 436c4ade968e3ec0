"""A tiny in-memory attachment source and ways to look inside prepared parts."""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from typing import Any

from PIL import Image

from core.config import Settings
from core.llm.types import ContentPart, ImagePart, VideoPart
from core.models import AttachmentError


@dataclass
class MemorySource:
    """An AttachmentSource over bytes; counts reads so tests can prove a file was never downloaded."""

    data: bytes
    name: str = "file"
    declared_size: int | None = None
    declared_mime: str | None = None
    source: str = "test://file"
    error: str | None = None
    reads: int = 0

    async def read(self, max_bytes: int) -> bytes:
        self.reads += 1
        if self.error is not None:
            raise AttachmentError(self.error)
        if len(self.data) > max_bytes:
            raise AttachmentError(f"{self.name} is larger than {max_bytes} bytes")
        return self.data


def media_settings(**overrides: Any) -> Settings:
    return Settings(_env_file=None, **overrides)


def payload(part: ContentPart) -> tuple[str, bytes]:
    """The MIME type and bytes inside an image or video part's data URL."""
    if isinstance(part, ImagePart):
        url = part.image_url.url
    elif isinstance(part, VideoPart):
        url = part.video_url.url
    else:
        raise AssertionError(f"not a media part: {part!r}")
    header, _, encoded = url.partition(",")
    assert header.startswith("data:") and header.endswith(";base64")
    return header.removeprefix("data:").removesuffix(";base64"), base64.b64decode(encoded)


def image_of(part: ContentPart) -> Image.Image:
    mime, data = payload(part)
    image = Image.open(io.BytesIO(data))
    assert Image.MIME[image.format] == mime
    image.load()
    return image
