"""The fake Discord's Gateway: a JSON websocket (no compression) speaking the v10 protocol.

HELLO -> IDENTIFY -> READY + GUILD_CREATE, heartbeats answered with ACKs, RESUME replaying what
the client missed (then RESUMED), dispatches filtered by the intents the client asked for, the
message-content intent applied to payloads, close 4014 when a privileged intent is refused, and
`drop()` to cut the connection mid-stream like a network failure.

Sharding as Discord does it: IDENTIFY's `shard: [id, count]` (absent: [0, 1]) picks the session's
guilds, those with `(guild_id >> 22) % count == id`; READY and GUILD_CREATE list only them, each
guild's events go to the session of its shard and events without a guild (DMs) to shard 0. Discord's
refusal of a wrong shard count for a large bot (close 4011) is not modelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

if TYPE_CHECKING:
    from tests.fakes.discord import FakeDiscord

DISPATCH, HEARTBEAT, IDENTIFY, RESUME, RECONNECT, INVALID_SESSION, HELLO, HEARTBEAT_ACK = (
    0,
    1,
    2,
    6,
    7,
    9,
    10,
    11,
)
GUILDS, GUILD_MESSAGES, DIRECT_MESSAGES, MESSAGE_CONTENT = 1 << 0, 1 << 9, 1 << 12, 1 << 15
PRIVILEGED = (1 << 1) | (1 << 8) | MESSAGE_CONTENT  # members, presences, message content
LOG_LIMIT = 1000
HOLD_LIMIT_S = 10.0  # a held IDENTIFY or RESUME is answered after this long even if never released


async def _released(hold: asyncio.Event) -> None:
    """Until the test releases what it held, or HOLD_LIMIT_S: a test that never releases still ends."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(hold.wait(), HOLD_LIMIT_S)


def shard_of(guild_id: int, shard_count: int) -> int:
    """The shard Discord sends a guild's events to."""
    return (guild_id >> 22) % shard_count


@dataclass
class Session:
    id: str
    intents: int
    shard: tuple[int, int] = (0, 1)  # (shard id, shard count) from IDENTIFY
    sequence: int = 0
    log: list[dict[str, Any]] = field(default_factory=list)  # sent dispatch frames, for RESUME
    socket: web.WebSocketResponse | None = None
    request: web.Request | None = None
    redeliver: tuple[str, ...] = ()  # event types the next RESUME re-sends although the client saw them
    ready: bool = False  # READY and this shard's GUILD_CREATEs were sent

    def routes(self, data: dict[str, Any]) -> bool:
        """Whether this session's shard receives an event with payload `data`."""
        shard_id, shard_count = self.shard
        guild_id = data.get("guild_id")
        return shard_of(int(guild_id), shard_count) == shard_id if guild_id else shard_id == 0


