"""Shared files in, request content parts out: the one entry point adapters and the service use.

Every file is judged by its bytes, converted in a worker thread, and either becomes content parts or a
short note for the reply ("clip.mov: is 3:10 long; only the first 3:00 were sent."). Bad input never
raises: the rest of the message is still answered.

Files of one message are handled one after another so that at most one file's bytes (plus its converted
copy and base64 text) are in memory per message; a pipeline-wide semaphore bounds the CPU work of
concurrent messages.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from core.config import Settings
from core.llm.types import ContentPart, TextPart
from core.media.cache import CachedMedia, MediaCache
from core.media.disk_cache import DiskCache, KeptFile
from core.media.documents import prepare_pdf, prepare_text
from core.media.errors import MediaRefused
from core.media.images import prepare_image
from core.media.sniff import decode_text, looks_like_html, magic_type, text_mime
from core.media.tokens import estimate_tokens, image_part, video_part
from core.media.units import MB, size_text
from core.media.video import prepare_video
from core.models import AttachmentError, AttachmentMeta, AttachmentSource

log = logging.getLogger(__name__)

DEFAULT_CACHE_BYTES = 256 * 1024 * 1024
ImageDetail = Literal["low", "high", "auto"]
# Declared types refused before downloading: nothing in them can be sent to the model.
_REFUSED_DECLARED = {
    "audio/": "an audio file",
    "application/zip": "a ZIP archive",
    "application/x-zip-compressed": "a ZIP archive",
    "application/x-7z-compressed": "a compressed archive",
    "application/vnd.rar": "a compressed archive",
    "application/x-msdownload": "a program",
}
# A file declared as media that arrives as HTML is a login or error page, not something to inline as text.
_MEDIA_DECLARED = ("image/", "video/", "application/pdf")
_WEB_PAGE_INSTEAD = (
    "could not be downloaded: the server sent a web page instead of the file "
    "(the bot may lack permission to read files)."
)


@dataclass(frozen=True, slots=True)
class MediaProgress:
    """Progress of slow work on one file (video re-encoding), for "please wait" feedback."""

    name: str
    fraction: float  # 0.0 .. 1.0


ProgressHandler = Callable[[MediaProgress], None]


@dataclass(slots=True)
class PreparedMedia:
    """What a message's files add to the request, what the store keeps, and what the reply must say."""

    parts: list[ContentPart] = field(default_factory=list)
    attachments: list[AttachmentMeta] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def tokens(self) -> int:
        """Conservative token estimate of `parts`."""
        return sum(estimate_tokens(part) for part in self.parts)

    def extend(self, other: PreparedMedia) -> None:
        self.parts.extend(other.parts)
        self.attachments.extend(other.attachments)
        self.notes.extend(other.notes)


