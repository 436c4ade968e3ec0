"""Discord attachments as the core's `AttachmentSource`: a signed CDN URL, so no token is sent.

The media pipeline judges the declared size and type before anything is downloaded.
"""

from __future__ import annotations

import discord

from core.media.download import Downloads


class DiscordAttachment:
    def __init__(self, attachment: discord.Attachment, downloads: Downloads):
        self.name = attachment.filename
        self.declared_size: int | None = attachment.size
        self.declared_mime: str | None = attachment.content_type
        self.source = attachment.url
        # Attachment ids are never reused; the size guards against a re-upload under a known id.
        self.cache_key = f"discord:{attachment.id}:{attachment.size}"
        self._downloads = downloads

    async def read(self, max_bytes: int) -> bytes:
        return (await self._downloads.fetch(self.source, self.name, max_bytes)).data


def attachment_sources(
    attachments: list[discord.Attachment], downloads: Downloads
) -> list[DiscordAttachment]:
    return [DiscordAttachment(attachment, downloads) for attachment in attachments]
