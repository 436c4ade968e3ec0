"""A progress bar for long terminal commands, drawn on stderr only when stderr is a terminal."""

from __future__ import annotations

import time
from typing import TextIO

WIDTH = 30
REDRAW_EVERY_S = 0.1


class ProgressBar:
    """`[#######......]  42%  420,000 / 1,000,000 rows` redrawn in place, at most ten times a second.
    On anything but a terminal (a pipe, a log file, CI) it draws nothing: carriage returns would
    only litter the output."""

    def __init__(self, stream: TextIO, total: int, unit: str = "rows") -> None:
        self._stream = stream
        self._total = total
        self._unit = unit
        self._enabled = stream.isatty()
        self._drawn_at = 0.0

    def update(self, done: int) -> None:
        now = time.monotonic()
        if not self._enabled or now - self._drawn_at < REDRAW_EVERY_S:
            return
        self._drawn_at = now
        self._draw(done)

    def close(self, done: int) -> None:
        """Draw the final state and end the line, so what follows starts on a fresh one."""
        if self._enabled:
            self._draw(done)
            self._stream.write("\n")
            self._stream.flush()

    def _draw(self, done: int) -> None:
        fraction = min(done / self._total, 1.0) if self._total else 1.0
        filled = round(fraction * WIDTH)
        bar = "#" * filled + "." * (WIDTH - filled)
        self._stream.write(f"\r[{bar}] {fraction:4.0%}  {done:,} / {self._total:,} {self._unit}")
        self._stream.flush()