def data_url(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _note(name: str, reason: str) -> str:
    return f"{name}: {reason}"


class MediaPipeline:
    def __init__(
        self,
        settings: Settings,
        *,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        image_detail: ImageDetail = "high",
        max_parallel: int | None = None,
    ) -> None:
        self.settings = settings
        self.max_file_bytes = int(settings.max_file_mb * MB)
        # Images are already downscaled to the pixel budget, so "high" detail costs what we chose it to.
        self.image_detail = image_detail
        self.cache = MediaCache(cache_bytes)
        self.disk = (
            DiskCache(settings.media_cache_folder, int(settings.media_cache_mb * MB))
            if settings.media_cache_mb > 0
            else None
        )
        self._cpu = asyncio.Semaphore(max_parallel or os.cpu_count() or 2)

    # --- public API ----------------------------------------------------------------------------------

    async def prepare(
        self, sources: Sequence[AttachmentSource], *, on_progress: ProgressHandler | None = None
    ) -> PreparedMedia:
        """Download, check and convert a message's files; never raises for bad or unreachable files."""
        prepared = PreparedMedia()
        accepted, skipped = sources[: self.settings.max_files], sources[self.settings.max_files :]
        first_names: dict[str, str] = {}  # sha256 -> name of the first copy
        for source in accepted:
            one = await self._prepare_source(source, on_progress)
            repeated = [meta for meta in one.attachments if meta.sha256 in first_names]
            if repeated:
                first = first_names[repeated[0].sha256]
                prepared.notes.append(
                    _note(repeated[0].name, f"is the same file as {first}; it was sent once.")
                )
                continue
            first_names.update((meta.sha256, meta.name) for meta in one.attachments)
            prepared.extend(one)
        if skipped:
            names = ", ".join(source.name or "unnamed file" for source in skipped)
            prepared.notes.append(
                f"Only {self.settings.max_files} files per message are read; left out: {names}."
            )
        return prepared

    async def prepare_bytes(
        self, name: str, data: bytes, source: str = "", *, on_progress: ProgressHandler | None = None
    ) -> PreparedMedia:
        """Prepare a file already in memory (a local file for `seedbot ask` / `seedbot chat`)."""
        if len(data) > self.max_file_bytes:
            return PreparedMedia(notes=[_note(name, self._too_large(len(data)))])
        return await self._prepare_data(name, data, source, on_progress)

    def parts_for(self, meta: AttachmentMeta) -> list[ContentPart] | None:
        """The parts prepared earlier for this file, while they are still cached (no download needed)."""
        entry = self.cache.get(meta.sha256)
        return list(entry.parts) if entry is not None else None

    # --- one file ------------------------------------------------------------------------------------

    def _too_large(self, size: int) -> str:
        return f"is {size_text(size)}, over the {size_text(self.max_file_bytes)} limit per file."

    def _refusal_before_download(self, source: AttachmentSource) -> str | None:
        if source.declared_size is not None and source.declared_size > self.max_file_bytes:
            return self._too_large(source.declared_size)
        if source.declared_size == 0:
            return "is empty."
        declared = (source.declared_mime or "").lower()
        for prefix, label in _REFUSED_DECLARED.items():
            if declared.startswith(prefix):
                return f"is {label}, which cannot be sent to the model."
        return None

    async def _prepare_source(
        self, source: AttachmentSource, on_progress: ProgressHandler | None
    ) -> PreparedMedia:
        name = source.name or "unnamed file"
        if reason := self._refusal_before_download(source):
            return PreparedMedia(notes=[_note(name, reason)])
        key: str | None = getattr(source, "cache_key", None)
        if key is not None and self.disk is not None and (kept := await self.disk.get(key)) is not None:
            self.cache.put(kept.sha256, kept.media)  # so the context can re-send it later
            return self._prepared(name, kept.media, kept.size, kept.sha256, source.source)
        try:
            data = await source.read(self.max_file_bytes)
        except AttachmentError as error:
            message = str(error) or "could not be downloaded."
            return PreparedMedia(notes=[message if name in message else _note(name, message)])
        except Exception:
            # An adapter bug must not cost the user the whole answer; the log has the details.
            log.warning("reading attachment %r failed", name, exc_info=True)
            return PreparedMedia(notes=[_note(name, "could not be downloaded.")])
        if len(data) > self.max_file_bytes:
            return PreparedMedia(notes=[_note(name, self._too_large(len(data)))])
        if (source.declared_mime or "").startswith(_MEDIA_DECLARED) and looks_like_html(data):
            return PreparedMedia(notes=[_note(name, _WEB_PAGE_INSTEAD)])
        prepared = await self._prepare_data(name, data, source.source, on_progress)
        if key is not None and self.disk is not None and prepared.attachments:
            meta = prepared.attachments[0]
            if (entry := self.cache.get(meta.sha256)) is not None:
                await self.disk.put(key, KeptFile(entry, meta.size, meta.sha256))
        return prepared

    async def _prepare_data(
        self, name: str, data: bytes, source: str, on_progress: ProgressHandler | None
    ) -> PreparedMedia:
        if not data:
            return PreparedMedia(notes=[_note(name, "is empty.")])
        sha256 = await asyncio.to_thread(lambda: hashlib.sha256(data).hexdigest())
        entry = self.cache.get(sha256)
        if entry is None:
            try:
                async with self._cpu:
                    entry = await asyncio.to_thread(
                        self._convert, name, data, self._progress(name, on_progress)
                    )
            except MediaRefused as refusal:
                return PreparedMedia(notes=[_note(name, str(refusal))])
            except Exception:
                log.warning("converting attachment %r failed", name, exc_info=True)
                return PreparedMedia(notes=[_note(name, "could not be processed (the file looks damaged).")])
            self.cache.put(sha256, entry)
        return self._prepared(name, entry, len(data), sha256, source)

    @staticmethod
    def _prepared(name: str, entry: CachedMedia, size: int, sha256: str, source: str) -> PreparedMedia:
        meta = AttachmentMeta(entry.kind, entry.mime, size, sha256, name, source)
        return PreparedMedia(list(entry.parts), [meta], [_note(name, reason) for reason in entry.reasons])

    @staticmethod
    def _progress(name: str, handler: ProgressHandler | None) -> Callable[[float], None] | None:
        """A progress callback the worker thread may call; `handler` runs on the event loop."""
        if handler is None:
            return None
        loop = asyncio.get_running_loop()
        return lambda fraction: loop.call_soon_threadsafe(handler, MediaProgress(name, fraction))

    def _convert(self, name: str, data: bytes, progress: Callable[[float], None] | None) -> CachedMedia:
        """Blocking: runs in a worker thread."""
        settings = self.settings
        sniffed = magic_type(data)
        if sniffed is None:
            text = decode_text(data, name)
            if text is None:
                raise MediaRefused("is of a type that cannot be read (not an image, video, PDF or text).")
            mime = text_mime(text, name)
            prepared = prepare_text(text, name, mime, settings.text_file_max_chars)
            return CachedMedia("text", mime, (TextPart(text=prepared.text),), tuple(prepared.notes))
        if sniffed.kind == "image":
            images = prepare_image(data, sniffed.mime, settings.image_max_side)
            parts = tuple(
                image_part(data_url(image.mime, image.data), image.width, image.height, self.image_detail)
                for image in images.images
            )
            return CachedMedia("image", sniffed.mime, parts, tuple(images.notes))
        if sniffed.kind == "video":
            video = prepare_video(
                data,
                sniffed.mime,
                max_seconds=settings.video_max_seconds,
                max_bytes=int(settings.video_max_mb * MB),
                progress=progress,
            )
            part = video_part(data_url(video.mime, video.data), video.seconds)
            return CachedMedia("video", sniffed.mime, (part,), tuple(video.notes))
        if sniffed.kind == "pdf":
            pdf = prepare_pdf(data, name, settings.text_file_max_chars)
            return CachedMedia("pdf", sniffed.mime, (TextPart(text=pdf.text),), tuple(pdf.notes))
        raise MediaRefused(f"is {sniffed.label}, which cannot be sent to the model.")
