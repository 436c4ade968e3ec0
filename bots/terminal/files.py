"""Local files as attachment sources, for `seedbot ask` and `seedbot chat`."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from core.models import AttachmentError


@dataclass(slots=True)
class LocalFile:
    """A file on this machine; the media pipeline reads it like any platform attachment."""

    path: Path

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def declared_size(self) -> int | None:
        try:
            return self.path.stat().st_size
        except OSError:
            return None

    @property
    def declared_mime(self) -> str | None:
        return None  # sniffed from the bytes, never trusted from the name

    @property
    def source(self) -> str:
        return str(self.path)

    async def read(self, max_bytes: int) -> bytes:
        def read_bounded() -> bytes:
            with self.path.open("rb") as handle:
                data = handle.read(max_bytes + 1)
            if len(data) > max_bytes:
                raise AttachmentError(f"{self.name} is larger than {max_bytes / 1_000_000:g} MB")
            return data

        try:
            return await asyncio.to_thread(read_bounded)
        except FileNotFoundError:
            raise AttachmentError(f"{self.path} does not exist") from None
        except IsADirectoryError:
            raise AttachmentError(f"{self.path} is a directory") from None
        except PermissionError:
            raise AttachmentError(f"{self.path} is not readable") from None
