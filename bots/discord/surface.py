"""Where an answer is written on Discord: channel messages, or an interaction's webhook messages.

Both implement the core's `ReplySurface`. Parts of a long answer reply to the previous part, so the
chain reads top to bottom and a reply to any part continues the conversation. `allowed_mentions`
lets a reply ping the asker and nobody else (never @everyone, @here or roles), whatever the model
writes.

Every channel message call of a reply (post, edit, typing, feedback buttons) draws from the bot's
global REST budget (`GLOBAL_BUDGET`: Discord allows a bot 50 requests a second, whichever shard's
process makes them), shared by every instance through Redis: a mid-answer edit that finds no room
soon is merged into the next one, a typing indicator is skipped. Interaction webhooks are exempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import discord

from bots.discord.feedback import feedback_view
from bots.discord.questions import DiscordQuestions
from core.coordination import Draw, Rate
from core.feedback import FeedbackSubject
from core.reply.budgets import SharedBudgets
from core.reply.pacing import Priority, call_priority
from core.reply.surface import MessageRef, PlatformLimits, SurfaceBusy, SurfaceError, SurfaceRateLimited
from core.tools.base import ConversationSearch
from core.tools.confirm import ConfirmationRequest, Decision, PendingConfirmation

log = logging.getLogger(__name__)

DISCORD_LIMITS = PlatformLimits(
    name="discord",
    max_message_chars=2000,
    # Message edits are limited per channel; 5 per 5 s is the pace Discord's buckets allow.
    edits_per_window=5,
    window_s=5.0,
    thinking_in_message=True,
)
# The bot's global limit is 50 requests a second. A bucket of 40 a second with 8 saved up sends at most
# 48 in any second, leaving room for calls outside replies (commands, crash recovery).
GLOBAL_BUDGET = Draw("discord:global", Rate(per_s=40.0, burst=8.0), name="discord global")
# How long a call of each priority waits for the global budget before it gives up (as on Slack).
PATIENCE_S: dict[Priority, float] = {"urgent": 45.0, "routine": 1.0, "low": 0.0}
# A typing indicator lasts about 10 s; re-trigger before it fades, for at most this many rounds.
TYPING_EVERY_S = 8.0
TYPING_MAX_ROUNDS = 75
TRANSIENT_RETRY_S = 1.0
# Interaction tokens last 15 minutes; Discord then answers 401 "Invalid Webhook Token" (50027).
EXPIRED_TOKEN_CODES = frozenset({50027, 10015})


def allowed_mentions(asker: discord.abc.Snowflake | None, *, replied_user: bool) -> discord.AllowedMentions:
    users: list[discord.abc.Snowflake] = [asker] if asker is not None else []
    return discord.AllowedMentions(everyone=False, roles=False, users=users, replied_user=replied_user)


def _retry_after(error: discord.HTTPException) -> float:
    """From the 429's headers: the precise X-RateLimit-Reset-After, else the whole-second Retry-After."""
    headers = error.response.headers if error.response is not None else {}
    for name in ("X-RateLimit-Reset-After", "Retry-After"):
        try:
            return max(float(headers[name]), 0.0)
        except (KeyError, ValueError):
            continue
    return TRANSIENT_RETRY_S


def surface_error(error: BaseException) -> Exception:
    """discord.py's failures in the reply engine's terms: pause-and-retry, or give up."""
    if isinstance(error, discord.RateLimited):  # a wait longer than max_ratelimit_timeout
        return SurfaceRateLimited(error.retry_after)
    if isinstance(error, discord.HTTPException):
        if error.status == 429:  # discord.py retried on its own and still hit the limit
            return SurfaceRateLimited(_retry_after(error))
        if error.status >= 500:
            return SurfaceRateLimited(TRANSIENT_RETRY_S)
        reason = error.text or "no reason given"
        return SurfaceError(f"Discord refused the message ({error.status}: {reason})")
    if isinstance(error, aiohttp.ClientError | OSError | TimeoutError):
        return SurfaceRateLimited(TRANSIENT_RETRY_S)
    return SurfaceError(str(error))


@contextlib.asynccontextmanager
async def platform_errors() -> AsyncIterator[None]:
    try:
        yield
    except (discord.DiscordException, aiohttp.ClientError, OSError, TimeoutError) as error:
        raise surface_error(error) from error


