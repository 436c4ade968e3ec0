"""How the fake Slack hands events to an app: a Socket Mode websocket or signed HTTP requests.

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

    @property
    def acked(self) -> bool:
        return self.acked_at is not None and not self.late


class SocketModeHub:
    """The websocket side of Socket Mode: one live connection, envelopes out, acks in."""

    def __init__(self, ack_timeout_s: float):
        self.ack_timeout_s = ack_timeout_s
        self.connections = 0
        self.deliveries: list[Delivery] = []
        self._ws: web.WebSocketResponse | None = None
        self._pending: dict[str, tuple[Delivery, asyncio.Future[None]]] = {}
        self._ids = itertools.count(1)
        self.connected = asyncio.Event()

    @property
    def is_connected(self) -> bool:
        return self._ws is not None and not self._ws.closed

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._ws = ws
        self.connections += 1
        await ws.send_json(
            {
                "type": "hello",
                "num_connections": 1,
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
            if self._ws is ws:
                self._ws = None
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

    async def deliver(self, kind: Kind, payload: dict[str, Any], *, retry_attempt: int = 0) -> Delivery:
        """Send one envelope and wait (up to the ack window) for its acknowledgement."""
        if self._ws is None or self._ws.closed:
            raise RuntimeError("no app is connected over Socket Mode")
        delivery = Delivery(kind, payload, f"env-{next(self._ids)}", retry_attempt)
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
        await self._ws.send_json(envelope)
        try:
            await asyncio.wait_for(asyncio.shield(future), self.ack_timeout_s)
        except TimeoutError:
            pass  # missing for now; a late ack still gets recorded as late
        return delivery

    async def refresh(self) -> None:
        """Ask the app to reconnect, as Slack does every few hours: a `disconnect` message, then
        wait for the new connection."""
        assert self._ws is not None, "no app is connected over Socket Mode"
        before = self.connections
        await self._ws.send_json({"type": "disconnect", "reason": "refresh_requested"})
        for _ in range(500):  # up to 5 s
            if self.connections > before and self.is_connected:
                return
            await asyncio.sleep(0.01)
        raise AssertionError("the app did not reconnect")

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()


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
    transport: SocketModeHub | HttpEventSender, kind: Kind, payload: dict[str, Any], *, retries: bool
) -> Delivery:
    """Deliver, and while the app fails to acknowledge in time, retry (events only, like Slack)."""
    delivery = await transport.deliver(kind, payload)
    attempt = 0
    while retries and kind == "events_api" and not _succeeded(delivery) and attempt < MAX_RETRIES:
        attempt += 1
        delivery = await transport.deliver(kind, payload, retry_attempt=attempt)
    return delivery


def _succeeded(delivery: Delivery) -> bool:
    return delivery.acked and (delivery.status is None or delivery.status == 200)
