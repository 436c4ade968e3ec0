"""Where an answer is written on Slack.

`SlackSurface` writes a reply into a channel, a thread or a DM. In a thread it streams natively
(`chat.startStream` / `appendStream` / `stopStream`) and shows the thinking status with
`assistant.threads.setStatus`; every message text is Markdown (`markdown_text`). Native streams
only grow, so an edit that is not an append (or a stream Slack ended after its few minutes) moves
that message to `chat.update`. A workspace that refuses native streaming, or SLACK_STREAM_MODE=edit,
gets the plain path: `chat.postMessage` then `chat.update`.

Every write draws from the workspace's budget for its method (`SLACK_TIERS`), shared by all the
answers in the workspace (and by every instance, through Redis) once the service hands the surface
its `SharedBudgets`: a call waits its fair turn, a mid-answer edit that would wait too long is
merged into the next one, and a thinking status with no budget left is skipped. A new message
streams natively only while chat.startStream has budget to spare; otherwise it is posted
(chat.postMessage counts per channel) and finished with chat.update.

`ephemeral_surface` answers `/seed -p` privately: ephemeral messages cannot be edited, so the reply
is kept and sent through the command's `response_url` when the answer is done.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bots.slack.api import error_code, is_rate_limited, platform_errors, retry_after, surface_error
from bots.slack.feedback import feedback_block
from bots.slack.questions import SlackQuestions
from core.coordination import Draw, Rate
from core.feedback import FeedbackSubject
from core.reply.budgets import PATIENCE_S, Pacer, ReplyCalls, SharedBudgets
from core.reply.buffered import BufferedSurface
from core.reply.pacing import Priority
from core.reply.surface import MessageRef, PlatformLimits, SurfaceError, SurfaceRateLimited, ToolStep
from core.tools.base import ConversationSearch
from core.tools.confirm import ConfirmationRequest, Decision, PendingConfirmation

log = logging.getLogger(__name__)

SLACK_LIMITS = PlatformLimits(
    name="slack",
    # `markdown_text` (posts, updates and stream appends) takes at most 12,000 characters.
    max_message_chars=12_000,
    # chat.update is a Tier 3 method: about 50 calls a minute.
    edits_per_window=50,
    window_s=60.0,
    thinking_in_message=True,
)


def _tier(per_minute: float, burst: float) -> Rate:
    # One token of the burst stays unused: a call reaches Slack a moment after it took its token,
    # and not always in the order they were taken, so Slack's bucket can look one call emptier.
    return Rate.per_minute(per_minute, burst - 1)


# What each write method allows, per workspace (per channel for chat.postMessage), as Slack publishes
# it (docs.slack.dev/apis/web-api/rate-limits: Tier 2 20+/min, Tier 3 50+/min, Tier 4 100+/min,
# "sporadic bursts" welcome; burst sizes are not published, so these are modest).
SLACK_TIERS: dict[str, Rate] = {
    # Tier 3 (docs.slack.dev/reference/methods/chat.update).
    "chat.update": _tier(50, burst=10),
    # Tier 4 (slack-api-ref methods/chat/chat.appendStream.json: "rate_limits": "t4").
    "chat.appendStream": _tier(100, burst=20),
    # Tier 2 (api.slack.com/methods/chat.stopStream, "Rate limits: Tier 2").
    "chat.stopStream": _tier(20, burst=5),
    # Its page names no tier we could find; paced like its twin chat.stopStream (Tier 2).
    "chat.startStream": _tier(20, burst=5),
    # "Special rate limits apply" (docs.slack.dev/reference/methods/assistant.threads.setStatus):
    # paced as Tier 3, and it is the first thing to go when budgets run short.
    "assistant.threads.setStatus": _tier(50, burst=10),
    # "Special": one message a second per channel, short bursts allowed (rate-limits page).
    "chat.postMessage": _tier(60, burst=3),
}
PER_CHANNEL = frozenset({"chat.postMessage"})

# In a thread the thinking status shows under the message box, so the message holds only the answer.
STATUS_LIMITS = dataclasses.replace(SLACK_LIMITS, thinking_in_message=False)
# A response_url may be used five times in 30 minutes.
RESPONSE_URL_USES = 5
PRIVATE_CUT = "\n\n_…the rest did not fit in a private answer: ask without `-p` to see all of it._"
# <!here>, <!channel>, <!everyone>, <!subteam^S123|@team>: Slack's notifying mentions.
_BROADCAST = re.compile(r"<!(here|channel|everyone|subteam\^[A-Z0-9]+)(?:\|@?([^>]*))?>")
# Errors that say a native stream is over (it expired, or it was stopped elsewhere).
STREAM_ENDED = frozenset({"message_not_in_streaming_state", "message_not_found"})


@dataclass(slots=True)
class Capabilities:
    """What this workspace lets the app do, learned as it goes: a refusal switches a feature off."""

    native_streaming: bool
    thread_status: bool = True
    task_cards: bool = True  # tool steps as task_update chunks of the open stream


class SlackSurface:
    """One reply, in `thread_ts`'s thread (None: straight into the channel, e.g. a DM)."""

    def __init__(
        self,
        client: AsyncWebClient,
        capabilities: Capabilities,
        *,
        channel: str,
        thread_ts: str | None,
        team_id: str,
        user_id: str,
        questions: SlackQuestions,
        search: ConversationSearch | None = None,
    ):
        self._client = client
        self._questions = questions
        self.conversation_search = search  # what the search_conversation tool may read
        self._capabilities = capabilities
        self._channel = channel
        self._thread_ts = thread_ts
        self._team_id = team_id
        self._user_id = user_id
        self._status_shown = bool(thread_ts) and capabilities.thread_status
        self.limits = STATUS_LIMITS if self._status_shown else SLACK_LIMITS
        self._streams: dict[str, str] = {}  # ts -> text streamed so far, for messages still streaming
        self._calls = ReplyCalls(lambda method: budget_draw(team_id, method, channel))

    def use_budgets(self, budgets: SharedBudgets) -> None:
        """Draw every call from the workspace's shared budgets (before the reply starts)."""
        self._calls.use(budgets)

    async def post(self, text: str) -> MessageRef:
        text = defuse_mentions(text)
        await self._stop_streams()
        refusal = None
        # A stream costs a start and a stop from small workspace budgets: without room for the start
        # right now, a plain post (counted per channel) shows the answer sooner than waiting would.
        if (
            self._thread_ts
            and self._capabilities.native_streaming
            and await self._calls.take("chat.startStream", patience_s=0.0)
        ):
            async with self._calls.penalizing("chat.startStream"):
                ts, refusal = await self._start_stream(text)
            if ts is not None:
                return MessageRef(ts, self._channel)
        await self._calls.need("chat.postMessage")
        async with self._calls.penalizing("chat.postMessage"), platform_errors():
            response = await self._client.chat_postMessage(
                channel=self._channel, thread_ts=self._thread_ts, markdown_text=text
            )
        if refusal is not None:
            # A plain post worked where the stream did not: streaming itself is what Slack refuses here.
            log.warning("native streaming refused (%s); answers are posted and edited", refusal)
            self._capabilities.native_streaming = False
        return MessageRef(str(response["ts"]), self._channel)

    async def edit(self, ref: MessageRef, text: str) -> None:
        text = defuse_mentions(text)
        streamed = self._streams.get(ref.id)
        if streamed is not None:
            if text.startswith(streamed) and await self._append(ref.id, text[len(streamed) :]):
                self._streams[ref.id] = text
                return
            await self._stop_stream(ref.id)
        await self._calls.need("chat.update")
        async with self._calls.penalizing("chat.update"), platform_errors():
            await self._client.chat_update(channel=self._channel, ts=ref.id, markdown_text=text)

    async def set_status(self, status: str | None) -> None:
        if not self._status_shown or not self._capabilities.thread_status:
            return
        assert self._thread_ts is not None
        # The status goes first when budgets run short; clearing it matters a little more.
        priority: Priority = "low" if status else "routine"
        if not await self._calls.take("assistant.threads.setStatus", priority=priority):
            return
        try:
            await self._client.assistant_threads_setStatus(
                channel_id=self._channel, thread_ts=self._thread_ts, status=status or ""
            )
        except SlackApiError as error:
            if is_rate_limited(error):
                await self._calls.penalize("assistant.threads.setStatus", retry_after(error))
                raise SurfaceRateLimited(retry_after(error)) from error
            log.warning(
                "thread status refused (%s); showing the thinking line in messages", error_code(error)
            )
            self._capabilities.thread_status = False
            raise SurfaceError(error_code(error)) from error

    async def close(self) -> None:
        """End any native stream still open (the streamer has written its final text by now)."""
        await self._stop_streams()
        self._calls.close()

    async def offer_feedback(self, subject: FeedbackSubject) -> None:
        """👍 / 👎 under the finished answer: its last message again, with the buttons, in one chat.update."""
        await self._stop_streams()  # a message still streaming cannot be updated
        # From the workspace's chat.update budget like any edit, after every final waiting for it.
        if not await self._calls.take("chat.update", priority="routine", patience_s=PATIENCE_S["urgent"]):
            return
        text = defuse_mentions(subject.text)
        async with self._calls.penalizing("chat.update"), platform_errors():
            await self._client.chat_update(
                channel=self._channel,
                ts=subject.message.id,
                text=text,
                blocks=[markdown_block(text), feedback_block(subject)],
            )

    # --- native streaming ------------------------------------------------------------------------

    async def _start_stream(self, text: str) -> tuple[str | None, str | None]:
        """(the new message's ts, None), or (None, Slack's reason) when it refuses to stream."""
        try:
            response = await self._client.chat_startStream(
                channel=self._channel,
                thread_ts=self._thread_ts or "",
                markdown_text=text,
                recipient_team_id=self._team_id,
                recipient_user_id=self._user_id,
                # Fixed when a stream starts: tool steps, if any come, show as a timeline of cards.
                task_display_mode="timeline",
            )
        except SlackApiError as error:
            if is_rate_limited(error):
                raise SurfaceRateLimited(retry_after(error)) from error
            return None, error_code(error)
        ts = str(response["ts"])
        self._streams[ts] = text
        return ts, None

    async def _append(self, ts: str, delta: str) -> bool:
        """Append to an open stream; False when Slack has ended it (continue with chat.update)."""
        if not delta:
            return True
        await self._calls.need("chat.appendStream")
        try:
            await self._client.chat_appendStream(channel=self._channel, ts=ts, markdown_text=delta)
        except SlackApiError as error:
            if error_code(error) in STREAM_ENDED:
                log.info("native stream %s ended by Slack; continuing with edits", ts)
                del self._streams[ts]
                return False
            if is_rate_limited(error):
                await self._calls.penalize("chat.appendStream", retry_after(error))
            raise surface_error(error) from error
        return True

    async def _stop_stream(self, ts: str) -> None:
        if self._streams.pop(ts, None) is None:
            return
        if not await self._calls.take("chat.stopStream", priority="urgent"):
            # Its text is all there; Slack ends a stream left open by itself after a few minutes.
            log.warning("no budget to stop native stream %s; Slack will end it", ts)
            return
        try:
            await self._client.chat_stopStream(channel=self._channel, ts=ts)
        except SlackApiError as error:
            if is_rate_limited(error):
                await self._calls.penalize("chat.stopStream", retry_after(error))
            if error_code(error) not in STREAM_ENDED:
                log.warning("could not stop native stream %s: %s", ts, error_code(error))

    async def _stop_streams(self) -> None:
        for ts in list(self._streams):
            await self._stop_stream(ts)

    # --- tool steps as native task cards -------------------------------------------------------------

    async def show_step(self, step: ToolStep) -> bool:
        """The step as a task card of the stream open now; False (the core shows it instead) when no
        stream is open, the budget has no room, or the workspace refuses task cards."""
        ts = next(reversed(self._streams), None) if self._capabilities.task_cards else None
        if ts is None or not await self._calls.take("chat.appendStream"):
            return False
        card: dict[str, Any] = {"type": "task_update", "id": step.id, "title": step.title}
        card["status"] = {"running": "in_progress", "done": "complete", "failed": "error"}[step.status]
        if step.detail:
            card["output"] = step.detail
        if step.sources:
            card["sources"] = [{"type": "url", "url": url, "text": url} for url in step.sources]
        try:
            await self._client.chat_appendStream(channel=self._channel, ts=ts, chunks=[card])
        except SlackApiError as error:
            log.info("task cards refused (%s); tool steps go in the status line", error_code(error))
            self._capabilities.task_cards = False
            return False
        return True

    # --- confirmations (`core.tools.confirm`) ---------------------------------------------------------

    async def ask_confirmation(self, pending: PendingConfirmation) -> bool:
        return await self._questions.ask(self._channel, self._thread_ts, pending)

    async def show_decision(self, request: ConfirmationRequest, decision: Decision) -> None:
        await self._questions.decided(request, decision)


