"""Text-like files and PDFs are inlined as text, within the character limit."""

from __future__ import annotations

import json

from core.llm.types import TextPart
from core.media import MediaPipeline, estimate_tokens
from tests.core.media.helpers import media_settings
from tests.core.media.samples import pdf_with_text, pdf_without_text


def pipeline(**settings: object) -> MediaPipeline:
    return MediaPipeline(media_settings(**settings))


async def test_a_text_file_is_inlined_with_a_header_naming_it() -> None:
    prepared = await pipeline().prepare_bytes("notes.md", "# Plan\n\n- ship it ✅\n".encode())
    [part] = prepared.parts
    assert isinstance(part, TextPart)
    assert part.text == '<file name="notes.md" type="text/markdown">\n# Plan\n\n- ship it ✅\n</file>'
    assert prepared.notes == []
    assert prepared.attachments[0].kind == "text" and prepared.attachments[0].mime == "text/markdown"


async def test_csv_and_json_keep_their_types() -> None:
    csv = await pipeline().prepare_bytes("sales.csv", b"region,total\neu,10\nus,12\n")
    data = await pipeline().prepare_bytes("payload", json.dumps({"ok": True}).encode())
    assert 'type="text/csv"' in csv.parts[0].text and "eu,10" in csv.parts[0].text
    assert data.attachments[0].mime == "application/json"


async def test_a_long_text_file_is_cut_at_the_limit_with_a_note() -> None:
    lines = "".join(f"line {index:05d} of the log\n" for index in range(10_000))
    prepared = await pipeline(text_file_max_chars=1000).prepare_bytes("app.log", lines.encode())
    [part] = prepared.parts
    kept = part.text.split("\n", 1)[1]
    assert kept.startswith("line 00000") and "line 00100" not in kept
    assert kept.split("[... cut here")[0].endswith("of the log\n\n")  # cut at a line break
    [note] = prepared.notes
    assert note.startswith(f"app.log: is {len(lines):,} characters long; only the first ")
    assert estimate_tokens(part) < 1000


async def test_pdf_text_is_extracted() -> None:
    prepared = await pipeline().prepare_bytes(
        "report.pdf", pdf_with_text(["Quarterly revenue grew", "by 12%"])
    )
    [part] = prepared.parts
    assert part.text.startswith('<file name="report.pdf" type="application/pdf" pages="1">\n[page 1]\n')
    assert "Quarterly revenue grew" in part.text and "by 12%" in part.text
    assert prepared.attachments[0].kind == "pdf" and prepared.notes == []


async def test_a_long_pdf_is_cut_at_the_limit_with_a_note() -> None:
    pdf = pdf_with_text([f"sentence number {index} in a long document" for index in range(40)])
    prepared = await pipeline(text_file_max_chars=200).prepare_bytes("long.pdf", pdf)
    assert "sentence number 0 " in prepared.parts[0].text
    assert "sentence number 39" not in prepared.parts[0].text
    assert prepared.notes[0].startswith("long.pdf: is long; only the first ")


async def test_a_pdf_without_a_text_layer_gets_a_note() -> None:
    prepared = await pipeline().prepare_bytes("scan.pdf", pdf_without_text())
    assert prepared.parts == []
    assert prepared.notes == [
        "scan.pdf: is a PDF without a text layer (a scan?), so its contents could not be read."
    ]


async def test_a_damaged_pdf_gets_a_note() -> None:
    prepared = await pipeline().prepare_bytes("bad.pdf", b"%PDF-1.4\n" + bytes(range(256)) * 8)
    assert prepared.parts == [] and len(prepared.notes) == 1
    assert prepared.notes[0].startswith("bad.pdf: ")


async def test_a_blank_text_file_gets_a_note() -> None:
    prepared = await pipeline().prepare_bytes("blank.txt", b"  \n\n \t\n")
    assert prepared.parts == [] and prepared.notes == ["blank.txt: contains no text."]
