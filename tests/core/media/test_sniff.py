"""Files are identified by their bytes; names only label text."""

from __future__ import annotations

import json

from core.media import sniff, sniff_mime
from tests.core.media.samples import animated_gif, encode, pdf_with_text, photo


def test_images_are_recognised_by_their_bytes_whatever_their_name() -> None:
    picture = photo(32, 24)
    assert sniff_mime(encode(picture, "JPEG"), "picture.png") == "image/jpeg"
    assert sniff_mime(encode(picture, "PNG"), "picture.jpg") == "image/png"
    assert sniff_mime(encode(picture, "WEBP"), "picture") == "image/webp"
    assert sniff_mime(animated_gif(2), "x.txt") == "image/gif"
    assert sniff(encode(picture, "BMP")).kind == "image"


def test_iso_media_brands_separate_video_heic_avif_and_audio() -> None:
    def box(major: bytes, *compatible: bytes) -> bytes:
        body = b"ftyp" + major + b"\x00\x00\x00\x00" + b"".join(compatible)
        return len(body).to_bytes(4, "big") + body + b"\x00" * 32

    assert sniff_mime(box(b"isom", b"isom", b"avc1")) == "video/mp4"
    assert sniff_mime(box(b"qt  ")) == "video/quicktime"
    assert sniff_mime(box(b"heic", b"mif1", b"heic")) == "image/heic"
    assert sniff_mime(box(b"mif1", b"mif1", b"avif")) == "image/avif"
    assert sniff(box(b"M4A ")).kind == "unsupported"


def test_text_is_recognised_by_decoding_and_labelled_by_extension() -> None:
    assert sniff(b"a,b\n1,2\n", "table.csv").mime == "text/csv"
    assert sniff("# Überschrift\n".encode(), "notes.md").mime == "text/markdown"
    assert sniff(json.dumps({"a": [1, 2]}).encode(), "data").mime == "application/json"
    assert sniff(b"def f():\n    return 1\n", "tool.py").mime == "text/x-python"
    assert sniff(b"plain words", "README").mime == "text/plain"
    # Legacy Windows encodings are accepted when the name says the file is text.
    assert sniff("caf\u00e9;1\n".encode("cp1252"), "export.csv").kind == "text"
    assert sniff("caf\u00e9;1\n".encode("cp1252"), "export.bin").kind == "unsupported"


def test_binary_and_known_unsupported_types_are_not_text() -> None:
    assert sniff(bytes(range(256)) * 4, "data.txt").kind == "unsupported"
    assert sniff(b"PK\x03\x04" + b"\x00" * 40, "report.docx").label == "a ZIP archive or Office document"
    assert sniff(b"ID3\x04" + b"\x00" * 40, "song.mp3").label == "an audio file"
    assert sniff(pdf_with_text(["x"]), "doc.txt").kind == "pdf"


def test_text_that_happens_to_start_like_a_short_signature_is_still_text() -> None:
    for text in (
        b"BMW sales per region, 2024 edition\n",
        b"MZ: notes from the meeting\n",
        b"ID3 tags explained\n",
    ):
        assert sniff(text, "notes.txt").kind == "text"
