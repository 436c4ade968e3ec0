"""`seedbot chat`: the terminal as a third adapter, through the same core as Slack and Discord.

Conversations persist in the same store, so `seedbot chat` picks up where it left off. Typed
commands (`/effort high`, `/cost 7d`, `/tools`, `/forget`, `/help`) mean what they mean everywhere
(`core.commands`); attaching files and leaving are the terminal's own. A tool with side effects asks
`Run NAME with {args}? [y/N]` and the next line typed answers it.
"""

from __future__ import annotations

import getpass
import sys
from pathlib import Path
from typing import TextIO

from bots.opening import open_service
from bots.terminal.files import LocalFile
from bots.terminal.lines import Lines, input_lines
from bots.terminal.surface import ConfirmingSurface
from core.commands import (
    BadArguments,
    Caller,
    CommandSpec,
    Dialect,
    Help,
    ReplyCommand,
    Summarize,
    parse_command,
    run_command,
    usage_line,
)
from core.config import Settings
from core.models import AttachmentSource, ConversationKey, Turn
from core.service import ChatService

EXIT_CONFIG = 3
PLATFORM = "terminal"
OFFERED = frozenset({"effort", "cost", "tools", "forget", "help"})
EXTRAS = (
    CommandSpec("image", "PATH", "attach an image to your next message (repeatable)"),
    CommandSpec("file", "PATH", "attach any document (PDF, text, code) to your next message"),
    CommandSpec("video", "PATH", "attach a video to your next message"),
    CommandSpec("quit", "", "leave (Ctrl-D works too)"),
)


def _syntax(spec: CommandSpec) -> str | None:
    if spec.name == "ask":
        return "a message and Enter"
    if spec.name not in OFFERED and spec not in EXTRAS:
        return None
    return f"/{spec.name} {spec.args}".rstrip()


TERMINAL = Dialect(syntax=_syntax, bold=lambda text: text, extras=EXTRAS)


class TerminalChat:
    def __init__(
        self,
        service: ChatService,
        lines: Lines,
        *,
        user: str | None = None,
        out: TextIO = sys.stdout,
    ):
        self.service = service
        self.lines = lines  # the input; a confirmation question takes the next line while answering
        self.user = user or getpass.getuser()
        self.key = ConversationKey(PLATFORM, "local", self.user)
        admin = self.user in service.settings.admins
        self.caller = Caller(PLATFORM, "local", self.user, self.user, admin=admin)
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
        turn = Turn(
            key=self.key,
            user_id=self.user,
            user_name=self.user,
            text=line,
            message_id=f"terminal-{id(self)}-{self.turns}",
            attachments=tuple(self.pending),
        )
        self.pending = []
        await self.service.answer(turn, ConfirmingSurface(self.out, self.lines, self.user))
        return True

    async def _command(self, line: str) -> bool:
        name, _, argument = line[1:].partition(" ")
        argument = argument.strip()
        if name in ("quit", "exit"):
            return False
        if name in ("image", "video", "file"):
            if not argument:
                self.say(f"usage: /{name} PATH")
                return True
            # A missing or unreadable file becomes a note in the reply, like any bad attachment.
            attachment = LocalFile(Path(argument))
            self.pending.append(attachment)
            self.say(f"attached {attachment.name}; it goes with your next message")
            return True
        command: ReplyCommand = Help()
        if name in OFFERED:
            try:
                parsed = parse_command(line[1:])
            except BadArguments as bad:
                self.say(f"{bad}\n{usage_line(TERMINAL)}")
                return True
            if parsed is not None and not isinstance(parsed, Summarize):
                command = parsed
        self.say(await run_command(self.service, self.caller, command, TERMINAL))
        return True


async def chat(settings: Settings, *, stdin: TextIO = sys.stdin, out: TextIO = sys.stdout) -> int:
    service = await open_service(settings, sys.stderr, needs_api_key=False)  # errors are said per message
    if service is None:
        return EXIT_CONFIG
    lines = input_lines(stdin)
    session = TerminalChat(service, lines, out=out)
    print(f"seedbot chat · {settings.model} · /help for commands, /quit to leave", file=out, flush=True)
    try:
        while True:
            line = await lines.read("you> ")
            if line is None or not await session.handle(line):
                break
    finally:
        await service.close()
    return 0
