"""Just enough of Slack's Web API and Discord's REST API for `seedbot doctor`, as a real aiohttp server.

async with FakePlatforms() as fake:
    settings = make_settings(slack_api_url=fake.slack_api_url, discord_api_base=fake.discord_api_base)
    fake.scopes.discard("files:read")     # a workspace that did not grant a scope
    fake.app_flags = 0                     # a Discord app without the message-content intent
"""

from __future__ import annotations

from aiohttp import web

from bots.doctor import GATEWAY_MESSAGE_CONTENT_LIMITED
from bots.slack.scopes import BOT_SCOPES
from tests.fakes.loopback import serve_on_loopback

SLACK_BOT_TOKEN = "xoxb-100-200-fakebottoken"
SLACK_APP_TOKEN = "xapp-1-A100-200-fakeapptoken"
DISCORD_TOKEN = "MTAwMDAwMDAwMDAwMDAwMDAw.GfAkEt.fake-discord-token-abcdefghijklmn"


class FakePlatforms:
    def __init__(self) -> None:
        self.scopes: set[str] = set(BOT_SCOPES)
        self.app_flags = GATEWAY_MESSAGE_CONTENT_LIMITED
        self.socket_mode = True
        self.authorizations: list[str] = []
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def slack_api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    @property
    def discord_api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/discord/api/v10"

    async def __aenter__(self) -> FakePlatforms:
        app = web.Application()
        app.router.add_post("/api/auth.test", self._auth_test)
        app.router.add_post("/api/apps.connections.open", self._connections_open)
        app.router.add_get("/discord/api/v10/users/@me", self._discord_me)
        app.router.add_get("/discord/api/v10/applications/@me", self._discord_application)
        self._runner, self.port = await serve_on_loopback(app)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def _bearer(self, request: web.Request) -> str:
        header = request.headers.get("Authorization", "")
        self.authorizations.append(header)
        return header.removeprefix("Bearer ")

    async def _auth_test(self, request: web.Request) -> web.Response:
        if self._bearer(request) != SLACK_BOT_TOKEN:
            return web.json_response({"ok": False, "error": "invalid_auth"})
        body = {"ok": True, "team": "Acme", "user": "seedbot", "team_id": "T1", "user_id": "U1"}
        return web.json_response(body, headers={"x-oauth-scopes": ",".join(sorted(self.scopes))})

    async def _connections_open(self, request: web.Request) -> web.Response:
        token = self._bearer(request)
        if token.startswith("xoxb-"):
            return web.json_response({"ok": False, "error": "not_allowed_token_type"})
        if token != SLACK_APP_TOKEN or not self.socket_mode:
            return web.json_response({"ok": False, "error": "invalid_auth"})
        return web.json_response({"ok": True, "url": "wss://wss-primary.slack.com/link/?ticket=fake"})

    def _discord_authorized(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        self.authorizations.append(header)
        return header == f"Bot {DISCORD_TOKEN}"

    async def _discord_me(self, request: web.Request) -> web.Response:
        if not self._discord_authorized(request):
            return web.json_response({"message": "401: Unauthorized", "code": 0}, status=401)
        return web.json_response({"id": "1000", "username": "seedbot", "bot": True})

    async def _discord_application(self, request: web.Request) -> web.Response:
        if not self._discord_authorized(request):
            return web.json_response({"message": "401: Unauthorized", "code": 0}, status=401)
        return web.json_response({"id": "1000", "name": "Seed", "flags": self.app_flags})
