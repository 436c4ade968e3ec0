"""Where an answer is written on Discord: channel messages, or an interaction's webhook messages.

Both implement the core's `ReplySurface`. Parts of a long answer reply to the previous part, so the
chain reads top to bottom and a reply to any part continues the conversation. `allowed_mentions`
lets a reply ping the asker and nobody else (never @everyone, @here or roles), whatever the model
writes.

Every channel message call of a reply (post, edit, typing, feedback buttons) draws from the bot's
global REST budget (budget.py), shared by every instance through Redis: a mid-answer edit that finds
no room soon is merged into the next one, a typing indicator is skipped. Interaction webhooks are
exempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import discord

from bots.discord.budget import retry_after
from bots.discord.feedback import feedback_view
from bots.discord.questions import AsksInChannel, DiscordQuestions
from core.coordination import Draw
from core.feedback import FeedbackSubject
from core.reply.budgets import PATIENCE_S, ReplyCalls, SharedBudgets
from core.reply.handoff import HandOffSurface
from core.reply.surface import (
    TRANSIENT_RETRY_S,
    MessageRef,
    PlatformLimits,
    SurfaceError,
    SurfaceRateLimited,
    refused_or_retry,
    surface_errors,
)
from core.tools.base import ConversationSearch

log = logging.getLogger(__name__)

DISCORD_LIMITS = PlatformLimits(
    name="discord",
    max_message_chars=2000,
    # Message edits are limited per channel; 5 per 5 s is the pace Discord's buckets allow.
    edits_per_window=5,
    window_s=5.0,
    thinking_in_message=True,
)
# A typing indicator lasts about 10 s; re-trigger before it fades, for at most this many rounds.
TYPING_EVERY_S = 8.0
TYPING_MAX_ROUNDS = 75
# Interaction tokens last 15 minutes; Discord then answers 401 "Invalid Webhook Token" (50027).
EXPIRED_TOKEN_CODES = frozenset({50027, 10015})
NETWORK_FAILURES = (aiohttp.ClientError, OSError, TimeoutError)  # worth another try shortly


def allowed_mentions(asker: discord.abc.Snowflake | None, *, replied_user: bool) -> discord.AllowedMentions:
    users: list[discord.abc.Snowflake] = [asker] if asker is not None else []
    return discord.AllowedMentions(everyone=False, roles=False, users=users, replied_user=replied_user)


def surface_error(error: BaseException) -> Exception:
    """discord.py's failures in the reply engine's terms: pause-and-retry, or give up."""
    if isinstance(error, discord.RateLimited):  # a wait longer than max_ratelimit_timeout
        return SurfaceRateLimited(error.retry_after)
    if isinstance(error, discord.HTTPException):  # a 429 here: discord.py retried and still hit the limit
        refusal = f"Discord refused the message ({error.status}: {error.text or 'no reason given'})"
        return refused_or_retry(error.status, refusal, retry_after=retry_after(error))
    if isinstance(error, NETWORK_FAILURES):
        return SurfaceRateLimited(TRANSIENT_RETRY_S)
    return SurfaceError(str(error))


def platform_errors() -> contextlib.AbstractAsyncContextManager[None]:
    return surface_errors((discord.DiscordException, *NETWORK_FAILURES), surface_error)


def message_ref(message: discord.Message) -> MessageRef:
    return MessageRef(id=str(message.id), channel=str(message.channel.id))


class DiscordSurface(AsksInChannel):
    """A reply in a channel, thread or DM: the first part replies to the prompt (if any)."""

    limits = DISCORD_LIMITS

    def __init__(
        self,
        channel: discord.abc.Messageable,
        *,
        budget: Draw,
        reply_to: discord.Message | None,
        asker: discord.abc.Snowflake | None,
        questions: DiscordQuestions | None = None,
        search: ConversationSearch | None = None,
    ):
        self._channel = self.question_channel = channel
        self.questions = questions
        self.conversation_search = search  # what the search_conversation tool may read
        self._previous = reply_to.to_reference(fail_if_not_exists=False) if reply_to is not None else None
        # Only the reply to the asker's own message pings them; continuations reply to the bot itself.
        # Edits repeat what the post allowed, so an edit never adds a ping.
        self._pinging = allowed_mentions(asker, replied_user=True)
        self._quiet = allowed_mentions(asker, replied_user=False)
        self._ping_next = reply_to is not None and asker is not None and reply_to.author.id == asker.id
        self._pinged: set[str] = set()
        self._typing: asyncio.Task[None] | None = None
        self._calls = ReplyCalls(lambda call: budget)

    def use_budgets(self, budgets: SharedBudgets) -> None:
        """Draw every call from the bot's global budget, shared by all its replies and instances."""
        self._calls.use(budgets)

    async def post(self, text: str) -> MessageRef:
        await self._calls.need("post")
        async with platform_errors():
            kwargs = {"reference": self._previous} if self._previous is not None else {}
            message = await self._channel.send(text, allowed_mentions=self._mentions_for(None), **kwargs)
        if self._ping_next:
            self._pinged.add(str(message.id))
            self._ping_next = False
        self._previous = message.to_reference(fail_if_not_exists=False)
        return message_ref(message)

    async def edit(self, ref: MessageRef, text: str) -> None:
        await self._calls.need("edit")
        async with platform_errors():
            partial = self._channel.get_partial_message(int(ref.id))  # type: ignore[attr-defined]
            await partial.edit(content=text, allowed_mentions=self._mentions_for(ref.id))

    def _mentions_for(self, message_id: str | None) -> discord.AllowedMentions:
        pinging = self._ping_next if message_id is None else message_id in self._pinged
        return self._pinging if pinging else self._quiet

    async def set_status(self, status: str | None) -> None:
        if status is None:
            await self.close()
        elif self._typing is None or self._typing.done():
            self._typing = asyncio.create_task(self._keep_typing())

    async def close(self) -> None:
        if self._typing is not None:
            self._typing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._typing
            self._typing = None
        self._calls.close()

    async def offer_feedback(self, subject: FeedbackSubject) -> None:
        # After every final text waiting for the budget, as long as one may wait.
        if not await self._calls.take("feedback", priority="routine", patience_s=PATIENCE_S["urgent"]):
            return
        async with platform_errors():
            partial = self._channel.get_partial_message(int(subject.message.id))  # type: ignore[attr-defined]
            await partial.edit(view=feedback_view(subject))

    async def _keep_typing(self) -> None:
        for _ in range(TYPING_MAX_ROUNDS):
            if not await self._calls.take("typing", priority="low"):
                await asyncio.sleep(TYPING_EVERY_S)  # the first thing to go when the budget is short
                continue
            try:
                await self._channel.typing()
            except (discord.HTTPException, aiohttp.ClientError, OSError) as error:
                log.debug("typing indicator failed: %s", error)
                return
            await asyncio.sleep(TYPING_EVERY_S)


