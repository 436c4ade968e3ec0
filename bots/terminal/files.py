"""Local files as attachment sources, for `seedbot ask` and `seedbot chat`."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

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


class PipedInput:
    """What was piped into `seedbot ask` (`git diff | seedbot ask ...`), read before the question."""

    name = "standard input"
    declared_mime: str | None = None
    source = "stdin"

    def __init__(self, data: bytes) -> None:
        self._data = data
        self.declared_size: int | None = len(data)

    @classmethod
    async def read_from(cls, stream: BinaryIO, max_bytes: int) -> PipedInput | None:
        """The piped input (at most one byte past `max_bytes`, so the pipeline can say it is too
        large), or None when nothing was piped in: a terminal, or an empty stream."""
        if stream.isatty():
            return None
        data = await asyncio.to_thread(stream.read, max_bytes + 1)
        return cls(data) if data else None

    async def read(self, max_bytes: int) -> bytes:
        if len(self._data) > max_bytes:
            raise AttachmentError(f"{self.name} is larger than {max_bytes / 1_000_000:g} MB")
        return self._data
