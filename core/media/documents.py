"""Text-like files and PDFs become one text part each, wrapped in a header that names the file.

Blocking code (PDF parsing is CPU work): the pipeline runs it in a worker thread.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass, field

from pypdf import PdfReader
from pypdf.errors import FileNotDecryptedError, PyPdfError

from core.media.errors import MediaRefused

# A PDF is read page by page until the text limit is reached; this bounds the work on huge documents.
MAX_PDF_PAGES = 500
# pypdf logs every oddity of a malformed file as a warning; the note to the user says what matters.
logging.getLogger("pypdf").setLevel(logging.ERROR)
# Cutting at a line break reads better than mid-line; look this far back from the limit for one.
_CUT_LOOKBACK = 1_000


@dataclass(slots=True)
class PreparedText:
    text: str  # the text part's body: header, contents, footer
    notes: list[str] = field(default_factory=list)  # reasons, each completing "<file name>: ..."


def _attribute(value: str) -> str:
    return value.replace('"', "'").replace("\n", " ").replace("\r", " ")


def _cut(text: str, max_chars: int) -> str:
    head = text[:max_chars]
    line_end = head.rfind("\n", max_chars - _CUT_LOOKBACK)
    return head[: line_end + 1] if line_end > 0 else head


def _wrap(name: str, mime: str, body: str, extra: str = "") -> str:
    return f'<file name="{_attribute(name)}" type="{mime}"{extra}>\n{body.rstrip()}\n</file>'


def prepare_text(text: str, name: str, mime: str, max_chars: int) -> PreparedText:
    """Inline a text file, cut at `max_chars` characters (with a note saying how much was kept)."""
    if not text.strip():
        raise MediaRefused("contains no text.")
    if len(text) <= max_chars:
        return PreparedText(_wrap(name, mime, text))
    kept = _cut(text, max_chars)
    note = f"is {len(text):,} characters long; only the first {len(kept):,} were included."
    body = (
        f"{kept.rstrip()}\n\n[... cut here: the file continues for {len(text) - len(kept):,} more characters]"
    )
    return PreparedText(_wrap(name, mime, body), [note])


def _open_pdf(data: bytes) -> PdfReader:
    reader = PdfReader(io.BytesIO(data))
    if reader.is_encrypted:
        try:
            reader.decrypt("")  # many "protected" PDFs only restrict printing and open with no password
            _ = len(reader.pages)
        except (FileNotDecryptedError, PyPdfError, NotImplementedError):
            raise MediaRefused("is password-protected, so its text could not be read.") from None
    return reader


def prepare_pdf(data: bytes, name: str, max_chars: int) -> PreparedText:
    """The text layer of a PDF, page by page, up to `max_chars` characters."""
    try:
        reader = _open_pdf(data)
        page_count = len(reader.pages)
        pages: list[str] = []
        total = 0
        stopped_early = False
        for number, page in enumerate(reader.pages[:MAX_PDF_PAGES], start=1):
            text = (page.extract_text() or "").strip()
            if text:
                pages.append(f"[page {number}]\n{text}")
                total += len(pages[-1])
            if total >= max_chars:
                stopped_early = number < page_count
                break
    except (PyPdfError, ValueError, KeyError, IndexError, TypeError, AttributeError, RecursionError):
        raise MediaRefused("could not be read as a PDF (the file looks damaged).") from None
    if not pages:
        raise MediaRefused("is a PDF without a text layer (a scan?), so its contents could not be read.")
    full = "\n\n".join(pages)
    extra = f' pages="{page_count}"'
    if len(full) > max_chars or stopped_early:
        kept = _cut(full, max_chars)
        body = f"{kept.rstrip()}\n\n[... cut here: the text limit was reached]"
        return PreparedText(
            _wrap(name, "application/pdf", body, extra),
            [f"is long; only the first {len(kept):,} characters of its text were included."],
        )
    notes = []
    if page_count > MAX_PDF_PAGES:
        notes.append(f"has {page_count:,} pages; only the first {MAX_PDF_PAGES} were read.")
    return PreparedText(_wrap(name, "application/pdf", full, extra), notes)
