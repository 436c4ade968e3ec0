"""Start and stop the Slack side of seedbot.

    runner = SlackRunner(settings, service, http=http_server)  # HTTP mode mounts POST /slack/events
    await runner.start()        # token checked, crash leftovers fixed, Socket Mode connected
    await runner.wait_closed()  # until stop()
    await runner.stop()         # no new work, answers in flight get the grace period, then close

Socket Mode when SLACK_APP_TOKEN is set (no public URL needed); otherwise HTTP mode: Slack POSTs
events, `/seed` and the shortcut to `/slack/events` on the service's HTTP server
(SEEDBOT_HTTP_PORT), and Bolt checks every request's signature with SLACK_SIGNING_SECRET.
Start-up problems raise `SlackStartupError`, whose text is one printable line with the fix.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_sdk.errors import SlackApiError

from bots.slack.api import error_code
from bots.slack.app import SeedSlackApp, build_slack_app
from core.config import Settings

if TYPE_CHECKING:
    from bots.http import HttpServer
    from core.service import ChatService

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
CONNECT_TIMEOUT_S = 30.0
# Socket Mode pings this often; a connection silent for four intervals is replaced.
PING_INTERVAL_S = 10.0


class SlackStartupError(Exception):
    """Slack could not be started; `str()` says why and how to fix it, in one line."""


class SlackRunner:
    def __init__(self, settings: Settings, service: ChatService, *, http: HttpServer | None = None):
        if settings.slack_bot_token is None:
            raise SlackStartupError(
                "SLACK_BOT_TOKEN is not set: copy the Bot User OAuth Token (xoxb-…) from OAuth & Permissions"
            )
        self.settings = settings
        self.socket_mode = settings.slack_app_token is not None
        if not self.socket_mode:
            if settings.slack_signing_secret is None:
                raise SlackStartupError(
                    "set SLACK_APP_TOKEN (Socket Mode) or SLACK_SIGNING_SECRET (HTTP mode) for Slack"
                )
            if http is None:
                raise SlackStartupError(
                    "Slack HTTP mode needs SEEDBOT_HTTP_PORT (Slack sends events to /slack/events), "
                    "or set SLACK_APP_TOKEN for Socket Mode"
                )
            http.add_route("POST", EVENTS_PATH, self.handle_http)
        self.app: SeedSlackApp = build_slack_app(settings, service)
        self.bot = self.app.seed
        self._socket: AsyncSocketModeHandler | None = None
        self._started = False
        self._closed = asyncio.Event()

    def ready(self) -> bool:
        """Taking events: connected over Socket Mode, or (HTTP mode) started (for /readyz)."""
        if not self._started or self._closed.is_set():
            return False
        if self._socket is None:
            return True
        session = self._socket.client.current_session
        return session is not None and not session.closed

    async def start(self, *, connect_timeout_s: float = CONNECT_TIMEOUT_S) -> None:
        try:
            identity = await self.bot.connect()
        except SlackApiError as error:
            raise SlackStartupError(
                f"Slack refused SLACK_BOT_TOKEN ({error_code(error)}): copy the Bot User OAuth Token "
                "(xoxb-…) from OAuth & Permissions, and reinstall the app if it was revoked"
            ) from None
        except OSError as error:
            raise SlackStartupError(f"cannot reach Slack at {self.settings.slack_api_url}: {error}") from None
        await self.bot.recover_interrupted()
        if self.socket_mode:
            await self._connect_socket(connect_timeout_s)
        self._started = True
        log.info(
            "Slack: workspace %s as %s (%s)",
            identity.team_id,
            identity.bot_user_id,
            "Socket Mode" if self.socket_mode else f"HTTP mode on {EVENTS_PATH}",
        )

    async def _connect_socket(self, timeout_s: float) -> None:
        assert self.settings.slack_app_token is not None
        handler = AsyncSocketModeHandler(
            self.app,
            self.settings.slack_app_token.get_secret_value(),
            web_client=self.bot.replies,
            ping_interval=PING_INTERVAL_S,
        )
        self._socket = handler
        try:
            # Ask for the websocket URL ourselves first: the client would retry a refused token forever.
            handler.client.wss_uri = await handler.client.issue_new_wss_url()
            await asyncio.wait_for(handler.connect_async(), timeout_s)
        except SlackApiError as error:
            await self._abort()
            raise SlackStartupError(
                f"Slack refused SLACK_APP_TOKEN ({error_code(error)}): create an app-level token "
                "(xapp-…) with the connections:write scope under Basic Information, and enable Socket Mode"
            ) from None
        except (TimeoutError, OSError) as error:
            await self._abort()
            raise SlackStartupError(
                f"no Socket Mode connection to Slack within {timeout_s:.0f} s ({error})"
            ) from None

    async def handle_http(self, request: web.Request) -> web.Response:
        """POST /slack/events: one event, command or shortcut, checked and answered by Bolt."""
        if not (self.bot.connected and self.bot.work.accepting):
            # Starting or shutting down: a non-2xx makes Slack deliver the event again later.
            return web.Response(status=503, text="not taking events now")
        response = await self.app.async_dispatch(await to_bolt_request(request))
        return await to_aiohttp_response(response)

    async def wait_closed(self) -> None:
        await self._closed.wait()

    async def stop(self, grace_s: float | None = None) -> None:
        """Stop taking work, let work in flight finish within the grace period, cancel the rest."""
        # Disconnect first: an event acknowledged over the socket before that must still be answered
        # (Slack will not send it again); after it, whatever arrives is unacknowledged and redelivered.
        if self._socket is not None:
            await self._socket.disconnect_async()
        await self.bot.work.stop(self.settings.shutdown_grace_s if grace_s is None else grace_s)
        await self._abort()

    async def _abort(self) -> None:
        if self._socket is not None:
            with contextlib.suppress(Exception):
                await self._socket.close_async()
            self._socket = None
        self._closed.set()
