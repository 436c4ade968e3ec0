"""How the fake Slack hands events to an app: Socket Mode websockets or signed HTTP requests.

Both transports keep Slack's contract: the app must acknowledge within 3 seconds; a delivery that
is not acknowledged (or answered with an error, over HTTP) is retried with `retry_attempt` /
`X-Slack-Retry-Num`, at most three times. Every delivery is recorded with how it was acknowledged.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Literal

import aiohttp
from aiohttp import web

Kind = Literal["events_api", "slash_commands", "interactive"]
MAX_RETRIES = 3


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """Slack's request signature: `v0=` + HMAC-SHA256 of `v0:{timestamp}:{body}`."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


@dataclass
class Delivery:
    """One attempt to hand a payload to the app."""

    kind: Kind
    payload: dict[str, Any]
    envelope_id: str
    retry_attempt: int = 0
    sent_at: float = field(default_factory=time.monotonic)
    acked_at: float | None = None
    ack_payload: dict[str, Any] | None = None
    status: int | None = None  # HTTP mode: the response status
    late: bool = False
    connection: int | None = None  # Socket Mode: which connection (in order of connecting, from 0)

    @property
    def acked(self) -> bool:
        return self.acked_at is not None and not self.late


@dataclass
class _Connection:
    index: int
    ws: web.WebSocketResponse
    gone: bool = False  # its handler has returned

    @property
    def live(self) -> bool:
        return not (self.gone or self.ws.closed)


class SocketModeHub:
    """The websocket side of Socket Mode: an app may hold several connections at once (Slack allows
    ten), as several instances of one app do. Each envelope goes to one live connection, round-robin;
    a retry of an unacknowledged one goes to the next live connection, as Slack may redeliver on
    another. Connections are numbered in the order they opened, from 0."""

    def __init__(self, ack_timeout_s: float):
        self.ack_timeout_s = ack_timeout_s
        self.connections = 0  # opened so far
        self.deliveries: list[Delivery] = []
        self._opened: list[_Connection] = []
        self._pending: dict[str, tuple[Delivery, asyncio.Future[None]]] = {}
        self._ids = itertools.count(1)
        self._last: int | None = None  # the connection the last round-robin delivery went to
        self.connected = asyncio.Event()  # at least one connection is live

    @property
    def is_connected(self) -> bool:
        return bool(self.live)

    @property
    def live(self) -> list[int]:
        """The live connections, by index."""
        return [connection.index for connection in self._opened if connection.live]

    async def wait_connected(self, index: int, *, within_s: float = 20.0) -> None:
        """Until connection number `index` (0: the first ever opened) is live, or fail."""
        deadline = time.monotonic() + within_s
        while index not in self.live:
            if time.monotonic() > deadline:
                raise AssertionError(f"Socket Mode connection {index} not open within {within_s} s")
            await asyncio.sleep(0.01)

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        connection = _Connection(self.connections, ws)
        self._opened.append(connection)
        self.connections += 1
        await ws.send_json(
            {
                "type": "hello",
                "num_connections": len(self.live),
                "debug_info": {"host": "fake-slack", "approximate_connection_time": 3600},
                "connection_info": {"app_id": request.query.get("app_id", "")},
            }
        )
        self.connected.set()
        try:
            async for message in ws:
                if message.type == aiohttp.WSMsgType.TEXT:
                    self._on_ack(json.loads(message.data))
        finally:
            connection.gone = True
            if not self.live:
                self.connected.clear()
        return ws

    def _on_ack(self, ack: dict[str, Any]) -> None:
        entry = self._pending.pop(str(ack.get("envelope_id")), None)
        if entry is None:
            return
        delivery, future = entry
        delivery.acked_at = time.monotonic()
        delivery.ack_payload = ack.get("payload")
        delivery.late = delivery.acked_at - delivery.sent_at > self.ack_timeout_s
        if not future.done():
            future.set_result(None)

    def next_connection(self, after: int | None = None) -> int:
        """The live connection after `after` (by default: after the last one used), in turn."""
        live = self.live
        if not live:
            raise RuntimeError("no app is connected over Socket Mode")
        previous = self._last if after is None else after
        if previous is None:
            return live[0]
        return next((index for index in live if index > previous), live[0])

    async def deliver(
        self,
        kind: Kind,
        payload: dict[str, Any],
        *,
        retry_attempt: int = 0,
        connection: int | None = None,
    ) -> Delivery:
        """Send one envelope (to `connection`, or the next live one in turn) and wait (up to the ack
        window) for its acknowledgement."""
        if connection is None:
            connection = self._last = self.next_connection()
        target = self._opened[connection] if 0 <= connection < len(self._opened) else None
        if target is None or not target.live:
            raise RuntimeError(f"Socket Mode connection {connection} is not open")
        delivery = Delivery(kind, payload, f"env-{next(self._ids)}", retry_attempt, connection=connection)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending[delivery.envelope_id] = (delivery, future)
        self.deliveries.append(delivery)
        envelope: dict[str, Any] = {
            "envelope_id": delivery.envelope_id,
            "type": kind,
            "payload": payload,
            "accepts_response_payload": kind != "events_api",
        }
        if kind == "events_api":
            envelope["retry_attempt"] = retry_attempt
            envelope["retry_reason"] = "timeout" if retry_attempt else ""
        delivery.sent_at = time.monotonic()
        await target.ws.send_json(envelope)
        try:
            await asyncio.wait_for(asyncio.shield(future), self.ack_timeout_s)
        except TimeoutError:
            pass  # missing for now; a late ack still gets recorded as late
        return delivery

    async def refresh(self, connection: int | None = None) -> None:
        """Ask the app to reconnect `connection` (by default the oldest live one), as Slack does every
        few hours: a `disconnect` message, then wait until it is closed and a new one is open."""
        live = self.live
        assert live, "no app is connected over Socket Mode"
        old = self._opened[live[0] if connection is None else connection]
        before = self.connections
        await old.ws.send_json({"type": "disconnect", "reason": "refresh_requested"})
        for _ in range(500):  # up to 5 s
            if self.connections > before and self._opened[-1].live and not old.live:
                return
            await asyncio.sleep(0.01)
        raise AssertionError("the app did not reconnect")

    async def close(self) -> None:
        for connection in self._opened:
            if connection.live:
                await connection.ws.close()


