"""Which conversation a Slack message belongs to, its text as the model should read it, and the
earlier messages of a thread or channel that come along as context.

Keys: a thread is a conversation (`thread` = the thread's root ts); a top-level DM message belongs to
the DM's running conversation (`thread` = ""). A mention at the top of a channel is answered in its
own thread, so it starts a conversation named after its own ts.
"""

from __future__ import annotations

import html
import logging
import re
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bots.slack.api import busy_note, error_code
from bots.slack.files import SlackFiles
from core.history import with_quoted
from core.models import ConversationKey, HistoryMessage
from core.tools.base import FoundMessage, SearchUnavailable

log = logging.getLogger(__name__)

PLATFORM = "slack"
# Earlier messages of a thread sent along as context (one conversations.replies call fetches them).
THREAD_CONTEXT_MESSAGES = 40
THREAD_FETCH_LIMIT = 200
# A thread is read up to this many pages deep (1,000 messages), to reach its latest messages.
THREAD_FETCH_PAGES = 5
# Message subtypes that are someone writing something; joins, topic changes and the like are not.
PROMPT_SUBTYPES = frozenset({None, "file_share", "thread_broadcast"})
PEOPLE_CACHE_SIZE = 2000
PEOPLE_NAME_TTL_S = 3600.0

_USER = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")
_CHANNEL = re.compile(r"<#[CG][A-Z0-9]+\|([^>]*)>")
_SPECIAL = re.compile(r"<!(here|channel|everyone)(?:\|[^>]*)?>")
_LINK = re.compile(r"<((?:https?|mailto):[^|>]+)(?:\|([^>]+))?>")


def conversation_key(team: str, channel: str, thread_ts: str | None) -> ConversationKey:
    return ConversationKey(PLATFORM, team, channel, thread_ts or "")


def is_dm(channel: str) -> bool:
    return channel.startswith("D")


class People:
    """Display names by user id, from `users.info`, remembered for a while (a bounded cache): someone
    who renames themselves is called by the new name within PEOPLE_NAME_TTL_S."""

    def __init__(self, client: AsyncWebClient, *, clock: Callable[[], float] = time.monotonic):
        self._client = client
        self._clock = clock
        self._names: dict[str, tuple[str, float]] = {}  # user -> (name, when it was looked up)

    async def name(self, user: str) -> str:
        remembered = self._names.get(user)
        if remembered is not None and self._clock() - remembered[1] < PEOPLE_NAME_TTL_S:
            return remembered[0]
        try:
            response = await self._client.users_info(user=user)
        except SlackApiError as error:
            log.info("no name for %s (%s)", user, error_code(error))
            return remembered[0] if remembered is not None else user
        info = response["user"]
        profile = info.get("profile") or {}
        name = profile.get("display_name") or profile.get("real_name") or info.get("name") or user
        self._names.pop(user, None)
        if len(self._names) >= PEOPLE_CACHE_SIZE:
            self._names.pop(next(iter(self._names)))
        self._names[user] = (name, self._clock())
        return name


async def readable_text(text: str, bot_user_id: str, people: People) -> str:
    """Slack's markup as plain words: the bot's own mention dropped, people and channels by name."""
    text = text.replace(f"<@{bot_user_id}>", "")
    names = {user: await people.name(user) for user in dict.fromkeys(_USER.findall(text))}
    # A function, not a template: names are the people's own text (a backslash in one is no escape).
    text = _USER.sub(lambda m: f"@{names[m.group(1)]}", text)
    text = _CHANNEL.sub(r"#\1", text)
    text = _SPECIAL.sub(r"@\1", text)
    text = _LINK.sub(lambda m: f"{m.group(2)} ({m.group(1)})" if m.group(2) else m.group(1), text)
    return html.unescape(text).strip()