def message_ref(message: discord.Message) -> MessageRef:
    return MessageRef(id=str(message.id), channel=str(message.channel.id))


class DiscordSurface:
    """A reply in a channel, thread or DM: the first part replies to the prompt (if any)."""

    limits = DISCORD_LIMITS

    def __init__(
        self,
        channel: discord.abc.Messageable,
        *,
        reply_to: discord.Message | None,
        asker: discord.abc.Snowflake | None,
        questions: DiscordQuestions | None = None,
        search: ConversationSearch | None = None,
    ):
        self._channel = channel
        self._questions = questions
        self.conversation_search = search  # what the search_conversation tool may read
        self._previous = reply_to.to_reference(fail_if_not_exists=False) if reply_to is not None else None
        # Only the reply to the asker's own message pings them; continuations reply to the bot itself.
        # Edits repeat what the post allowed, so an edit never adds a ping.
        self._pinging = allowed_mentions(asker, replied_user=True)
        self._quiet = allowed_mentions(asker, replied_user=False)
        self._ping_next = reply_to is not None and asker is not None and reply_to.author.id == asker.id
        self._pinged: set[str] = set()
        self._typing: asyncio.Task[None] | None = None
        self._budgets: SharedBudgets | None = None
        self._lane = 0

    def use_budgets(self, budgets: SharedBudgets) -> None:
        """Draw every call from the bot's global budget, shared by all its replies and instances."""
        self._budgets = budgets
        self._lane = budgets.lane()

    async def post(self, text: str) -> MessageRef:
        await self._need()
        async with platform_errors():
            kwargs = {"reference": self._previous} if self._previous is not None else {}
            message = await self._channel.send(text, allowed_mentions=self._mentions_for(None), **kwargs)
        if self._ping_next:
            self._pinged.add(str(message.id))
            self._ping_next = False
        self._previous = message.to_reference(fail_if_not_exists=False)
        return message_ref(message)

    async def edit(self, ref: MessageRef, text: str) -> None:
        await self._need()
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
        if self._budgets is not None:
            self._budgets.close_lane(self._lane)

    async def ask_confirmation(self, pending: PendingConfirmation) -> bool:
        return self._questions is not None and await self._questions.ask(self._channel, pending)

    async def show_decision(self, request: ConfirmationRequest, decision: Decision) -> None:
        if self._questions is not None:
            await self._questions.decided(request, decision)

    async def offer_feedback(self, subject: FeedbackSubject) -> None:
        # After every final text waiting for the budget, as long as one may wait.
        if not await self._draw("routine", patience_s=PATIENCE_S["urgent"]):
            return
        async with platform_errors():
            partial = self._channel.get_partial_message(int(subject.message.id))  # type: ignore[attr-defined]
            await partial.edit(view=feedback_view(subject))

    async def _keep_typing(self) -> None:
        for _ in range(TYPING_MAX_ROUNDS):
            if not await self._draw("low"):
                await asyncio.sleep(TYPING_EVERY_S)  # the first thing to go when the budget is short
                continue
            try:
                await self._channel.typing()
            except (discord.HTTPException, aiohttp.ClientError, OSError) as error:
                log.debug("typing indicator failed: %s", error)
                return
            await asyncio.sleep(TYPING_EVERY_S)

    async def _draw(self, priority: Priority | None = None, *, patience_s: float | None = None) -> bool:
        """Wait for this call's turn in the global budget (priority: the streamer's for this call)."""
        if self._budgets is None:
            return True
        priority = priority or call_priority.get()
        patience = PATIENCE_S[priority] if patience_s is None else patience_s
        return await self._budgets.acquire([GLOBAL_BUDGET], priority, lane=self._lane, patience_s=patience)

    async def _need(self) -> None:
        if not await self._draw():
            raise SurfaceBusy("discord global")


