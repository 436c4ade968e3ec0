"""Confirmation buttons on Discord: Approve / Decline under a reply, clicks routed to the core.

A `discord.ui.View` per question; the core accepts only the asker's click before the request expires
(`core.tools.confirm`), and anyone else who clicks is told so privately. Once decided, the question
is edited to say who approved or declined it, and when, and loses its buttons.
"""

from __future__ import annotations

import functools
import logging

import discord

from bots.discord.budget import NOT_SENT
from core.commands import user_mention
from core.reply.budgets import Pacer
from core.tools.confirm import ConfirmationRequest, Decision, PendingConfirmation, ShownQuestions

log = logging.getLogger(__name__)


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
            refusal = questions.shown.click(request_id, approved, str(interaction.user.id))
            if refusal is None:
                await interaction.response.defer()
            else:
                await interaction.response.send_message(refusal, ephemeral=True)

        return pressed


class DiscordQuestions:
    """The questions the bot has open, and the messages they were asked in; each call to show or
    close one within the bot's global budget (`pace`)."""

    def __init__(self, pace: Pacer) -> None:
        self.shown: ShownQuestions[discord.Message] = ShownQuestions()
        self._pace = pace

    async def ask(self, channel: discord.abc.Messageable, pending: PendingConfirmation) -> bool:
        request = pending.request
        text = (
            f"🔧 **{request.tool_name}** wants to run with `{request.arguments_preview}`."
            f" {request.who_answers(user_mention)}"
        )

        async def send() -> discord.Message | None:
            try:
                buttons = _Buttons(request.request_id, self)
                return await self._pace(functools.partial(channel.send, text, view=buttons))
            except NOT_SENT as error:
                log.warning("confirmation not shown (%s)", error)
                return None

        return await self.shown.ask(pending, send)

    async def decided(self, request: ConfirmationRequest, decision: Decision) -> None:
        message = self.shown.decided(request.request_id)
        if message is None:
            return
        text = request.decided_text(decision, user_mention)
        try:
            await self._pace(functools.partial(message.edit, content=text, view=None))
        except NOT_SENT as error:
            log.warning("confirmation %s not updated (%s)", message.id, error)


class AsksInChannel:
    """A reply surface's confirmations (`core.tools.confirm`): buttons in `question_channel`."""

    questions: DiscordQuestions | None
    question_channel: discord.abc.Messageable

    async def ask_confirmation(self, pending: PendingConfirmation) -> bool:
        return self.questions is not None and await self.questions.ask(self.question_channel, pending)

    async def show_decision(self, request: ConfirmationRequest, decision: Decision) -> None:
        if self.questions is not None:
            await self.questions.decided(request, decision)
