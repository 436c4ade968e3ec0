"""Sizes and lengths as the notes in a reply show them."""

from __future__ import annotations

MB = 1_000_000


def size_text(size: float) -> str:
    """`12.3 MB`, or `850 KB` below a tenth of a megabyte."""
    return f"{size / MB:.1f} MB" if size >= 100_000 else f"{size / 1000:.0f} KB"


def length_text(seconds: float) -> str:
    """`3:05` for minutes, `42 s` below one."""
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}:{rest:02d}" if minutes else f"{rest} s"
