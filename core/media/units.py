"""Sizes and lengths as the notes in a reply show them."""

from __future__ import annotations

MB = 1_000_000


def size_text(size: float) -> str:
    """`12.3 MB` (`25 MB` when whole), or `850 KB` below a tenth of a megabyte."""
    if size < 100_000:
        return f"{size / 1000:.0f} KB"
    return f"{size / MB:.1f}".removesuffix(".0") + " MB"


def length_text(seconds: float) -> str:
    """`3:05` for minutes, `42 s` below one."""
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}:{rest:02d}" if minutes else f"{rest} s"
