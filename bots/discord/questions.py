"""Confirmation buttons on Discord: Approve / Decline under a reply, clicks routed to the core.

A `discord.ui.View` per question; the core accepts only the asker's click before the request expires
(`core.tools.confirm`), and anyone else who clicks is told so privately. Once decided, the question
is edited to say who approved or declined it, and when, and loses its buttons.
"""

from __future__ import annotations

import logging

import discord

from core.commands import chat_mention
from core.tools.confirm import ConfirmationRequest, Decision, OpenQuestions, PendingConfirmation

log = logging.getLogger(__name__)

QUIET = discord.AllowedMentions.none()


class _Buttons(discord.ui.View):
    def __init__(self, request_id: str, questions: DiscordQuestions) -> None:
        super().__init__(timeout=None)  # the core decides when a question expires
        for approved, label, style in (
            (True, "Approve", discord.ButtonStyle.success),
            (False, "Decline", discord.ButtonStyle.danger),
        ):
            button: discord.ui.Button[_Buttons] = discord.ui.Button(
                label=label, style=style, custom_id=f"seed:confirm:{request_id}:{'yes' if approved else 'no'}"
            )
            button.callback = self._pressed(request_id, approved, questions)  # type: ignore[method-assign]
            self.add_item(button)

    @staticmethod
    def _pressed(request_id: str, approved: bool, questions: DiscordQuestions):  # type: ignore[no-untyped-def]
        async def pressed(interaction: discord.Interaction) -> None:
            refusal = questions.open.click(request_id, approved, str(interaction.user.id))
            if refusal is None:
                await interaction.response.defer()
            else:
                await interaction.response.send_message(refusal, ephemeral=True)

        return pressed


class DiscordQuestions:
    """The questions the bot has open, and the messages they were asked in."""

    def __init__(self) -> None:
        self.open = OpenQuestions()
        self._asked: dict[str, discord.Message] = {}

    async def ask(self, channel: discord.abc.Messageable, pending: PendingConfirmation) -> bool:
        request = pending.request
        text = (
            f"🔧 **{request.tool_name}** wants to run with `{request.arguments_preview}`."
            f" Only <@{request.user_id}> can answer."
        )
        self.open.add(pending)  # before it is shown: a press may come back before the send returns
        try:
            message = await channel.send(
                text, view=_Buttons(request.request_id, self), allowed_mentions=QUIET
            )
        except discord.HTTPException as error:
            log.warning("confirmation not shown (%s %s)", error.status, error.text)
            self.open.close(request.request_id)
            return False
        self._asked[request.request_id] = message
        return True

    async def decided(self, request: ConfirmationRequest, decision: Decision) -> None:
        self.open.close(request.request_id)
        message = self._asked.pop(request.request_id, None)
        if message is None:
            return
        mark = "✅" if decision.approved else "⏹️"
        who = decision.summary(lambda user: chat_mention("user", user))
        try:
            await message.edit(content=f"{mark} {request.question} {who}.", view=None, allowed_mentions=QUIET)
        except discord.HTTPException as error:
            log.warning("confirmation %s not updated (%s %s)", message.id, error.status, error.text)
