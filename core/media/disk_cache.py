"""Prepared media on disk, keyed by the platform's immutable id of a file, so a file is fetched once.

A Slack file id, or a Discord attachment id with its size, never names other bytes, so the converted
result (the content parts the model receives, and what the store records about the file) can be kept
under that id across turns and restarts. The folder sits next to the database; its size is bounded,
and the least recently used entries go first. Every file operation runs in a worker thread.

An entry that cannot be read back (a crash mid-write, a disk problem) is a miss, never an error:
the file is simply fetched again.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from pydantic import TypeAdapter, ValidationError

from core.llm.types import ContentPart
from core.media.cache import CachedMedia

log = logging.getLogger(__name__)

_PARTS = TypeAdapter(list[ContentPart])
SUFFIX = ".json"


@dataclass(frozen=True, slots=True)
class KeptFile:
    """One prepared file as it was first seen: its conversion, and its size and sha256."""

    media: CachedMedia
    size: int
    sha256: str


class DiskCache:
    def __init__(self, folder: Path, max_bytes: int) -> None:
        self.folder = folder
        self.max_bytes = max_bytes
        self._lock = threading.Lock()  # eviction and accounting, across worker threads
        self._sizes: dict[Path, int] | None = None  # known entries, scanned on first use

    async def get(self, key: str) -> KeptFile | None:
        return await asyncio.to_thread(self._get, key)

    async def put(self, key: str, kept: KeptFile) -> None:
        await asyncio.to_thread(self._put, key, kept)

    def _path(self, key: str) -> Path:
        return self.folder / (hashlib.sha256(key.encode()).hexdigest() + SUFFIX)

    def _get(self, key: str) -> KeptFile | None:
        path = self._path(key)
        try:
            entry = json.loads(path.read_bytes())
            media = CachedMedia(
                kind=entry["kind"],
                mime=entry["mime"],
                parts=tuple(_PARTS.validate_python(entry["parts"])),
                reasons=tuple(entry["reasons"]),
            )
            kept = KeptFile(media, int(entry["size"]), str(entry["sha256"]))
            os.utime(path)  # recently used: evicted last
            return kept
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, ValidationError) as error:
            log.warning("media cache entry %s unreadable (%s); fetching the file again", path.name, error)
            return None

    def _put(self, key: str, kept: KeptFile) -> None:
        media = kept.media
        body = json.dumps(
            {
                "kind": media.kind,
                "mime": media.mime,
                "parts": _PARTS.dump_python(list(media.parts), mode="json", exclude_none=True),
                "reasons": list(media.reasons),
                "size": kept.size,
                "sha256": kept.sha256,
            }
        ).encode()
        if len(body) > self.max_bytes:
            return  # one entry larger than the whole budget would only evict everything else
        path = self._path(key)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            temporary = path.with_suffix(f".{threading.get_ident()}.tmp")
            temporary.write_bytes(body)
            temporary.replace(path)  # atomic: a reader sees the old entry or the new one, never half
        except OSError as error:
            log.warning("media cache not written (%s); it is only a cache", error)
            return
        with self._lock:
            sizes = self._known()
            sizes[path] = len(body)
            self._evict(sizes)

    def _known(self) -> dict[Path, int]:
        if self._sizes is None:
            self._sizes = {}
            for entry in self.folder.glob(f"*{SUFFIX}"):
                try:
                    self._sizes[entry] = entry.stat().st_size
                except OSError:
                    continue
        return self._sizes

    def _evict(self, sizes: dict[Path, int]) -> None:
        total = sum(sizes.values())
        if total <= self.max_bytes:
            return

        def last_used(path: Path) -> float:
            try:
                return path.stat().st_mtime
            except OSError:
                return 0.0

        for path in sorted(sizes, key=last_used):
            if total <= self.max_bytes:
                break
            total -= sizes.pop(path)
            try:
                path.unlink()
            except OSError:
                continue

    @property
    def total_bytes(self) -> int:
        with self._lock:
            return sum(self._known().values())
