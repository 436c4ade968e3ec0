"""`seedbot chat`: the terminal as a third adapter, through the same core as Slack and Discord.

Conversations persist in the same store, so `seedbot chat` picks up where it left off.
"""

from __future__ import annotations

import asyncio
import getpass
import sys
import threading
from pathlib import Path
from typing import TextIO

from bots.terminal.files import LocalFile
from core.config import EFFORTS, Settings
from core.models import AttachmentSource, ConversationKey, Turn
from core.reply.surface import MessageRef, PlatformLimits
from core.service import ChatService
from core.store import StoreError

EXIT_CONFIG = 3

TERMINAL_LIMITS = PlatformLimits(
    name="terminal",
    max_message_chars=1_000_000,
    edits_per_window=50,
    window_s=1.0,
    thinking_in_message=False,
)

HELP = """Type a message and press Enter. Commands:
  /image PATH    attach an image to your next message (repeatable)
  /video PATH    attach a video to your next message
  /effort [low|medium|high|default]   show or set your reasoning effort
  /cost [today|7d|30d|all]            what your questions have cost
  /forget        delete this conversation and your stored data
  /help          this text
  /quit          leave (Ctrl-D works too)"""


class TerminalSurface:
    """Prints a reply as it grows: each edit writes only what is new since the last one.

    On a terminal the thinking status is one line rewritten in place; in a pipe it is printed once.
    """

    limits = TERMINAL_LIMITS

    def __init__(self, out: TextIO):
        self._out = out
        self._tty = out.isatty()
        self._shown: dict[str, str] = {}
        self._status_line = False  # a status is on screen, waiting to be replaced
        self._said_status = False

    async def post(self, text: str) -> MessageRef:
        ref = MessageRef(id=str(len(self._shown) + 1), channel="terminal")
        self._shown[ref.id] = ""
        await self.edit(ref, text)
        return ref

    async def edit(self, ref: MessageRef, text: str) -> None:
        self._clear_status()
        shown = self._shown.get(ref.id, "")
        if text.startswith(shown):
            self._out.write(text[len(shown) :])
        else:
            # Earlier text changed (a warning replaced the tail): show the whole message again.
            self._out.write("\n" + text)
        self._shown[ref.id] = text
        self._out.flush()

    async def set_status(self, status: str | None) -> None:
        if status is None:
            self._clear_status()
        elif self._tty:
            self._out.write(f"\r\x1b[2K\x1b[2m{status[:200]}\x1b[0m")
            self._status_line = True
        elif not self._said_status:
            self._out.write(f"{status}\n")
            self._said_status = True
        self._out.flush()

    def _clear_status(self) -> None:
        if self._status_line:
            self._out.write("\r\x1b[2K")
            self._status_line = False

    def end_reply(self) -> None:
        self._out.write("\n\n")
        self._out.flush()


class TerminalChat:
    def __init__(self, service: ChatService, *, user: str | None = None, out: TextIO = sys.stdout):
        self.service = service
        self.user = user or getpass.getuser()
        self.key = ConversationKey("terminal", "local", self.user)
        self.out = out
        self.pending: list[AttachmentSource] = []
        self.turns = 0

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    async def handle(self, line: str) -> bool:
        """Act on one input line; False when the user wants to leave."""
        line = line.strip()
        if not line:
            return True
        if line.startswith("/"):
            return await self._command(line)
        self.turns += 1
        surface = TerminalSurface(self.out)
        turn = Turn(
            key=self.key,
            user_id=self.user,
            user_name=self.user,
            text=line,
            message_id=f"terminal-{id(self)}-{self.turns}",
            attachments=tuple(self.pending),
        )
        self.pending = []
        await self.service.answer(turn, surface)
        surface.end_reply()
        return True

    async def _command(self, line: str) -> bool:
        name, _, argument = line.partition(" ")
        argument = argument.strip()
        if name in ("/quit", "/exit"):
            return False
        if name in ("/image", "/video"):
            if not argument:
                self.say(f"usage: {name} PATH")
                return True
            # A missing or unreadable file becomes a note in the reply, like any bad attachment.
            attachment = LocalFile(Path(argument))
            self.pending.append(attachment)
            self.say(f"attached {attachment.name}; it goes with your next message")
        elif name == "/effort":
            await self._effort(argument)
        elif name == "/cost":
            period = argument or "all"
            if period not in ("today", "7d", "30d", "all"):
                self.say("usage: /cost [today|7d|30d|all]")
                return True
            self.say(
                await self.service.cost_report(
                    key=self.key,
                    user_id=self.user,
                    scope="me",
                    period=period,  # type: ignore[arg-type]
                    include_top=False,
                )
            )
        elif name == "/forget":
            removed = await self.service.forget_user("terminal", self.user)
            self.say(f"Forgotten: {removed} stored messages deleted.")
        else:
            self.say(HELP)
        return True

    async def _effort(self, argument: str) -> None:
        if argument and argument not in (*EFFORTS, "default"):
            self.say("usage: /effort [low|medium|high|default]")
            return
        if argument:
            level = None if argument == "default" else argument
            await self.service.set_effort(level, scope="user", platform="terminal", scope_id=self.user)  # type: ignore[arg-type]
        level, scope = await self.service.effort_for(
            platform="terminal", workspace="local", channel=self.user, user=self.user
        )
        self.say(f"reasoning effort: {level} (from {scope})")


async def read_lines(stream: TextIO) -> asyncio.Queue[str | None]:
    """Feed stdin lines into a queue from a thread, so the event loop never blocks on input."""
    queue: asyncio.Queue[str | None] = asyncio.Queue()
    loop = asyncio.get_running_loop()

    def pump() -> None:
        for line in stream:
            loop.call_soon_threadsafe(queue.put_nowait, line)
        loop.call_soon_threadsafe(queue.put_nowait, None)

    # A daemon thread: a blocked read of stdin must not keep the process alive after /quit.
    threading.Thread(target=pump, name="stdin", daemon=True).start()
    return queue


async def chat(settings: Settings, *, stdin: TextIO = sys.stdin, out: TextIO = sys.stdout) -> int:
    try:
        service = await ChatService.open(settings)
    except StoreError as error:
        print(f"database: {error}", file=sys.stderr)
        return EXIT_CONFIG
    session = TerminalChat(service, out=out)
    print(f"seedbot chat · {settings.model} · /help for commands, /quit to leave", file=out, flush=True)
    lines = await read_lines(stdin)
    try:
        while True:
            if stdin.isatty():
                print("you> ", end="", file=out, flush=True)
            line = await lines.get()
            if line is None or not await session.handle(line):
                break
    finally:
        await service.close()
    return 0