def _shared(message: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The messages shared into this one (Slack's "Share message" puts them in `attachments`)."""
    return [
        item for item in message.get("attachments") or () if item.get("is_share") or item.get("is_msg_unfurl")
    ]


def shared_files(message: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The message's files, and those of the messages shared into it."""
    return [*(message.get("files") or ()), *(f for item in _shared(message) for f in item.get("files") or ())]


async def with_shared(message: Mapping[str, Any], text: str, bot_user_id: str, people: People) -> str:
    """`text`, followed by what was shared into the message, with who wrote it."""
    quoted = []
    for item in _shared(message):
        author = item.get("author_name") or (
            await people.name(str(item["author_id"])) if item.get("author_id") else ""
        )
        body = await readable_text(str(item.get("text") or item.get("fallback") or ""), bot_user_id, people)
        quoted.append((author, body))
    return with_quoted(text, "shared message", quoted)


async def author_of(message: Mapping[str, Any], bot_user_id: str, people: People) -> str:
    """Who wrote `message`: "Seed" for the bot's own, else the person's (or app's) name."""
    user = str(message.get("user") or message.get("bot_id") or "someone")
    return "Seed" if user == bot_user_id else await people.name(user)


async def history_message(
    message: Mapping[str, Any], *, bot_user_id: str, people: People, files: SlackFiles
) -> HistoryMessage:
    text = await readable_text(str(message.get("text") or ""), bot_user_id, people)
    return HistoryMessage(
        role="assistant" if message.get("user") == bot_user_id else "user",
        author=await author_of(message, bot_user_id, people),
        text=await with_shared(message, text, bot_user_id, people),
        message_id=str(message.get("ts")),
        attachments=files.sources(shared_files(message)),
    )


def _said_by_a_person(message: Mapping[str, Any]) -> bool:
    return (
        bool(message.get("user")) and not message.get("bot_id") and message.get("subtype") in PROMPT_SUBTYPES
    )


async def read_thread(
    client: AsyncWebClient,
    *,
    channel: str,
    thread_ts: str,
    keep: int,
    wanted: Callable[[Mapping[str, Any]], bool] = lambda message: True,
) -> list[Mapping[str, Any]]:
    """The latest `keep` wanted messages of a thread, oldest first; raises SlackApiError.

    Slack pages a thread from its root onwards, so the latest messages of a long thread are on its last
    page: read up to THREAD_FETCH_PAGES pages (each page repeats the root, hence the ts-keyed dict).
    """
    found: dict[str, Mapping[str, Any]] = {}
    cursor = None
    for _ in range(THREAD_FETCH_PAGES):
        response = await client.conversations_replies(
            channel=channel, ts=thread_ts, limit=THREAD_FETCH_LIMIT, cursor=cursor
        )
        found.update((str(m.get("ts")), m) for m in response.get("messages") or [] if wanted(m))
        cursor = (response.get("response_metadata") or {}).get("next_cursor")
        if not cursor:
            break
    return sorted(found.values(), key=lambda m: float(m.get("ts") or 0))[-keep:]


async def read_channel(
    client: AsyncWebClient, *, channel: str, limit: int, oldest: float | None = None
) -> list[Mapping[str, Any]]:
    """The latest `limit` messages of a channel (none older than `oldest`), oldest first; raises
    SlackApiError."""
    since = str(oldest) if oldest is not None else None
    response = await client.conversations_history(channel=channel, limit=limit, oldest=since)
    return list(reversed(response.get("messages") or []))


async def thread_context(
    client: AsyncWebClient,
    *,
    channel: str,
    thread_ts: str,
    before_ts: str,
    bot_user_id: str,
    people: People,
    files: SlackFiles,
) -> list[HistoryMessage]:
    """The thread's earlier human messages (the root included), oldest first, at most
    THREAD_CONTEXT_MESSAGES of the latest. The bot's own replies are in the store already."""
    try:
        earlier = await read_thread(
            client,
            channel=channel,
            thread_ts=thread_ts,
            keep=THREAD_CONTEXT_MESSAGES,
            wanted=lambda m: float(m.get("ts") or 0) < float(before_ts) and _said_by_a_person(m),
        )
    except SlackApiError as error:
        log.warning(
            "could not read thread %s in %s (%s); answering without it", thread_ts, channel, error_code(error)
        )
        return []
    return [await history_message(m, bot_user_id=bot_user_id, people=people, files=files) for m in earlier]


class ChannelSearch:
    """The `search_conversation` tool's reach on Slack: the thread the question was asked in (or the
    channel, for a question outside a thread), never another conversation the asker may not see."""

    def __init__(
        self, client: AsyncWebClient, *, channel: str, thread_ts: str | None, bot_user_id: str, people: People
    ) -> None:
        self._client, self._channel, self._thread_ts = client, channel, thread_ts
        self._bot_user_id, self._people = bot_user_id, people

    async def search(self, query: str | None, since: datetime | None, limit: int) -> list[FoundMessage]:
        oldest = since.timestamp() if since is not None else 0.0
        try:
            if self._thread_ts:
                messages = await read_thread(
                    self._client,
                    channel=self._channel,
                    thread_ts=self._thread_ts,
                    keep=THREAD_FETCH_LIMIT * THREAD_FETCH_PAGES,
                )
            else:
                messages = await read_channel(
                    self._client, channel=self._channel, limit=THREAD_FETCH_LIMIT, oldest=oldest
                )
        except SlackApiError as error:
            reason = busy_note(error) or f"Slack would not show this conversation ({error_code(error)})."
            raise SearchUnavailable(reason) from None
        found = []
        for message in reversed(messages):  # newest first
            if float(message.get("ts") or 0) < oldest:
                continue
            text = await readable_text(str(message.get("text") or ""), self._bot_user_id, self._people)
            if query and query.lower() not in text.lower():
                continue
            author = await author_of(message, self._bot_user_id, self._people)
            found.append(FoundMessage(author, datetime.fromtimestamp(float(message["ts"]), UTC), text))
            if len(found) >= limit:
                break
        return found
