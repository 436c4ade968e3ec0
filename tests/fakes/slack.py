"""A fake Slack workspace on 127.0.0.1: the Web API with state, private files, and event delivery.

The real slack-sdk / slack-bolt talk to it exactly as to Slack: `SLACK_API_URL` points at
`/api/`, `apps.connections.open` hands out a websocket URL of this server for Socket Mode, and in
HTTP mode events, slash commands and shortcuts are POSTed to the app with real signatures.

What it enforces, as Slack does:
- tokens: `invalid_auth` for unknown tokens, `not_allowed_token_type` for the wrong kind;
- scopes: without `files:read`, `files.info` answers `missing_scope` and file downloads get the
  HTML login page (HTTP 200) instead of the file;
- lengths: `text` up to 40,000 characters, `markdown_text` (and markdown blocks) up to 12,000;
- rate limits per method (Slack's tiers per minute, tightened by tests): HTTP 429, a `Retry-After`
  header in whole seconds and `{"ok": false, "error": "ratelimited"}`; with `enforce_tiers()`, the
  write methods are token buckets per workspace (chat.postMessage per channel) with bursts instead,
  as Slack counts them, so a test sees every 429 a busy workspace would;
- native streaming: `chat.startStream` needs a thread and, outside DMs, the recipient; streams
  expire (`message_not_in_streaming_state`), and a workspace can refuse streaming altogether;
- a response_url takes at most five messages (`used_url` after that);
- file uploads as `files_upload_v2` makes them: `files.getUploadURLExternal` (needs `files:write`),
  the bytes POSTed to the URL it gave (their length must be the one announced), then
  `files.completeUploadExternal` shares them in `channel_id`, where the bot must be a member;
  `conversations.open` (needs `im:write`) opens the DM with a person;
- the 3-second acknowledgement window for every delivery (see slack_delivery.py).

    async with FakeSlack() as slack:
        alice = slack.add_user("alice")
        general = slack.add_channel("general", members=[alice])
        ... start the app with SLACK_API_URL=slack.api_url ...
        ts = await slack.post(alice, general, f"<@{BOT_USER_ID}> hello")
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from bots.slack.scopes import BOT_SCOPES
from tests.fakes.loopback import serve_on_loopback
from tests.fakes.slack_delivery import (
    Delivery,
    HttpEventSender,
    Kind,
    SocketModeHub,
    deliver_with_retries,
    retry,
)

BOT_TOKEN = "xoxb-fake-bot-token"
APP_TOKEN = "xapp-fake-app-token"
SIGNING_SECRET = "fake-signing-secret"
TEAM_ID = "T0FAKE"
BOT_USER_ID = "U0BOT"
BOT_ID = "B0BOT"
APP_ID = "A0SEED"
MAX_TEXT = 40_000
MAX_MARKDOWN = 12_000
ACK_TIMEOUT_S = 3.0
STREAM_TTL_S = 300.0
RESPONSE_URL_USES = 5  # a slash command's response_url takes five messages (within 30 minutes)
DEFAULT_SCOPES = BOT_SCOPES  # the workspace granted what the manifest asks for
# Requests per minute by method, as Slack documents them (tier 1: 1+, tier 2: 20+, tier 3: 50+, tier 4: 100+).
TIERS_PER_MINUTE = {
    "apps.connections.open": 100,  # tier 1, but allowed a burst: every test reconnects
    "auth.test": 100,
    "chat.postMessage": 60,  # "special": about one per second per channel
    "chat.update": 50,
    "chat.postEphemeral": 100,
    "chat.startStream": 50,
    "chat.appendStream": 100,
    "chat.stopStream": 20,
    "conversations.replies": 50,
    "conversations.history": 50,
    "users.info": 100,
    "files.info": 100,
    "assistant.threads.setStatus": 100,
    "assistant.threads.setTitle": 50,
    "assistant.threads.setSuggestedPrompts": 50,
}
# Slack's published tiers for the write methods a reply uses, as (requests per minute, burst), per
# workspace; chat.postMessage: one a second per channel with short bursts. Slack publishes no burst
# sizes: these are modest, and the bot must live within them.
TIER_BUCKETS: dict[str, tuple[float, float]] = {
    "chat.update": (50, 10),  # Tier 3
    "chat.appendStream": (100, 20),  # Tier 4
    "chat.startStream": (20, 5),  # Tier 2
    "chat.stopStream": (20, 5),  # Tier 2
    "assistant.threads.setStatus": (50, 10),  # special, about Tier 3
    "chat.postMessage": (60, 3),  # per channel
}
PER_CHANNEL_BUCKETS = frozenset({"chat.postMessage"})
LOGIN_PAGE = (
    "<!DOCTYPE html><html><head><title>Slack</title></head><body>"
    "<h1>Sign in to Fake Workspace</h1><form action='/signin'></form></body></html>"
)


class SlackError(Exception):
    def __init__(self, error: str, status: int = 200, **extra: Any):
        super().__init__(error)
        self.error, self.status, self.extra = error, status, extra


@dataclass
class Message:
    channel: str
    ts: str
    text: str
    user: str | None = None
    bot_id: str | None = None
    thread_ts: str | None = None
    files: list[dict[str, Any]] = field(default_factory=list)
    attachments: list[dict[str, Any]] = field(default_factory=list)  # e.g. a shared message
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)  # task cards of a stream, by id
    subtype: str | None = None
    markdown: bool = False  # rendered as standard Markdown: posted with markdown_text or markdown blocks
    blocks: list[dict[str, Any]] = field(default_factory=list)  # Block Kit blocks, as sent
    streaming: bool = False
    stream_started: float = 0.0
    edits: int = 0

    def wire(self, *, channel: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {"type": "message", "ts": self.ts, "text": self.text}
        for key in ("user", "bot_id", "thread_ts", "subtype"):
            if getattr(self, key) is not None:
                data[key] = getattr(self, key)
        if self.bot_id == BOT_ID:
            data["app_id"] = APP_ID
        if self.files:
            data["files"] = self.files
        if self.attachments:
            data["attachments"] = self.attachments
        if self.blocks:
            data["blocks"] = self.blocks
        if self.edits:
            data["edited"] = {"user": self.user or "", "ts": self.ts}
        if channel:
            data["channel"] = self.channel
        return data


@dataclass
class Channel:
    id: str
    name: str
    is_im: bool = False
    members: set[str] = field(default_factory=set)
    messages: list[Message] = field(default_factory=list)

    @property
    def channel_type(self) -> str:
        return "im" if self.is_im else "channel"


@dataclass
class Ephemeral:
    channel: str
    user: str
    text: str
    via: str  # "chat.postEphemeral", "ack" or "response_url"


@dataclass
class Call:
    method: str
    args: dict[str, Any]
    error: str | None = None
    status: int = 200


@dataclass
class StoredFile:
    info: dict[str, Any]
    data: bytes
    redirect_to: str | None = None  # Slack's file host answers with a redirect there


@dataclass
class Upload:
    """A file the app uploaded: announced, then its bytes, then shared (or never completed)."""

    id: str
    filename: str
    length: int
    data: bytes | None = None
    title: str | None = None
    channel: str | None = None  # where files.completeUploadExternal shared it
    initial_comment: str | None = None


class FakeSlack:
    def __init__(self, *, ack_timeout_s: float = ACK_TIMEOUT_S, stream_ttl_s: float = STREAM_TTL_S):
        self.ack_timeout_s = ack_timeout_s
        self.stream_ttl_s = stream_ttl_s
        self.scopes: set[str] = set(DEFAULT_SCOPES)
        self.streaming_refusal: str | None = None  # e.g. "feature_not_enabled": chat.startStream refuses
        self.task_cards_refusal: str | None = None  # e.g. "invalid_chunks": task_update chunks refused
        self.status_refusal: str | None = None  # assistant.threads.setStatus refuses with this error
        self.echo_events = True  # the bot's own posts and edits come back as events, like in Slack
        self.auto_retry = True  # unacknowledged events are redelivered
        self.users: dict[str, dict[str, Any]] = {}
        self.channels: dict[str, Channel] = {}
        self.files: dict[str, StoredFile] = {}
        self.uploads: dict[str, Upload] = {}
        self.calls: list[Call] = []
        self.ephemerals: list[Ephemeral] = []
        self.statuses: list[tuple[str, str, str]] = []  # (channel, thread_ts, status)
        self.titles: list[tuple[str, str, str]] = []
        self.suggested_prompts: list[tuple[str, str, list[dict[str, str]]]] = []
        self.downloads: list[tuple[str, bool]] = []  # (path, sent the bot token)
        self.rate_limits: dict[str, tuple[int, float]] = {m: (n, 60.0) for m, n in TIERS_PER_MINUTE.items()}
        self.socket = SocketModeHub(ack_timeout_s)
        self.http: HttpEventSender | None = None
        self._failures: dict[str, deque[SlackError]] = defaultdict(deque)
        self._recent: dict[str, deque[float]] = defaultdict(deque)
        self.tier_buckets: dict[str, tuple[float, float]] = {}
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}  # (method, scope) -> (tokens, at)
        self._last_us = 0
        self._ids = itertools.count(1)
        self._response_urls: dict[str, tuple[str, str]] = {}
        self._response_url_uses: defaultdict[str, int] = defaultdict(int)
        self._background: set[asyncio.Task[Any]] = set()
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.users[BOT_USER_ID] = _user(BOT_USER_ID, "seed", is_bot=True)

    # --- lifecycle ---------------------------------------------------------------------------------

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.origin}/api/"

    async def __aenter__(self) -> FakeSlack:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_get("/link", self.socket.handle)
        app.router.add_get("/files-pri/{key}/{name:.*}", self._file)
        app.router.add_post("/respond/{key}", self._respond)
        app.router.add_post("/upload/{file_id}", self._upload)
        self._runner, self.port = await serve_on_loopback(app)
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        await self.socket.close()
        if self.http is not None:
            await self.http.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def use_http(self, url: str, signing_secret: str = SIGNING_SECRET) -> HttpEventSender:
        """From now on deliver to the app's Request URL (HTTP mode) instead of Socket Mode."""
        self.http = HttpEventSender(url, signing_secret, self.ack_timeout_s)
        return self.http

    # --- workspace state ---------------------------------------------------------------------------

    def add_user(self, name: str, *, is_bot: bool = False, bot_id: str | None = None) -> str:
        user_id = f"U{next(self._ids):04d}{name.upper()[:4]}"
        self.users[user_id] = _user(user_id, name, is_bot=is_bot, bot_id=bot_id)
        return user_id

    def add_channel(self, name: str, *, members: Iterable[str] = (), bot_member: bool = True) -> str:
        channel_id = f"C{next(self._ids):04d}{name.upper()[:4]}"
        people = set(members) | ({BOT_USER_ID} if bot_member else set())
        self.channels[channel_id] = Channel(channel_id, name, members=people)
        return channel_id

    def open_dm(self, user: str) -> str:
        for channel in self.channels.values():
            if channel.is_im and user in channel.members:
                return channel.id
        channel_id = f"D{next(self._ids):04d}"
        self.channels[channel_id] = Channel(channel_id, "", is_im=True, members={user, BOT_USER_ID})
        return channel_id

    def add_file(
        self,
        name: str,
        data: bytes,
        mimetype: str,
        *,
        owner: str,
        url_private: str | None = None,
        redirect_to: str | None = None,
        check_file_info: bool = False,
    ) -> dict[str, Any]:
        """A file as it appears in a message event (`check_file_info`: only its id, like Slack
        Connect channels); `url_private` may point anywhere, and the download may be redirected
        (to test where the token goes)."""
        file_id = f"F{next(self._ids):04d}"
        url = url_private or f"{self.origin}/files-pri/{TEAM_ID}-{file_id}/{name}"
        info = {
            "id": file_id,
            "name": name,
            "title": name,
            "mimetype": mimetype,
            "filetype": name.rsplit(".", 1)[-1],
            "size": len(data),
            "mode": "hosted",
            "user": owner,
            "url_private": url,
            "url_private_download": url,
        }
        self.files[file_id] = StoredFile(info, data, redirect_to)
        if check_file_info:
            return {"id": file_id, "mode": "hosted", "file_access": "check_file_info", "created": 0}
        return dict(info)

    def add_message(
        self, channel: str, text: str, *, user: str = BOT_USER_ID, thread_ts: str | None = None
    ) -> Message:
        """A message from before the app was running (no event); the app's own are still streaming,
        as a process killed mid-answer leaves them."""
        own = user == BOT_USER_ID
        message = Message(
            channel, self._ts(), text, user=user, bot_id=BOT_ID if own else None, thread_ts=thread_ts
        )
        message.markdown, message.streaming, message.stream_started = own, own, time.monotonic()
        self.channels[channel].messages.append(message)
        return message

    def set_rate_limit(self, method: str, calls: int, window_s: float) -> None:
        self.rate_limits[method] = (calls, window_s)
        self._recent[method].clear()

    def enforce_tiers(self, buckets: dict[str, tuple[float, float]] | None = None) -> None:
        """From now on these methods are token buckets of (requests per minute, burst), per workspace
        (per channel for `PER_CHANNEL_BUCKETS`), in place of their sliding windows."""
        self.tier_buckets = dict(TIER_BUCKETS if buckets is None else buckets)
        self._buckets.clear()

    def rate_limited_calls(self) -> list[Call]:
        return [call for call in self.calls if call.status == 429]

    def fail_next(self, method: str, error: str, *, status: int = 200, times: int = 1, **extra: Any) -> None:
        """The next `times` calls of `method` fail (status 429 with `retry_after=` for a 429)."""
        for _ in range(times):
            self._failures[method].append(SlackError(error, status, **extra))

    def expire_streams(self) -> None:
        """Every open native stream times out now (Slack ends them after a few minutes)."""
        for channel in self.channels.values():
            for message in channel.messages:
                if message.streaming:
                    message.stream_started = -math.inf

    # --- reading state (for assertions) ------------------------------------------------------------

    def message(self, channel: str, ts: str) -> Message | None:
        return next((m for m in self.channels[channel].messages if m.ts == ts), None)

    def thread(self, channel: str, thread_ts: str) -> list[Message]:
        return [m for m in self.channels[channel].messages if m.ts == thread_ts or m.thread_ts == thread_ts]

    def bot_messages(self, channel: str, thread_ts: str | None = None) -> list[Message]:
        return [
            m
            for m in self.channels[channel].messages
            if m.bot_id == BOT_ID and (thread_ts is None or m.thread_ts == thread_ts)
        ]

    def calls_to(self, method: str) -> list[Call]:
        return [call for call in self.calls if call.method == method]

    def ephemerals_for(self, user: str) -> list[Ephemeral]:
        return [e for e in self.ephemerals if e.user == user]

    @property
    def deliveries(self) -> list[Delivery]:
        return self.socket.deliveries + (self.http.deliveries if self.http else [])

    async def echoes_delivered(self) -> None:
        """Until every event the app's own calls caused has been delivered (and acknowledged)."""
        for _ in range(100):  # each round may start new echoes; a few rounds settle them all
            if not self._background:
                return
            await asyncio.wait(set(self._background), timeout=5.0)
        raise AssertionError("echo events kept coming")

    async def wait_for(self, predicate: Callable[[], Any], within_s: float = 10.0) -> Any:
        """Poll until `predicate()` is truthy (returns it) or fail after `within_s` seconds."""
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            result = predicate()
            if result:
                return result
            await asyncio.sleep(0.01)
        raise AssertionError(f"condition not met within {within_s} s")

    # --- what people do ----------------------------------------------------------------------------

    async def post(
        self,
        user: str,
        channel: str,
        text: str,
        *,
        thread_ts: str | None = None,
        files: Iterable[dict[str, Any]] = (),
        sharing: tuple[str, str] | None = None,
        connection: int | None = None,
    ) -> str:
        """Someone posts a message: Slack stores it and sends `message` (and `app_mention`) events.
        `sharing` (channel, ts) shares that message into this one, as "Share message" does. Over
        Socket Mode the events go to the app's connections in turn, or all to `connection`."""
        author = self.users[user]
        message = Message(
            channel,
            self._ts(),
            text,
            user=user,
            thread_ts=thread_ts,
            files=list(files),
            attachments=[self._share(*sharing)] if sharing else [],
            bot_id=author.get("profile", {}).get("bot_id"),
            subtype="file_share" if files else None,
        )
        self.channels[channel].messages.append(message)
        event = self._message_event(message)
        events = [event]
        if f"<@{BOT_USER_ID}>" in text and not self.channels[channel].is_im:
            mention = {k: v for k, v in event.items() if k not in ("channel_type", "subtype")}
            events.append({**mention, "type": "app_mention"})
        for one in events:
            await self.send_event(one, connection=connection)
        return message.ts

    def _share(self, channel: str, ts: str) -> dict[str, Any]:
        """How Slack attaches a shared message: its text, author and files, marked as a share."""
        original = self.message(channel, ts)
        assert original is not None and original.user is not None
        return {
            "is_share": True,
            "is_msg_unfurl": True,
            "channel_id": channel,
            "ts": ts,
            "author_id": original.user,
            "text": original.text,
            "fallback": f"[{original.text}]",
            "files": original.files,
        }

    async def delete(self, channel: str, ts: str) -> None:
        """Someone deletes a message; a thread parent with replies becomes a tombstone instead."""
        message = self.message(channel, ts)
        assert message is not None
        previous = message.wire()
        if any(m.thread_ts == ts and m.ts != ts for m in self.channels[channel].messages):
            message.subtype, message.text, message.files = "tombstone", "This message was deleted.", []
            event = self._change_event(channel, message, previous)
        else:
            self.channels[channel].messages.remove(message)
            event = {
                "type": "message",
                "subtype": "message_deleted",
                "hidden": True,
                "channel": channel,
                "ts": self._ts(),
                "deleted_ts": ts,
                "previous_message": previous,
                "channel_type": self.channels[channel].channel_type,
            }
        await self.send_event(event)

    async def edit(self, channel: str, ts: str, text: str) -> None:
        message = self.message(channel, ts)
        assert message is not None
        previous = message.wire()
        message.text, message.edits = text, message.edits + 1
        await self.send_event(self._change_event(channel, message, previous))

    async def start_assistant_thread(self, user: str) -> tuple[str, str]:
        """Someone opens the app's assistant view: a new thread in their DM with the app."""
        dm = self.open_dm(user)
        root = Message(dm, self._ts(), "", user=BOT_USER_ID, bot_id=BOT_ID, subtype="assistant_app_thread")
        self.channels[dm].messages.append(root)
        await self.send_event(
            {
                "type": "assistant_thread_started",
                "assistant_thread": {
                    "user_id": user,
                    "context": {"channel_id": "", "team_id": TEAM_ID, "enterprise_id": None},
                    "channel_id": dm,
                    "thread_ts": root.ts,
                },
                "event_ts": self._ts(),
            }
        )
        return dm, root.ts

    async def slash(self, user: str, channel: str, text: str, command: str = "/seed") -> Delivery:
        key = self._response_url_key(channel, user)
        payload = {
            "token": "verification-token",
            "team_id": TEAM_ID,
            "team_domain": "fake",
            "channel_id": channel,
            "channel_name": self.channels[channel].name or "directmessage",
            "user_id": user,
            "user_name": self.users[user]["name"],
            "command": command,
            "text": text,
            "api_app_id": APP_ID,
            "is_enterprise_install": "false",
            "response_url": f"{self.origin}/respond/{key}",
            "trigger_id": f"trigger-{key}",
        }
        return await self._deliver("slash_commands", payload, user=user, channel=channel)

    async def shortcut(self, user: str, channel: str, message_ts: str, callback_id: str) -> Delivery:
        message = self.message(channel, message_ts)
        assert message is not None
        key = self._response_url_key(channel, user)
        payload = {
            "type": "message_action",
            "token": "verification-token",
            "action_ts": self._ts(),
            "team": {"id": TEAM_ID, "domain": "fake"},
            "user": {"id": user, "name": self.users[user]["name"], "team_id": TEAM_ID},
            "channel": {"id": channel, "name": self.channels[channel].name},
            "callback_id": callback_id,
            "trigger_id": f"trigger-{key}",
            "message_ts": message_ts,
            "message": message.wire(),
            "response_url": f"{self.origin}/respond/{key}",
            "api_app_id": APP_ID,
            "is_enterprise_install": False,
        }
        return await self._deliver("interactive", payload, user=user, channel=channel)

    async def click(self, user: str, channel: str, message_ts: str, action_id: str, value: str) -> Delivery:
        """`user` presses a Block Kit button of a message (a `button`, or one of `feedback_buttons`): a
        `block_actions` interactive payload. Only an element the message shows can be pressed."""
        message = self.message(channel, message_ts)
        assert message is not None
        [(block_id, element)] = [
            (block.get("block_id", "b"), element)
            for block in message.blocks
            for element in block.get("elements", [])
            if isinstance(element, dict) and element.get("action_id") == action_id
        ]
        values = [element.get("value")]
        if element["type"] == "feedback_buttons":
            values = [element["positive_button"]["value"], element["negative_button"]["value"]]
        assert value in values, f"{value!r} is not a value of {action_id}"
        payload = {
            "type": "block_actions",
            "token": "verification-token",
            "team": {"id": TEAM_ID, "domain": "fake"},
            "user": {"id": user, "name": self.users[user]["name"], "team_id": TEAM_ID},
            "channel": {"id": channel, "name": self.channels[channel].name},
            "container": {"type": "message", "message_ts": message_ts, "channel_id": channel},
            "message": message.wire(),
            "trigger_id": f"trigger-{self._ts()}",
            "response_url": f"{self.origin}/respond/{self._response_url_key(channel, user)}",
            "api_app_id": APP_ID,
            "actions": [
                {
                    "type": element["type"],
                    "action_id": action_id,
                    "block_id": block_id,
                    "value": value,
                    "action_ts": self._ts(),
                }
            ],
            "is_enterprise_install": False,
        }
        return await self._deliver("interactive", payload, user=user, channel=channel)

    async def send_event(
        self, event: dict[str, Any], *, event_id: str | None = None, connection: int | None = None
    ) -> Delivery:
        """Wrap an event in its `event_callback` envelope and deliver it (retrying if unacked), over
        Socket Mode to `connection` or the next connection in turn."""
        payload = self.event_callback(event, event_id=event_id)
        return await self._deliver("events_api", payload, connection=connection)

    def event_callback(self, event: dict[str, Any], *, event_id: str | None = None) -> dict[str, Any]:
        return {
            "token": "verification-token",
            "team_id": TEAM_ID,
            "api_app_id": APP_ID,
            "event": event,
            "type": "event_callback",
            "event_id": event_id or f"Ev{next(self._ids):06d}",
            "event_time": int(time.time()),
            "authorizations": [
                {"enterprise_id": None, "team_id": TEAM_ID, "user_id": BOT_USER_ID, "is_bot": True}
            ],
            "is_ext_shared_channel": False,
        }

    async def redeliver(self, delivery: Delivery) -> Delivery:
        """Deliver the same payload again as Slack's next retry (same event_id, higher retry number),
        over Socket Mode on the next live connection after the one it went to."""
        return await retry(self._transport(), delivery)

    # --- delivery ----------------------------------------------------------------------------------

    def _transport(self) -> SocketModeHub | HttpEventSender:
        if self.http is not None:
            return self.http
        return self.socket

    async def _deliver(
        self,
        kind: Kind,
        payload: dict[str, Any],
        *,
        user: str | None = None,
        channel: str | None = None,
        connection: int | None = None,
    ) -> Delivery:
        transport = self._transport()
        assert connection is None or transport is self.socket, "connections are Socket Mode's"
        delivery = await deliver_with_retries(
            transport, kind, payload, retries=self.auto_retry, connection=connection
        )
        text = (delivery.ack_payload or {}).get("text")
        if kind != "events_api" and text and user and channel:
            self.ephemerals.append(Ephemeral(channel, user, text, "ack"))
        return delivery

    def _echo(self, event: dict[str, Any]) -> None:
        """Send an event caused by the app itself without making the app's API call wait for it."""
        if not self.echo_events or not (self.socket.is_connected or self.http is not None):
            return
        task = asyncio.create_task(self._quietly(self.send_event(event)))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    @staticmethod
    async def _quietly(coroutine: Any) -> None:
        try:
            await coroutine
        except (RuntimeError, OSError):
            pass  # the app disconnected meanwhile: Slack would drop the echo too

    # --- Web API -----------------------------------------------------------------------------------

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args = await _arguments(request)
        call = Call(method, args)
        self.calls.append(call)
        try:
            self._check_rate(method, args)
            token = _token(request, args)
            if method == "apps.connections.open":
                return web.json_response(self._connections_open(token))
            if token != BOT_TOKEN:
                raise SlackError("not_allowed_token_type" if token == APP_TOKEN else "invalid_auth")
            failures = self._failures.get(method)
            if failures:
                raise failures.popleft()
            handler = getattr(self, "_m_" + method.replace(".", "_"), None)
            if handler is None:
                raise SlackError("unknown_method", 404)
            scopes = {"X-OAuth-Scopes": ",".join(sorted(self.scopes))}
            return web.json_response({"ok": True, **handler(args)}, headers=scopes)
        except SlackError as error:
            call.error, call.status = error.error, error.status
            headers = {}
            if error.status == 429:
                headers["Retry-After"] = str(error.extra.pop("retry_after", 1))
            body = {"ok": False, "error": error.error, **error.extra}
            return web.json_response(body, status=error.status, headers=headers)

    def _check_rate(self, method: str, args: dict[str, Any]) -> None:
        if method in self.tier_buckets:
            self._take_from_bucket(method, args)
            return
        limit = self.rate_limits.get(method)
        if limit is None:
            return
        calls, window = limit
        now = time.monotonic()
        recent = self._recent[method]
        while recent and recent[0] <= now - window:
            recent.popleft()
        if len(recent) >= calls:
            raise SlackError("ratelimited", 429, retry_after=max(1, math.ceil(recent[0] + window - now)))
        recent.append(now)

    def _take_from_bucket(self, method: str, args: dict[str, Any]) -> None:
        per_minute, burst = self.tier_buckets[method]
        per_s = per_minute / 60.0
        channel = str(args.get("channel") or args.get("channel_id"))
        scope = channel if method in PER_CHANNEL_BUCKETS else TEAM_ID
        now = time.monotonic()
        tokens, at = self._buckets.get((method, scope), (burst, now))
        tokens = min(burst, tokens + (now - at) * per_s)
        if tokens < 1:
            self._buckets[(method, scope)] = (tokens, now)
            raise SlackError("ratelimited", 429, retry_after=max(1, math.ceil((1 - tokens) / per_s)))
        self._buckets[(method, scope)] = (tokens - 1, now)

    def _connections_open(self, token: str | None) -> dict[str, Any]:
        if token == BOT_TOKEN:
            raise SlackError("not_allowed_token_type")
        if token != APP_TOKEN:
            raise SlackError("invalid_auth")
        ws = self.origin.replace("http://", "ws://")
        return {"ok": True, "url": f"{ws}/link?ticket=t{next(self._ids)}&app_id={APP_ID}"}

    def _m_auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": "https://fake.slack.com/",
            "team": "Fake Workspace",
            "user": "seed",
            "team_id": TEAM_ID,
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }

    def _m_users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user = self.users.get(str(args.get("user")))
        if user is None:
            raise SlackError("user_not_found")
        return {"user": user}

    def _m_chat_postMessage(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._writable(args)
        text, markdown = _message_text(args)
        thread_ts = args.get("thread_ts") or None
        message = Message(channel.id, self._ts(), text, user=BOT_USER_ID, bot_id=BOT_ID, thread_ts=thread_ts)
        message.markdown, message.blocks = markdown, _blocks(args)
        channel.messages.append(message)
        self._echo(self._message_event(message))
        return {"channel": channel.id, "ts": message.ts, "message": message.wire()}

    def _m_chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        channel, message = self._own_message(args)
        if message.streaming and not self._stream_expired(message):
            raise SlackError("cant_update_message")
        message.streaming = False
        previous = message.wire()
        message.text, message.markdown = _message_text(args)
        message.blocks = _blocks(args)
        message.edits += 1
        self._echo(self._change_event(channel.id, message, previous))
        return {"channel": channel.id, "ts": message.ts, "text": message.text}

    def _m_chat_postEphemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._writable(args)
        user = str(args.get("user", ""))
        if user not in self.users:
            raise SlackError("user_not_found")
        text, _ = _message_text(args)
        self.ephemerals.append(Ephemeral(channel.id, user, text, "chat.postEphemeral"))
        return {"message_ts": self._ts()}

    def _m_chat_startStream(self, args: dict[str, Any]) -> dict[str, Any]:
        if self.streaming_refusal:
            raise SlackError(self.streaming_refusal)
        channel = self._writable(args)
        thread_ts = args.get("thread_ts")
        if not thread_ts:
            raise SlackError("invalid_arguments", detail="thread_ts is required")
        if not channel.is_im:
            if not args.get("recipient_team_id"):
                raise SlackError("missing_recipient_team_id")
            if not args.get("recipient_user_id"):
                raise SlackError("missing_recipient_user_id")
        text = _stream_text(args)
        message = Message(channel.id, self._ts(), text, user=BOT_USER_ID, bot_id=BOT_ID, thread_ts=thread_ts)
        message.markdown, message.streaming, message.stream_started = True, True, time.monotonic()
        channel.messages.append(message)
        self._echo(self._message_event(message))
        return {"channel": channel.id, "ts": message.ts}

    def _m_chat_appendStream(self, args: dict[str, Any]) -> dict[str, Any]:
        channel, message = self._streaming_message(args)
        for chunk in args.get("chunks") or []:
            if chunk.get("type") == "task_update":
                if self.task_cards_refusal:
                    raise SlackError(self.task_cards_refusal)
                if chunk.get("status") not in ("pending", "in_progress", "complete", "error"):
                    raise SlackError("invalid_chunks", detail=f"bad task status {chunk.get('status')!r}")
                message.tasks[str(chunk["id"])] = chunk
        message.text += _stream_text(args)
        if len(message.text) > MAX_TEXT:
            raise SlackError("msg_too_long")
        return {"channel": channel.id, "ts": message.ts}

    def _m_chat_stopStream(self, args: dict[str, Any]) -> dict[str, Any]:
        channel, message = self._streaming_message(args)
        message.text += _stream_text(args)
        message.streaming = False
        return {"channel": channel.id, "ts": message.ts, "message": message.wire()}

    def _m_conversations_replies(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._readable(args)
        root = str(args.get("ts", ""))
        if self.message(channel.id, root) is None:
            raise SlackError("thread_not_found")
        messages = self.thread(channel.id, root)
        return _page(messages, args, newest_first=False)

    def _m_conversations_history(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._readable(args)
        oldest = float(args.get("oldest") or 0)
        top = [
            m
            for m in channel.messages
            if (m.thread_ts is None or m.thread_ts == m.ts) and float(m.ts) > oldest
        ]
        return _page(top, args, newest_first=True)

    def _m_files_info(self, args: dict[str, Any]) -> dict[str, Any]:
        if "files:read" not in self.scopes:
            raise SlackError("missing_scope", needed="files:read", provided=",".join(sorted(self.scopes)))
        stored = self.files.get(str(args.get("file")))
        if stored is None:
            raise SlackError("file_not_found")
        return {"file": stored.info}

    def _m_conversations_open(self, args: dict[str, Any]) -> dict[str, Any]:
        self._need_scope("im:write")
        users = str(args.get("users") or "").split(",")
        if len(users) != 1 or users[0] not in self.users:
            raise SlackError("user_not_found")
        return {"channel": {"id": self.open_dm(users[0])}}

    def _m_files_getUploadURLExternal(self, args: dict[str, Any]) -> dict[str, Any]:
        self._need_scope("files:write")
        filename, length = str(args.get("filename") or ""), int(args.get("length") or 0)
        if not filename or length <= 0:
            raise SlackError("invalid_arguments")
        file_id = f"F{next(self._ids):08d}"
        self.uploads[file_id] = Upload(file_id, filename, length)
        return {"upload_url": f"{self.origin}/upload/{file_id}", "file_id": file_id}

    def _m_files_completeUploadExternal(self, args: dict[str, Any]) -> dict[str, Any]:
        self._need_scope("files:write")
        files = json.loads(str(args.get("files") or "[]"))
        uploads = [self.uploads.get(str(f.get("id"))) for f in files]
        if not uploads or any(u is None or u.data is None or u.channel is not None for u in uploads):
            raise SlackError("file_upload_incomplete")
        channel = self._readable({"channel": args.get("channel_id")}) if args.get("channel_id") else None
        shared = []
        for upload, described in zip(uploads, files, strict=True):
            assert upload is not None
            upload.title = str(described.get("title") or upload.filename)
            if channel is not None:
                upload.channel, upload.initial_comment = channel.id, args.get("initial_comment")
            shared.append({"id": upload.id, "title": upload.title, "name": upload.filename})
        if channel is not None:
            text = str(args.get("initial_comment") or "")
            message = Message(channel.id, self._ts(), text, user=BOT_USER_ID, bot_id=BOT_ID, files=shared)
            channel.messages.append(message)
        return {"files": shared}

    def _need_scope(self, scope: str) -> None:
        if scope not in self.scopes:
            raise SlackError("missing_scope", needed=scope, provided=",".join(sorted(self.scopes)))

    async def _upload(self, request: web.Request) -> web.Response:
        upload = self.uploads.get(request.match_info["file_id"])
        data = await request.read()
        if upload is None or upload.data is not None:
            return web.Response(status=404, text="unknown upload")
        if len(data) != upload.length:
            return web.Response(status=400, text="length mismatch")
        upload.data = data
        return web.Response(text="OK - " + str(len(data)))

    def _m_assistant_threads_setStatus(self, args: dict[str, Any]) -> dict[str, Any]:
        if self.status_refusal:
            raise SlackError(self.status_refusal)
        channel = self._channel(str(args.get("channel_id")))
        self.statuses.append((channel.id, str(args.get("thread_ts")), str(args.get("status", ""))))
        return {}

    def _m_assistant_threads_setTitle(self, args: dict[str, Any]) -> dict[str, Any]:
        self.titles.append((str(args.get("channel_id")), str(args.get("thread_ts")), str(args.get("title"))))
        return {}

    def _m_assistant_threads_setSuggestedPrompts(self, args: dict[str, Any]) -> dict[str, Any]:
        prompts = args.get("prompts") or []
        if not 1 <= len(prompts) <= 4:
            raise SlackError("invalid_arguments", detail="between 1 and 4 prompts")
        self.suggested_prompts.append((str(args.get("channel_id")), str(args.get("thread_ts")), prompts))
        return {}

    # --- files and response URLs -------------------------------------------------------------------

    async def _file(self, request: web.Request) -> web.Response:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        self.downloads.append((request.path, bool(token)))
        file_id = request.match_info["key"].rsplit("-", 1)[-1]
        stored = self.files.get(file_id)
        if token != BOT_TOKEN or "files:read" not in self.scopes:
            # Slack answers a request it cannot authorise with its sign-in page, status 200.
            return web.Response(text=LOGIN_PAGE, content_type="text/html")
        if stored is None:
            raise web.HTTPNotFound()
        if stored.redirect_to:
            raise web.HTTPFound(stored.redirect_to)
        return web.Response(body=stored.data, content_type=stored.info["mimetype"])

    async def _respond(self, request: web.Request) -> web.Response:
        key = request.match_info["key"]
        target = self._response_urls.get(key)
        if target is None:
            raise web.HTTPNotFound()
        self._response_url_uses[key] += 1
        if self._response_url_uses[key] > RESPONSE_URL_USES:
            return web.Response(status=404, text="used_url")
        body = await request.json()
        channel, user = target
        try:
            text, _ = _message_text(body)
        except SlackError as error:
            return web.Response(status=400, text=error.error)
        if body.get("response_type") == "in_channel":
            message = Message(channel, self._ts(), text, user=BOT_USER_ID, bot_id=BOT_ID)
            self.channels[channel].messages.append(message)
        else:
            self.ephemerals.append(Ephemeral(channel, user, text, "response_url"))
        return web.Response(text="ok")

    # --- helpers -----------------------------------------------------------------------------------

    def _ts(self) -> str:
        # Real time (summaries read "the last 24 hours"), strictly increasing like Slack's.
        self._last_us = max(time.time_ns() // 1000, self._last_us + 1)
        return f"{self._last_us // 1_000_000}.{self._last_us % 1_000_000:06d}"

    def _response_url_key(self, channel: str, user: str) -> str:
        key = f"r{next(self._ids)}"
        self._response_urls[key] = (channel, user)
        return key

    def _channel(self, channel_id: str) -> Channel:
        channel = self.channels.get(channel_id)
        if channel is None:
            raise SlackError("channel_not_found")
        return channel

    def _readable(self, args: dict[str, Any]) -> Channel:
        channel = self._channel(str(args.get("channel")))
        if BOT_USER_ID not in channel.members:
            raise SlackError("not_in_channel")
        return channel

    def _writable(self, args: dict[str, Any]) -> Channel:
        return self._readable(args)

    def _own_message(self, args: dict[str, Any]) -> tuple[Channel, Message]:
        channel = self._channel(str(args.get("channel")))
        message = self.message(channel.id, str(args.get("ts")))
        if message is None:
            raise SlackError("message_not_found")
        if message.bot_id != BOT_ID:
            raise SlackError("cant_update_message")
        return channel, message

    def _streaming_message(self, args: dict[str, Any]) -> tuple[Channel, Message]:
        channel, message = self._own_message(args)
        if not message.streaming or self._stream_expired(message):
            message.streaming = False
            raise SlackError("message_not_in_streaming_state")
        return channel, message

    def _stream_expired(self, message: Message) -> bool:
        return time.monotonic() - message.stream_started > self.stream_ttl_s

    def _message_event(self, message: Message) -> dict[str, Any]:
        event = message.wire(channel=True)
        event.update(
            event_ts=message.ts, channel_type=self.channels[message.channel].channel_type, team=TEAM_ID
        )
        if message.bot_id:
            event["bot_profile"] = {
                "id": message.bot_id,
                "name": self.users.get(message.user or "", {}).get("name"),
            }
        return event

    def _change_event(self, channel: str, message: Message, previous: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "message",
            "subtype": "message_changed",
            "hidden": True,
            "channel": channel,
            "ts": self._ts(),
            "event_ts": self._ts(),
            "message": message.wire(),
            "previous_message": previous,
            "channel_type": self.channels[channel].channel_type,
        }


def _user(user_id: str, name: str, *, is_bot: bool = False, bot_id: str | None = None) -> dict[str, Any]:
    profile: dict[str, Any] = {"display_name": name.title(), "real_name": name.title()}
    if bot_id:
        profile["bot_id"] = bot_id
    return {
        "id": user_id,
        "team_id": TEAM_ID,
        "name": name,
        "real_name": name.title(),
        "is_bot": is_bot,
        "is_admin": False,
        "profile": profile,
    }


async def _arguments(request: web.Request) -> dict[str, Any]:
    """slack-sdk sends arguments as JSON, as a form, or in the query string: accept all three."""
    args: dict[str, Any] = dict(request.query)
    if request.content_type == "application/json":
        body = await request.text()
        if body:
            args.update(json.loads(body))
    elif request.can_read_body:
        args.update(dict(await request.post()))
    for key in ("prompts", "chunks", "blocks"):
        if isinstance(args.get(key), str):
            args[key] = json.loads(args[key])
    return args


def _token(request: web.Request, args: dict[str, Any]) -> str | None:
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return header.removeprefix("Bearer ")
    return args.get("token")


def _message_text(args: dict[str, Any]) -> tuple[str, bool]:
    markdown = args.get("markdown_text")
    if markdown is not None:
        if args.get("text") or args.get("blocks"):
            raise SlackError("markdown_text_conflict")
        if len(markdown) > MAX_MARKDOWN:
            raise SlackError("msg_too_long")
        return str(markdown), True
    blocks = args.get("blocks") if isinstance(args.get("blocks"), list) else []
    markdown_blocks = [b for b in blocks if isinstance(b, dict) and b.get("type") == "markdown"]
    if sum(len(str(b.get("text", ""))) for b in markdown_blocks) > MAX_MARKDOWN:
        raise SlackError("invalid_blocks", detail="markdown blocks take 12,000 characters in all")
    text = args.get("text") or _blocks_text(blocks)
    if not text:
        raise SlackError("no_text")
    if len(text) > MAX_TEXT:
        raise SlackError("msg_too_long")
    return str(text), bool(markdown_blocks)


def _blocks(args: dict[str, Any]) -> list[dict[str, Any]]:
    """The message's blocks, checked where Slack is strict about them (context_actions)."""
    blocks = args.get("blocks") if isinstance(args.get("blocks"), list) else []
    for block in blocks:
        if block.get("type") != "context_actions":
            continue
        elements = block.get("elements") or []
        if not 1 <= len(elements) <= 5:
            raise SlackError("invalid_blocks", detail="context_actions takes 1 to 5 elements")
        for element in elements:
            if element.get("type") == "feedback_buttons":
                for side in ("positive_button", "negative_button"):
                    button = element.get(side) or {}
                    if (button.get("text") or {}).get("type") != "plain_text" or not button.get("value"):
                        raise SlackError("invalid_blocks", detail=f"{side} needs plain_text text and a value")
            elif element.get("type") != "icon_button":
                raise SlackError("invalid_blocks", detail="context_actions takes feedback or icon buttons")
    return blocks


def _stream_text(args: dict[str, Any]) -> str:
    text = str(args.get("markdown_text") or "")
    for chunk in args.get("chunks") or []:
        if chunk.get("type") == "markdown_text":
            text += str(chunk.get("text", ""))
    if len(text) > MAX_MARKDOWN:
        raise SlackError("msg_too_long")
    return text


def _blocks_text(blocks: Any) -> str:
    if not isinstance(blocks, list):
        return ""
    parts = []
    for block in blocks:
        text = block.get("text") if isinstance(block, dict) else None
        parts.append(text.get("text", "") if isinstance(text, dict) else str(text or ""))
    return "\n".join(part for part in parts if part)


def _page(messages: list[Message], args: dict[str, Any], *, newest_first: bool) -> dict[str, Any]:
    ordered = sorted(messages, key=lambda m: float(m.ts), reverse=newest_first)
    start = int(args.get("cursor") or 0)
    limit = max(1, min(int(args.get("limit") or 100), 1000))
    chunk = ordered[start : start + limit]
    more = start + limit < len(ordered)
    return {
        "messages": [m.wire() for m in chunk],
        "has_more": more,
        "response_metadata": {"next_cursor": str(start + limit) if more else ""},
    }
