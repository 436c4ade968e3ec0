"""What a file is, judged by its bytes (magic numbers); the name only helps to label text files.

Platforms and users mislabel files all the time (a `.png` that is a JPEG, a `.mov` from a phone that is
really MP4), so the declared type and the extension never decide how a file is handled.
"""

from __future__ import annotations

import codecs
import json
import mimetypes
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Literal

SniffedKind = Literal["image", "video", "text", "pdf", "unsupported"]

# Types the model API accepts as they are; other image and video formats are converted first.
API_IMAGE_MIMES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
API_VIDEO_MIMES = frozenset({"video/mp4", "video/quicktime", "video/webm"})

# ISO base media file brands (the `ftyp` box), which MP4, MOV, HEIC and AVIF all share.
_HEIF_BRANDS = frozenset(
    {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1"}
)
_AVIF_BRANDS = frozenset({b"avif", b"avis"})
_AUDIO_BRANDS = frozenset({b"M4A ", b"M4B ", b"M4P "})
_3GP_PREFIXES = (b"3gp", b"3g2")

# Extensions that say "this is text" when the bytes decode as text; also labels the MIME type.
_TEXT_MIMES = {
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".csv": "text/csv",
    ".tsv": "text/tab-separated-values",
    ".json": "application/json",
    ".jsonl": "application/jsonl",
    ".yaml": "application/yaml",
    ".yml": "application/yaml",
    ".toml": "application/toml",
    ".xml": "application/xml",
    ".html": "text/html",
    ".htm": "text/html",
    ".py": "text/x-python",
    ".js": "text/javascript",
    ".ts": "text/x-typescript",
    ".sql": "application/sql",
    ".sh": "text/x-shellscript",
}
_TEXT_EXTENSIONS = frozenset(_TEXT_MIMES) | frozenset(
    {
        ".txt",
        ".log",
        ".ini",
        ".cfg",
        ".conf",
        ".env",
        ".rst",
        ".tex",
        ".c",
        ".h",
        ".cc",
        ".cpp",
        ".hpp",
        ".java",
        ".kt",
        ".go",
        ".rs",
        ".rb",
        ".php",
        ".swift",
        ".cs",
        ".css",
        ".scss",
        ".tsx",
        ".jsx",
        ".vue",
        ".lua",
        ".pl",
        ".r",
        ".scala",
        ".dart",
        ".zig",
        ".proto",
        ".graphql",
        ".diff",
        ".patch",
        ".srt",
        ".vtt",
    }
)
# Control characters other than tab, newline, form feed and carriage return mark binary data.
_BINARY_CONTROLS = frozenset(range(32)) - {9, 10, 12, 13}
_TEXT_PROBE_CHARS = 65_536
# Short signatures ("BM", "MZ", "ID3") also begin ordinary text, so these check a second field too.
_BMP_HEADER_SIZES = frozenset({12, 40, 52, 56, 64, 108, 124})


@dataclass(frozen=True, slots=True)
class Sniffed:
    kind: SniffedKind
    mime: str
    # Only for kind "unsupported": what the file is, in words a chat user understands.
    label: str = ""


def _ftyp(data: bytes) -> Sniffed | None:
    if data[4:8] != b"ftyp":
        return None
    major = data[8:12]
    compatible = {data[i : i + 4] for i in range(16, min(len(data), 64), 4)}
    # AVIF files often declare the generic HEIF brand `mif1` first and `avif` among the compatible ones.
    if major in _AVIF_BRANDS or (major in (b"mif1", b"msf1") and compatible & _AVIF_BRANDS):
        return Sniffed("image", "image/avif")
    if major in _HEIF_BRANDS:
        return Sniffed("image", "image/heic")
    if major in _AUDIO_BRANDS:
        return Sniffed("unsupported", "audio/mp4", "an audio file")
    if major == b"qt  ":
        return Sniffed("video", "video/quicktime")
    if major.startswith(_3GP_PREFIXES):
        return Sniffed("video", "video/3gpp")
    return Sniffed("video", "video/mp4")


def magic_type(data: bytes) -> Sniffed | None:
    """The type of a binary file from its first bytes; None when no known signature matches."""
    head = data[:64]
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return Sniffed("image", "image/png")
    if head.startswith(b"\xff\xd8\xff"):
        return Sniffed("image", "image/jpeg")
    if head.startswith((b"GIF87a", b"GIF89a")):
        return Sniffed("image", "image/gif")
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return Sniffed("image", "image/webp")
    if head.startswith(b"BM") and int.from_bytes(head[14:18], "little") in _BMP_HEADER_SIZES:
        return Sniffed("image", "image/bmp")
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return Sniffed("image", "image/tiff")
    if head.startswith(b"%PDF-"):
        return Sniffed("pdf", "application/pdf")
    if sniffed := _ftyp(head):
        return sniffed
    if head[4:8] in (b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"):
        return Sniffed("video", "video/quicktime")  # old QuickTime files have no ftyp box
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return Sniffed("video", "video/webm" if b"webm" in head else "video/x-matroska")
    if head.startswith(b"RIFF") and head[8:12] == b"AVI ":
        return Sniffed("video", "video/x-msvideo")
    if (head.startswith(b"RIFF") and head[8:12] == b"WAVE") or head.startswith((b"fLaC", b"OggS")):
        return Sniffed("unsupported", "audio/*", "an audio file")
    if (head.startswith(b"ID3") and head[3:4] in (b"\x02", b"\x03", b"\x04")) or head[:2] in (
        b"\xff\xfb",
        b"\xff\xf3",
    ):
        return Sniffed("unsupported", "audio/mpeg", "an audio file")
    if head.startswith(b"PK\x03\x04"):
        return Sniffed("unsupported", "application/zip", "a ZIP archive or Office document")
    if head.startswith((b"\x1f\x8b", b"7z\xbc\xaf\x27\x1c", b"Rar!\x1a\x07", b"\xfd7zXZ\x00")) or (
        head.startswith(b"BZh") and head[4:10] == b"1AY&SY"
    ):
        return Sniffed("unsupported", "application/octet-stream", "a compressed archive")
    if head.startswith((b"\x7fELF", b"\xcf\xfa\xed\xfe", b"\xca\xfe\xba\xbe")) or (
        head.startswith(b"MZ") and b"\x00" in head
    ):
        return Sniffed("unsupported", "application/octet-stream", "a program")
    return None


def decode_text(data: bytes, name: str = "") -> str | None:
    """The file as text if it is text (UTF-8, or UTF-16 with a BOM); None for binary data.

    A known text extension also admits legacy single-byte encodings (a CSV exported by Excel on Windows).
    """
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            return None
    if b"\x00" in data[:_TEXT_PROBE_CHARS]:
        return None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        if PurePosixPath(name).suffix.lower() not in _TEXT_EXTENSIONS:
            return None
        text = data.decode("cp1252", errors="replace")
    probe = text[:_TEXT_PROBE_CHARS]
    controls = sum(1 for char in probe if ord(char) in _BINARY_CONTROLS)
    return None if controls > len(probe) // 100 else text


def text_mime(text: str, name: str) -> str:
    suffix = PurePosixPath(name).suffix.lower()
    if suffix in _TEXT_MIMES:
        return _TEXT_MIMES[suffix]
    stripped = text.lstrip()
    if stripped[:1] in ("{", "[") and len(text) <= 1_000_000:
        try:
            json.loads(text)
        except ValueError:
            pass
        else:
            return "application/json"
    guessed, _ = mimetypes.guess_type(f"file{suffix}") if suffix else (None, None)
    return guessed if guessed and guessed.startswith("text/") else "text/plain"


def looks_like_html(data: bytes) -> bool:
    """A web page, e.g. a login page a platform serves instead of a file the bot may not read."""
    head = data[:512].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html"))


def sniff(data: bytes, name: str = "") -> Sniffed:
    """Identify a file. Text is recognised by decoding; `name` only picks the label (CSV, JSON, ...)."""
    if sniffed := magic_type(data):
        return sniffed
    text = decode_text(data, name)
    if text is None:
        return Sniffed("unsupported", "application/octet-stream", "a file of an unknown type")
    return Sniffed("text", text_mime(text, name))


def sniff_mime(data: bytes, name: str = "") -> str:
    """The MIME type of `data` from its bytes (`application/octet-stream` when unknown)."""
    return sniff(data, name).mime
