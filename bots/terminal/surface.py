"""The terminal as a reply surface: the answer printed as it grows, reasoning dimmed as it arrives."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TextIO

from rich.console import Console
from rich.live import Live
from rich.markdown import Markdown

from bots.terminal.lines import Lines
from core.reply.surface import MessageRef, PlatformLimits
from core.tools.confirm import ConfirmationRequest, Decision, PendingConfirmation

YES = frozenset({"y", "yes"})

TERMINAL_LIMITS = PlatformLimits(
    name="terminal",
    max_message_chars=1_000_000,
    edits_per_window=50,
    window_s=1.0,
    thinking_in_message=False,
)
DIM, RESET = "\x1b[2m", "\x1b[0m"


class TerminalSurface:
    """Prints a reply as it grows: each edit writes only what is new since the last one.

    On a terminal the answer's Markdown is rendered as it grows (rich: headings, lists, code blocks
    with highlighting), redrawn in place; in a pipe or a file it is plain text with no escape codes.
    Statuses (thinking, file preparation) go to `status_out`: on a terminal one line rewritten in
    place, in a pipe each new kind once. `quiet` prints no reply at all (`seedbot ask --json` prints
    one result instead).
    """

    limits = TERMINAL_LIMITS

    def __init__(self, out: TextIO, *, status_out: TextIO | None = None, quiet: bool = False):
        self._out = out
        self._status_out = status_out or out
        self._styled = out.isatty()
        self._status_tty = self._status_out.isatty()
        self._quiet = quiet
        self._shown: dict[str, str] = {}
        self._status_line = False  # a status is on screen, waiting to be replaced
        self._said: set[str] = set()
        self._reasoning = False  # reasoning is being printed, the answer has not started
        self._live: Live | None = None  # the rendered answer, on a terminal

    async def post(self, text: str) -> MessageRef:
        ref = MessageRef(id=str(len(self._shown) + 1), channel="terminal")
        self._shown[ref.id] = ""
        await self.edit(ref, text)
        return ref

    async def edit(self, ref: MessageRef, text: str) -> None:
        if self._quiet:
            return
        self._clear_status()
        self._end_reasoning()
        if self._styled:
            self._shown[ref.id] = text
            self._render()
            return
        shown = self._shown.get(ref.id, "")
        if text.startswith(shown):
            self._out.write(text[len(shown) :])
        else:
            # Earlier text changed (a warning replaced the tail): show the whole message again.
            self._out.write("\n" + text)
        self._shown[ref.id] = text
        self._out.flush()

    def show_reasoning(self, text: str) -> None:
        if self._quiet or not text:
            return
        if not self._reasoning:
            self._clear_status()
            self._out.write(DIM if self._styled else "[reasoning] ")
            self._reasoning = True
        self._out.write(text)
        self._out.flush()

    def _render(self) -> None:
        markdown = Markdown("\n\n".join(self._shown.values()), code_theme="monokai")
        if self._live is None:
            self._live = Live(markdown, console=Console(file=self._out), auto_refresh=False)
            self._live.start()
        self._live.update(markdown, refresh=True)

    async def set_status(self, status: str | None) -> None:
        if self._reasoning or self._live is not None:
            return  # the reasoning or the answer itself is on screen: a status line would break it up
        if status is None:
            self._clear_status()
        elif self._status_tty:
            self._status_out.write(f"\r\x1b[2K{DIM}{status[:200]}{RESET}")
            self._status_line = True
        elif (kind := status.split("…")[0]) not in self._said:
            self._status_out.write(f"{status}\n")
            self._said.add(kind)
        self._status_out.flush()

    async def close(self) -> None:
        self._clear_status()
        self._end_reasoning()
        if self._live is not None:
            self._live.stop()
            self._live = None
        if not self._quiet:
            self._out.write("\n\n")
            self._out.flush()

    def _end_reasoning(self) -> None:
        if self._reasoning:
            self._out.write((RESET if self._styled else "") + "\n\n")
            self._reasoning = False

    def _clear_status(self) -> None:
        if self._status_line:
            self._status_out.write("\r\x1b[2K")
            self._status_out.flush()
            self._status_line = False


class ConfirmingSurface(TerminalSurface):
    """A `seedbot chat` reply, which can ask before a tool with side effects runs: the question is
    printed and the next input line answers it (y or yes approves; anything else declines).

    The chat reads no input while it answers, so the next line of its input is the answer.
    """

    def __init__(self, out: TextIO, lines: Lines, user: str) -> None:
        super().__init__(out)
        self._lines = lines
        self._user = user
        self._reader: asyncio.Task[None] | None = None

    async def ask_confirmation(self, pending: PendingConfirmation) -> bool:
        self._clear_status()
        self._end_reasoning()
        self._out.write(f"\n{pending.request.question} [y/N] ")
        self._out.flush()
        self._reader = asyncio.create_task(self._read_answer(pending))
        return True

    async def show_decision(self, request: ConfirmationRequest, decision: Decision) -> None:
        if self._reader is not None:
            # Expired or cancelled: the line the reader waits for belongs to the chat again.
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None
        # Nobody typed an answer (it expired, or the answer was stopped): the question line is still open.
        opened = "" if decision.user_id else "\n"
        self._out.write(f"{opened}{decision.summary()}\n\n")
        self._out.flush()

    async def _read_answer(self, pending: PendingConfirmation) -> None:
        line = await self._lines.read()
        pending.answer((line or "").strip().lower() in YES, self._user)