class Gateway:
    def __init__(self, api: FakeDiscord, *, heartbeat_interval_ms: int, refuse_privileged: bool):
        self.api = api
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.refuse_privileged = refuse_privileged
        self.sessions: dict[str, Session] = {}
        self.live: dict[int, Session] = {}  # shard id -> the session last identified or resumed on it
        self.current: Session | None = None  # the session of the last IDENTIFY or RESUME
        self.held: dict[int, asyncio.Event] = {}  # shard id -> set() to answer its IDENTIFY
        self.held_resume: asyncio.Event | None = None  # set() to answer the next RESUME
        self.identifies = 0
        self.resumes = 0
        self.heartbeats = 0
        self.close_codes: list[int] = []  # close codes this gateway sent
        self.ready_sent = False
        self._sockets: set[web.WebSocketResponse] = set()

    @property
    def connected(self) -> bool:
        return self.current is not None and self.current.socket is not None

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        if request.query.get("encoding", "json") != "json":
            raise web.HTTPBadRequest(text="only encoding=json is supported")
        socket = web.WebSocketResponse(autoping=True)
        await socket.prepare(request)
        self._sockets.add(socket)
        session: Session | None = None
        try:
            await socket.send_json(
                {"op": HELLO, "d": {"heartbeat_interval": self.heartbeat_interval_ms}, "s": None, "t": None}
            )
            async for frame in socket:
                if frame.type is not WSMsgType.TEXT:
                    continue
                payload = json.loads(frame.data)
                op, data = payload.get("op"), payload.get("d")
                if op == HEARTBEAT:
                    self.heartbeats += 1
                    await socket.send_json({"op": HEARTBEAT_ACK, "d": None, "s": None, "t": None})
                elif op == IDENTIFY:
                    session = await self._identify(socket, request, data)
                elif op == RESUME:
                    session = await self._resume(socket, request, data)
                self.api.changed()
        finally:
            self._sockets.discard(socket)
            if session is not None and session.socket is socket:
                session.socket = session.request = None
            self.api.changed()
        return socket

    async def _identify(
        self, socket: web.WebSocketResponse, request: web.Request, data: dict[str, Any]
    ) -> Session | None:
        self.identifies += 1
        if data.get("token") != self.api.gateway_token:
            await self._close(socket, 4004, "Authentication failed.")
            return None
        intents = int(data.get("intents", 0))
        if self.refuse_privileged and intents & PRIVILEGED:
            await self._close(socket, 4014, "Disallowed intent(s).")
            return None
        shard_id, shard_count = data.get("shard") or (0, 1)
        if shard_id in self.held:
            await _released(self.held.pop(shard_id))
        session = Session(
            id=f"session-{self.identifies}",
            intents=intents,
            shard=(shard_id, shard_count),
            socket=socket,
            request=request,
        )
        self.sessions[session.id] = session
        self.live[shard_id] = self.current = session
        guilds = [guild_id for guild_id in self.api.guilds if shard_of(guild_id, shard_count) == shard_id]
        ready = {
            "v": 10,
            "user": self.api.bot,
            "guilds": [{"id": str(guild_id), "unavailable": True} for guild_id in guilds],
            "session_id": session.id,
            "resume_gateway_url": self.api.gateway_url,
            "shard": [shard_id, shard_count],
            "application": {"id": str(self.api.application_id), "flags": 0},
            "private_channels": [],
            "relationships": [],
        }
        await self._send(session, "READY", ready)
        if intents & GUILDS:
            for guild_id in guilds:
                await self._send(session, "GUILD_CREATE", self.api.guild_payload(guild_id))
        self.ready_sent = session.ready = True
        return session

    async def _resume(
        self, socket: web.WebSocketResponse, request: web.Request, data: dict[str, Any]
    ) -> Session | None:
        self.resumes += 1
        if self.held_resume is not None:
            held, self.held_resume = self.held_resume, None
            await _released(held)
        session = self.sessions.get(data.get("session_id", ""))
        if session is None or data.get("token") != self.api.token:
            await socket.send_json({"op": INVALID_SESSION, "d": False, "s": None, "t": None})
            return None
        session.socket, session.request = socket, request
        self.live[session.shard[0]] = self.current = session
        seen = int(data.get("seq") or 0)
        missed = [frame for frame in session.log if frame["s"] > seen]
        again = [frame for frame in session.log if frame["s"] <= seen and frame["t"] in session.redeliver]
        session.redeliver = ()
        for frame in again + missed:
            await socket.send_json(frame)
        await self._send(session, "RESUMED", {})
        return session

    def connected_shards(self) -> set[int]:
        """The shards whose session got READY and is connected now."""
        return {shard_id for shard_id, s in self.live.items() if s.ready and s.socket is not None}

    def hold(self, shard_id: int) -> asyncio.Event:
        """Leave the next IDENTIFY of `shard_id` unanswered until the returned event is set."""
        self.held[shard_id] = asyncio.Event()
        return self.held[shard_id]

    def hold_resume(self) -> asyncio.Event:
        """Leave the next RESUME unanswered until the returned event is set."""
        self.held_resume = asyncio.Event()
        return self.held_resume

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        """Deliver an event to the session of its shard (kept for RESUME if the connection is down)."""
        for session in list(self.live.values()):
            if session.routes(data) and self._wanted(session.intents, event, data):
                await self._send(session, event, self._visible(session.intents, event, data))

    async def drop(self, *, redeliver: tuple[str, ...] = ()) -> None:
        """Cut the connection without a close frame; the next RESUME also re-sends the events of the
        `redeliver` types the client already saw (Discord may deliver an event twice around a resume)."""
        session = self.current
        if session is None or session.request is None or session.request.transport is None:
            raise AssertionError("no gateway connection to drop")
        session.redeliver = redeliver
        session.request.transport.close()

    async def close(self) -> None:
        for socket in list(self._sockets):
            await socket.close(code=1001)

    async def _close(self, socket: web.WebSocketResponse, code: int, reason: str) -> None:
        self.close_codes.append(code)
        await socket.close(code=code, message=reason.encode())

    async def _send(self, session: Session, event: str, data: dict[str, Any]) -> None:
        session.sequence += 1
        frame = {"op": DISPATCH, "t": event, "s": session.sequence, "d": data}
        session.log = [*session.log[-LOG_LIMIT:], frame]
        if session.socket is not None and not session.socket.closed:
            try:
                await session.socket.send_json(frame)
            except ConnectionError:
                pass  # the client RESUMEs and gets it from the log

    def _wanted(self, intents: int, event: str, data: dict[str, Any]) -> bool:
        if event.startswith("MESSAGE_"):
            return bool(intents & (GUILD_MESSAGES if "guild_id" in data else DIRECT_MESSAGES))
        if event.startswith(("THREAD_", "GUILD_")):
            return bool(intents & GUILDS)
        return True

    def _visible(self, intents: int, event: str, data: dict[str, Any]) -> dict[str, Any]:
        """Without the message-content intent, Discord blanks content it does not owe the bot."""
        if intents & MESSAGE_CONTENT or event not in ("MESSAGE_CREATE", "MESSAGE_UPDATE"):
            return data
        bot_id = self.api.bot["id"]
        owed = (
            "guild_id" not in data
            or data["author"]["id"] == bot_id
            or any(user["id"] == bot_id for user in data.get("mentions", []))
        )
        return data if owed else {**data, "content": "", "embeds": [], "attachments": [], "components": []}
