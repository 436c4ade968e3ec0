"""Where an answer is written on Slack.

`SlackSurface` writes a reply into a channel, a thread or a DM. In a thread it streams natively
(`chat.startStream` / `appendStream` / `stopStream`) and shows the thinking status with
`assistant.threads.setStatus`; every message text is Markdown (`markdown_text`). Native streams
only grow, so an edit that is not an append (or a stream Slack ended after its few minutes) moves
that message to `chat.update`. A workspace that refuses native streaming, or SLACK_STREAM_MODE=edit,
gets the plain path: `chat.postMessage` then `chat.update`.

`EphemeralSurface` answers `/seed -p` privately: ephemeral messages cannot be edited, so it keeps
the reply and sends it through the command's `response_url` when the answer is done.
"""

from __future__ import annotations

import dataclasses
import itertools
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
from core.feedback import FeedbackSubject
from core.reply.split import close_fence, split_message
from core.reply.surface import MessageRef, PlatformLimits, SurfaceError, SurfaceRateLimited
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
    ):
        self._client = client
        self._questions = questions
        self._capabilities = capabilities
        self._channel = channel
        self._thread_ts = thread_ts
        self._team_id = team_id
        self._user_id = user_id
        self._status_shown = bool(thread_ts) and capabilities.thread_status
        self.limits = STATUS_LIMITS if self._status_shown else SLACK_LIMITS
        self._streams: dict[str, str] = {}  # ts -> text streamed so far, for messages still streaming

    async def post(self, text: str) -> MessageRef:
        text = defuse_mentions(text)
        await self._stop_streams()
        refusal = None
        if self._thread_ts and self._capabilities.native_streaming:
            ts, refusal = await self._start_stream(text)
            if ts is not None:
                return MessageRef(ts, self._channel)
        async with platform_errors():
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
        async with platform_errors():
            await self._client.chat_update(channel=self._channel, ts=ref.id, markdown_text=text)

    async def set_status(self, status: str | None) -> None:
        if not self._status_shown or not self._capabilities.thread_status:
            return
        assert self._thread_ts is not None
        try:
            await self._client.assistant_threads_setStatus(
                channel_id=self._channel, thread_ts=self._thread_ts, status=status or ""
            )
        except SlackApiError as error:
            if is_rate_limited(error):
                raise SurfaceRateLimited(retry_after(error)) from error
            log.warning(
                "thread status refused (%s); showing the thinking line in messages", error_code(error)
            )
            self._capabilities.thread_status = False
            raise SurfaceError(error_code(error)) from error

    async def close(self) -> None:
        """End any native stream still open (the streamer has written its final text by now)."""
        await self._stop_streams()

    async def offer_feedback(self, subject: FeedbackSubject) -> None:
        """👍 / 👎 under the finished answer: its last message again, with the buttons, in one chat.update."""
        await self._stop_streams()  # a message still streaming cannot be updated
        text = defuse_mentions(subject.text)
        async with platform_errors():
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
        try:
            await self._client.chat_appendStream(channel=self._channel, ts=ts, markdown_text=delta)
        except SlackApiError as error:
            if error_code(error) in STREAM_ENDED:
                log.info("native stream %s ended by Slack; continuing with edits", ts)
                del self._streams[ts]
                return False
            raise surface_error(error) from error
        return True

    async def _stop_stream(self, ts: str) -> None:
        if self._streams.pop(ts, None) is None:
            return
        try:
            await self._client.chat_stopStream(channel=self._channel, ts=ts)
        except SlackApiError as error:
            if error_code(error) not in STREAM_ENDED:
                log.warning("could not stop native stream %s: %s", ts, error_code(error))

    async def _stop_streams(self) -> None:
        for ts in list(self._streams):
            await self._stop_stream(ts)

    # --- confirmations (`core.tools.confirm`) ---------------------------------------------------------

    async def ask_confirmation(self, pending: PendingConfirmation) -> bool:
        return await self._questions.ask(self._channel, self._thread_ts, pending)

    async def show_decision(self, request: ConfirmationRequest, decision: Decision) -> None:
        await self._questions.decided(request, decision)


Respond = Callable[..., Awaitable[Any]]


class EphemeralSurface:
    """A private answer: kept while it is written, sent through the response_url at `close()`."""

    limits = SLACK_LIMITS

    def __init__(self, respond: Respond, channel: str):
        self._respond = respond
        self._channel = channel
        self._parts: list[str] = []
        self._ids = itertools.count(1)

    async def post(self, text: str) -> MessageRef:
        self._parts.append(defuse_mentions(text))
        return MessageRef(f"ephemeral-{next(self._ids)}", self._channel)

    async def edit(self, ref: MessageRef, text: str) -> None:
        index = int(ref.id.rsplit("-", 1)[-1]) - 1
        self._parts[index] = defuse_mentions(text)

    async def set_status(self, status: str | None) -> None:
        """The command's acknowledgement already says the answer is coming."""

    async def close(self) -> None:
        parts = self._parts
        if len(parts) > RESPONSE_URL_USES:
            # The response_url takes no more messages, and one message no more text: say so.
            room = self.limits.max_message_chars - len(PRIVATE_CUT) - len("\n```")
            last = close_fence(split_message(parts[RESPONSE_URL_USES - 1], room)[0])
            parts = [*parts[: RESPONSE_URL_USES - 1], last + PRIVATE_CUT]
        for part in parts:
            try:
                await self._respond(text=part, blocks=[markdown_block(part)], response_type="ephemeral")
            except Exception as error:
                log.warning("could not send a private answer: %s", type(error).__name__)
                return


def defuse_mentions(text: str) -> str:
    """Whatever the model writes, a reply never notifies a whole channel or a user group."""
    return _BROADCAST.sub(lambda m: "@" + (m.group(2) or m.group(1)), text)


def markdown_block(text: str) -> dict[str, str]:
    """A block that renders standard Markdown (for places that take blocks, not `markdown_text`)."""
    return {"type": "markdown", "text": text}