class InteractionSurface:
    """A reply to a slash command: the deferred original response, then webhook follow-ups.

    The interaction token expires after 15 minutes; from then on the answer continues as ordinary
    channel messages, and an edit to a webhook message becomes a new channel message that later
    edits update.
    """

    limits = DISCORD_LIMITS

    def __init__(
        self,
        interaction: discord.Interaction,
        *,
        fallback_channel: discord.abc.Messageable,
        questions: DiscordQuestions | None = None,
        search: ConversationSearch | None = None,
    ):
        self._interaction = interaction
        self._fallback_channel = fallback_channel
        self._questions = questions
        self.conversation_search = search
        # The interaction response pings nobody: the asker already sees it as the answer to their command.
        self._mentions = allowed_mentions(interaction.user, replied_user=False)
        self._original: int | None = None
        self._webhook_messages: set[int] = set()
        self._last: discord.Message | None = None
        self._fallback: DiscordSurface | None = None
        self._moved: dict[int, MessageRef] = {}  # webhook message id -> channel message that replaced it
        self._budgets: SharedBudgets | None = None  # for the channel messages, once the token expires
        self.expired = False

    def use_budgets(self, budgets: SharedBudgets) -> None:
        """Webhook calls are exempt from the global limit; channel messages that replace them are not."""
        self._budgets = budgets

    async def post(self, text: str) -> MessageRef:
        if self._original is None:
            message = await self._via_webhook(lambda: self._edit_original(text))
            if message is not None:
                self._original = message.id
        else:
            message = await self._via_webhook(
                lambda: self._interaction.followup.send(text, wait=True, allowed_mentions=self._mentions)
            )
        if message is None:
            return await self._channel_surface().post(text)
        self._webhook_messages.add(message.id)
        self._last = message
        return message_ref(message)

    async def edit(self, ref: MessageRef, text: str) -> None:
        message_id = int(ref.id)
        if message_id in self._moved:
            return await self._channel_surface().edit(self._moved[message_id], text)
        if message_id not in self._webhook_messages:
            return await self._channel_surface().edit(ref, text)
        if message_id == self._original:
            edited = await self._via_webhook(lambda: self._edit_original(text))
        else:
            edited = await self._via_webhook(
                lambda: self._interaction.followup.edit_message(
                    message_id, content=text, allowed_mentions=self._mentions
                )
            )
        if edited is None:
            self._moved[message_id] = await self._channel_surface().post(text)
        return None

    async def set_status(self, status: str | None) -> None:
        """The deferred response already shows "<bot> is thinking…"; nothing more to show."""

    async def close(self) -> None:
        if self._fallback is not None:
            await self._fallback.close()

    async def ask_confirmation(self, pending: PendingConfirmation) -> bool:
        # Asked in the channel: a webhook message's buttons would die with the interaction's token.
        return self._questions is not None and await self._questions.ask(self._fallback_channel, pending)

    async def show_decision(self, request: ConfirmationRequest, decision: Decision) -> None:
        if self._questions is not None:
            await self._questions.decided(request, decision)

    async def offer_feedback(self, subject: FeedbackSubject) -> None:
        message_id = int(subject.message.id)
        if message_id in self._moved:
            moved = dataclasses.replace(subject, message=self._moved[message_id])
            return await self._channel_surface().offer_feedback(moved)
        if message_id not in self._webhook_messages:
            return await self._channel_surface().offer_feedback(subject)
        view = feedback_view(subject)
        if message_id == self._original:
            edited = await self._via_webhook(lambda: self._interaction.edit_original_response(view=view))
        else:
            edited = await self._via_webhook(
                lambda: self._interaction.followup.edit_message(message_id, view=view)
            )
        if edited is None:
            log.info("feedback buttons not added: the interaction token has expired")
        return None

    def _edit_original(self, text: str) -> Awaitable[discord.Message]:
        return self._interaction.edit_original_response(content=text, allowed_mentions=self._mentions)

    async def _via_webhook(self, call: Callable[[], Awaitable[discord.Message]]) -> discord.Message | None:
        """Run one interaction-webhook call; None once the token has expired."""
        if self.expired:
            return None
        try:
            return await call()
        except discord.HTTPException as error:
            if error.status == 401 or error.code in EXPIRED_TOKEN_CODES:
                log.info("interaction token expired; the answer continues in channel messages")
                self.expired = True
                return None
            raise surface_error(error) from error
        except (aiohttp.ClientError, OSError, TimeoutError) as error:
            raise surface_error(error) from error

    def _channel_surface(self) -> DiscordSurface:
        if self._fallback is None:
            self._fallback = DiscordSurface(
                self._fallback_channel, reply_to=self._last, asker=self._interaction.user
            )
            if self._budgets is not None:
                self._fallback.use_budgets(self._budgets)
        return self._fallback
