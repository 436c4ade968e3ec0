"""Where `seedbot chat` reads its input: a line editor with history on a terminal, stdin otherwise.

On a terminal, prompt_toolkit gives line editing and a history kept across sessions (arrow keys,
Ctrl-R); from a pipe or a file, lines are read in a thread so the event loop never blocks on input.
Either way, the end of input is None, and stays None.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Protocol, TextIO

from prompt_toolkit import PromptSession
from prompt_toolkit.history import FileHistory

HISTORY_FILE = Path.home() / ".seedbot_chat_history"


class Lines(Protocol):
    async def read(self, prompt: str = "") -> str | None:
        """The next line (without its end), or None at the end of input."""
        ...


class PipedLines:
    def __init__(self, stream: TextIO) -> None:
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._ended = False
        loop = asyncio.get_running_loop()

        def pump() -> None:
            for line in stream:
                loop.call_soon_threadsafe(self._queue.put_nowait, line.rstrip("\n"))
            loop.call_soon_threadsafe(self._queue.put_nowait, None)

        # A daemon thread: a blocked read of stdin must not keep the process alive after /quit.
        threading.Thread(target=pump, name="stdin", daemon=True).start()

    async def read(self, prompt: str = "") -> str | None:
        if self._ended:
            return None
        line = await self._queue.get()
        self._ended = line is None
        return line


class EditedLines:
    def __init__(self, history: Path = HISTORY_FILE) -> None:
        self._session: PromptSession[str] = PromptSession(history=FileHistory(str(history)))
        self._ended = False

    async def read(self, prompt: str = "") -> str | None:
        if self._ended:
            return None
        try:
            return await self._session.prompt_async(prompt)
        except (EOFError, KeyboardInterrupt):  # Ctrl-D, or Ctrl-C at the prompt: leave
            self._ended = True
            return None


def input_lines(stdin: TextIO) -> Lines:
    return EditedLines() if stdin.isatty() else PipedLines(stdin)