class _InteractionWebhook:
    """The interaction's deferred response, then its follow-ups, written through the interaction
    webhook for as long as its token lasts (15 minutes); each call says when it has expired."""

    def __init__(self, interaction: discord.Interaction) -> None:
        self._interaction = interaction
        # The interaction response pings nobody: the asker already sees it as the answer to their command.
        self._mentions = allowed_mentions(interaction.user, replied_user=False)
        self._original: int | None = None
        self._messages: set[int] = set()
        self.last: discord.Message | None = None  # what a continuation in the channel replies to
        self._expired = False

    def holds(self, ref: MessageRef) -> bool:
        return int(ref.id) in self._messages

    async def post(self, text: str) -> MessageRef | None:
        if self._original is None:
            message = await self._call(
                lambda: self._interaction.edit_original_response(
                    content=text, allowed_mentions=self._mentions
                )
            )
            if message is not None:
                self._original = message.id
        else:
            message = await self._call(
                lambda: self._interaction.followup.send(text, wait=True, allowed_mentions=self._mentions)
            )
        if message is None:
            return None
        self._messages.add(message.id)
        self.last = message
        return message_ref(message)

    async def edit(self, ref: MessageRef, text: str) -> bool:
        return await self._edit(int(ref.id), content=text, allowed_mentions=self._mentions)

    async def offer_feedback(self, subject: FeedbackSubject) -> bool:
        return await self._edit(int(subject.message.id), view=feedback_view(subject))

    async def _edit(self, message_id: int, **changes: Any) -> bool:
        if message_id == self._original:
            edited = await self._call(lambda: self._interaction.edit_original_response(**changes))
        else:
            edited = await self._call(lambda: self._interaction.followup.edit_message(message_id, **changes))
        return edited is not None

    async def _call(self, call: Callable[[], Awaitable[discord.Message]]) -> discord.Message | None:
        """Run one interaction-webhook call; None once the token has expired."""
        if self._expired:
            return None
        try:
            return await call()
        except discord.HTTPException as error:
            if error.status == 401 or error.code in EXPIRED_TOKEN_CODES:
                log.info("interaction token expired; the answer continues in channel messages")
                self._expired = True
                return None
            raise surface_error(error) from error
        except NETWORK_FAILURES as error:
            raise surface_error(error) from error


class InteractionSurface(AsksInChannel, HandOffSurface):
    """A reply to a slash command: the deferred original response, then webhook follow-ups.

    The interaction token expires after 15 minutes; from then on the answer continues as ordinary
    channel messages, and an edit to a webhook message becomes a new channel message that later
    edits update.
    """

    def __init__(
        self,
        interaction: discord.Interaction,
        *,
        fallback_channel: discord.abc.Messageable,
        budget: Draw,
        questions: DiscordQuestions | None = None,
        search: ConversationSearch | None = None,
    ):
        webhook = _InteractionWebhook(interaction)
        super().__init__(DISCORD_LIMITS, webhook, lambda: self._in_channel(webhook.last, interaction.user))
        self._fallback_channel = fallback_channel
        self._budget = budget
        # Asked in the channel: a webhook message's buttons would die with the interaction's token.
        self.questions, self.question_channel = questions, fallback_channel
        self.conversation_search = search
        self._budgets: SharedBudgets | None = None  # for the channel messages, once the token expires

    def use_budgets(self, budgets: SharedBudgets) -> None:
        """Webhook calls are exempt from the global limit; channel messages that replace them are not."""
        self._budgets = budgets

    def _in_channel(self, last: discord.Message | None, asker: discord.abc.Snowflake) -> DiscordSurface:
        surface = DiscordSurface(self._fallback_channel, budget=self._budget, reply_to=last, asker=asker)
        if self._budgets is not None:
            surface.use_budgets(self._budgets)
        return surface