Respond = Callable[..., Awaitable[Any]]


def ephemeral_surface(respond: Respond, channel: str) -> BufferedSurface:
    """A private answer: kept while it is written, sent through the response_url when it is done."""

    async def send(part: str) -> None:
        await respond(text=part, blocks=[markdown_block(part)], response_type="ephemeral")

    return BufferedSurface(
        SLACK_LIMITS,
        send,
        channel=channel,
        max_messages=RESPONSE_URL_USES,
        cut_note=PRIVATE_CUT,
        id_prefix="ephemeral",
        prepare=defuse_mentions,
    )


def budget_draw(team_id: str, method: str, channel: str) -> Draw:
    """The budget one call of `method` draws from: the workspace's, or the channel's for posts."""
    scope = f"{team_id}:{channel}" if method in PER_CHANNEL else team_id
    return Draw(f"slack:{scope}:{method}", SLACK_TIERS[method], name=f"slack {method}")


def pacer(budgets: SharedBudgets, team_id: str, channel: str, method: str) -> Pacer:
    """Runs Slack calls of `method` outside a reply (crash recovery) within the workspace's budget of
    it, as urgently as a final text; a 429 slows the budget for everyone and is retried after its
    Retry-After. Other Slack errors are raised."""
    return Pacer(budgets, budget_draw(team_id, method, channel), _rate_limited_for)


def _rate_limited_for(error: Exception) -> float | None:
    """Seconds to wait when `error` is Slack's 429, else None."""
    return retry_after(error) if isinstance(error, SlackApiError) and is_rate_limited(error) else None


def defuse_mentions(text: str) -> str:
    """Whatever the model writes, a reply never notifies a whole channel or a user group."""
    return _BROADCAST.sub(lambda m: "@" + (m.group(2) or m.group(1)), text)


def markdown_block(text: str) -> dict[str, str]:
    """A block that renders standard Markdown (for places that take blocks, not `markdown_text`)."""
    return {"type": "markdown", "text": text}
