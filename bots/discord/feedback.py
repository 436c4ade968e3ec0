"""👍 / 👎 on Discord: two small buttons under the last message of a finished answer, presses routed
to `core.feedback` (which owns what they mean).

The buttons are `DynamicItem`s: their custom id carries the answer's token, and the client registers
the class (`add_dynamic_items`), so a press works after a restart too, with no view kept per message.
"""

from __future__ import annotations

from typing import Any

import discord

from bots.discord.conversation import PLATFORM, settings_channel, workspace_of
from core.feedback import FeedbackSubject, record_feedback

EMOJI = {"up": "👍", "down": "👎"}


class FeedbackButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template=r"seed:fb:(?P<rating>up|down):(?P<token>\S+)",
):
    def __init__(self, rating: str, token: str) -> None:
        super().__init__(
            discord.ui.Button(
                emoji=EMOJI[rating],
                style=discord.ButtonStyle.secondary,
                custom_id=f"seed:fb:{rating}:{token}",
            )
        )
        self.rating, self.token = rating, token

    @classmethod
    async def from_custom_id(  # type: ignore[override]
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: Any
    ) -> FeedbackButton:
        return cls(match["rating"], match["token"])

    async def callback(self, interaction: discord.Interaction) -> None:  # type: ignore[override]
        """Record the press against the answer's message and thank the person privately."""
        message = interaction.message
        said = await record_feedback(
            interaction.client.seed.service.store,  # type: ignore[attr-defined]
            platform=PLATFORM,
            workspace=workspace_of(interaction.guild),
            channel=settings_channel(interaction.channel),
            platform_message_id=str(message.id if message is not None else ""),
            user=str(interaction.user.id),
            rating=self.rating,
            token=self.token,
        )
        await interaction.response.send_message(said, ephemeral=True)


def feedback_view(subject: FeedbackSubject) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    for rating in ("up", "down"):
        view.add_item(FeedbackButton(rating, subject.token))
    return view
