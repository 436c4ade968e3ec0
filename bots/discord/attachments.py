"""Discord attachments as the core's `AttachmentSource`: checked by declared size and type first,
downloaded only when they can be used, never more than the limit.
"""

from __future__ import annotations

import aiohttp
import discord

from core.models import AttachmentError

CHUNK_BYTES = 64 * 1024
DOWNLOAD_TIMEOUT = aiohttp.ClientTimeout(total=120, sock_connect=10, sock_read=30)
# Declared types worth downloading; the media pipeline then judges the bytes. Anything else (audio,
# archives, executables, office files) is refused without spending the bandwidth.
_USABLE_PREFIXES = ("image/", "video/", "text/")
_USABLE_TYPES = frozenset(
    {
        "application/pdf",
        "application/json",
        "application/xml",
        "application/javascript",
        "application/x-yaml",
        "application/yaml",
        "application/toml",
        "application/sql",
        "application/x-sh",
        "application/octet-stream",  # no real claim: let the bytes decide
    }
)


def _megabytes(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"


def usable_type(content_type: str | None) -> bool:
    if not content_type:
        return True
    mime = content_type.split(";", 1)[0].strip().lower()
    return mime.startswith(_USABLE_PREFIXES) or mime in _USABLE_TYPES


class DiscordAttachment:
    """One file on Discord's CDN. The URL is signed, so no token is sent with the download."""

    def __init__(self, attachment: discord.Attachment, session: aiohttp.ClientSession):
        self.name = attachment.filename
        self.declared_size: int | None = attachment.size
        self.declared_mime: str | None = attachment.content_type
        self.source = attachment.url
        self._session = session

    async def read(self, max_bytes: int) -> bytes:
        if self.declared_size is not None and self.declared_size > max_bytes:
            raise AttachmentError(
                f"{self.name} is {_megabytes(self.declared_size)}, over the {_megabytes(max_bytes)} limit"
            )
        if not usable_type(self.declared_mime):
            raise AttachmentError(f"{self.name}: {self.declared_mime} files are not supported")
        try:
            async with self._session.get(self.source, timeout=DOWNLOAD_TIMEOUT) as response:
                if response.status != 200:
                    raise AttachmentError(f"{self.name} could not be downloaded (HTTP {response.status})")
                data = bytearray()
                async for chunk in response.content.iter_chunked(CHUNK_BYTES):
                    data += chunk
                    if len(data) > max_bytes:
                        raise AttachmentError(f"{self.name} is over the {_megabytes(max_bytes)} limit")
        except (aiohttp.ClientError, TimeoutError) as error:
            raise AttachmentError(f"{self.name} could not be downloaded ({type(error).__name__})") from None
        return bytes(data)


def attachment_sources(
    attachments: list[discord.Attachment], session: aiohttp.ClientSession
) -> list[DiscordAttachment]:
    return [DiscordAttachment(attachment, session) for attachment in attachments]