class HttpEventSender:
    """Slack's side of HTTP mode: signed POSTs to the app's Request URL, retried like Slack does."""

    def __init__(self, url: str, signing_secret: str, ack_timeout_s: float):
        self.url = url
        self.signing_secret = signing_secret
        self.ack_timeout_s = ack_timeout_s
        self.deliveries: list[Delivery] = []
        self._ids = itertools.count(1)
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def deliver(
        self,
        kind: Kind,
        payload: dict[str, Any],
        *,
        retry_attempt: int = 0,
        signature: str | None = None,
        timestamp: str | None = None,
    ) -> Delivery:
        """POST one request; `signature` / `timestamp` override the real ones (to test rejection)."""
        if self._session is None:
            self._session = aiohttp.ClientSession()
        body, content_type = encode(kind, payload)
        stamp = timestamp or str(int(time.time()))
        headers = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": signature or sign(self.signing_secret, stamp, body),
        }
        if retry_attempt:
            headers["X-Slack-Retry-Num"] = str(retry_attempt)
            headers["X-Slack-Retry-Reason"] = "http_timeout"
        delivery = Delivery(kind, payload, f"http-{next(self._ids)}", retry_attempt)
        self.deliveries.append(delivery)
        timeout = aiohttp.ClientTimeout(total=self.ack_timeout_s)
        try:
            async with self._session.post(self.url, data=body, headers=headers, timeout=timeout) as response:
                text = await response.text()
                delivery.status = response.status
                delivery.acked_at = time.monotonic()
                if text.startswith("{"):
                    delivery.ack_payload = json.loads(text)
                elif text:
                    delivery.ack_payload = {"text": text}
        except TimeoutError:
            delivery.late = True
        return delivery


def encode(kind: Kind, payload: dict[str, Any]) -> tuple[bytes, str]:
    """The body Slack POSTs in HTTP mode: JSON for events, a form for commands and interactivity."""
    if kind == "events_api":
        return json.dumps(payload).encode(), "application/json"
    if kind == "slash_commands":
        return urllib.parse.urlencode(payload).encode(), "application/x-www-form-urlencoded"
    return urllib.parse.urlencode(
        {"payload": json.dumps(payload)}
    ).encode(), "application/x-www-form-urlencoded"


async def deliver_with_retries(
    transport: SocketModeHub | HttpEventSender,
    kind: Kind,
    payload: dict[str, Any],
    *,
    retries: bool,
    connection: int | None = None,
) -> Delivery:
    """Deliver (over Socket Mode: to `connection`, or the next in turn), and while the app fails to
    acknowledge in time, retry (events only, like Slack)."""
    if isinstance(transport, SocketModeHub):
        delivery = await transport.deliver(kind, payload, connection=connection)
    else:
        delivery = await transport.deliver(kind, payload)
    while (
        retries and kind == "events_api" and not _succeeded(delivery) and delivery.retry_attempt < MAX_RETRIES
    ):
        delivery = await retry(transport, delivery)
    return delivery


async def retry(transport: SocketModeHub | HttpEventSender, delivery: Delivery) -> Delivery:
    """Slack's next attempt at a delivery: the same payload, the retry number one higher, over Socket
    Mode on the next live connection after the one it went to."""
    attempt = delivery.retry_attempt + 1
    if isinstance(transport, SocketModeHub):
        after = transport.next_connection(after=delivery.connection)
        return await transport.deliver(
            delivery.kind, delivery.payload, retry_attempt=attempt, connection=after
        )
    return await transport.deliver(delivery.kind, delivery.payload, retry_attempt=attempt)


def _succeeded(delivery: Delivery) -> bool:
    return delivery.acked and (delivery.status is None or delivery.status == 200)
