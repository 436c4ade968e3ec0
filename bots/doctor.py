"""`seedbot doctor`: check every outside dependency and say, row by row, what is wrong and how to fix it.

Checks the settings, the database, the model API (`/models`; a tiny real call with `live=True`),
Slack (`auth.test`, granted vs needed scopes, the Socket Mode or HTTP-mode set-up) and Discord
(`/users/@me`, the message-content intent), and each MCP server of SEEDBOT_MCP_CONFIG (started, its
tools listed, stopped again). Slack and Discord are probed with plain httpx calls; the
bot frameworks are not needed for that. Tokens go only to the API they belong to and never into the
table.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx

from bots.slack.scopes import BOT_SCOPES, OPTIONAL_SCOPES
from core.config import ConfigError, Settings, load_settings
from core.llm import errors
from core.llm.client import ChatClient
from core.llm.types import ChatRequest, UserMessage
from core.store import StoreError, open_store
from core.store.postgres import redacted_url
from core.tools.mcp import McpManager, ServerStatus

Status = Literal["ok", "warn", "fail", "skipped"]

SLACK_AUTH_ERRORS = {"invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive"}
# Application flags: approved intent (100+ servers) and the self-service toggle (under 100 servers).
GATEWAY_MESSAGE_CONTENT = 1 << 18
GATEWAY_MESSAGE_CONTENT_LIMITED = 1 << 19
PROBE_TIMEOUT_S = 10.0
DB_BUSY_TIMEOUT_S = 2.0
LIVE_MAX_TOKENS = 16


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str = ""


async def doctor(settings: Settings | None = None, *, live: bool = False) -> tuple[int, str]:
    """Run every check; returns (exit code: 1 if anything failed, else 0; the table to print).

    With `settings` None they are loaded from the environment, and a bad value is the first failure.
    """
    checks = await run_checks(settings, live=live)
    failed = any(check.status == "fail" for check in checks)
    return (1 if failed else 0), render_table(checks)


async def run_checks(settings: Settings | None = None, *, live: bool = False) -> list[Check]:
    if settings is None:
        try:
            settings = load_settings()
        except ConfigError as error:
            problem = Check("settings", "fail", str(error).replace("\n", "; "), "fix the variables named")
            skipped = ("database", "model API", "slack", "discord", "mcp")
            return [problem, *(Check(name, "skipped", "settings did not load") for name in skipped)]
    tokens = {"slack": settings.slack_bot_token, "discord": settings.discord_bot_token}
    platforms = ", ".join(name for name, token in tokens.items() if token is not None) or "none"
    head = Check("settings", "ok", f"loaded; platforms with a token: {platforms}")
    timeout = httpx.Timeout(PROBE_TIMEOUT_S, connect=settings.connect_timeout_s)
    async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as http:
        groups = await asyncio.gather(
            _database(settings),
            _model(settings, live),
            _slack(settings, http),
            _discord(settings, http),
            _mcp(settings),
        )
    return [head, *(check for group in groups for check in group)]


def render_table(checks: list[Check]) -> str:
    name_width = max(len("check"), *(len(c.name) for c in checks))
    lines = [f"{'check':<{name_width}}  {'status':<7}  detail"]
    for check in checks:
        lines.append(f"{check.name:<{name_width}}  {check.status:<7}  {check.detail}")
        if check.fix and check.status in ("warn", "fail"):
            lines.append(f"{'':<{name_width}}  {'':<7}  fix: {check.fix}")
    return "\n".join(lines)


# --- database ------------------------------------------------------------------------------------------


async def _database(settings: Settings) -> list[Check]:
    path = settings.sqlite_path
    if path is not None and not path.exists():
        return [_new_database(path)]
    try:
        store = await open_store(settings, busy_timeout_s=DB_BUSY_TIMEOUT_S)
        try:
            version = await store.schema_version()
        finally:
            await store.close()
    except StoreError as error:
        return [Check("database", "fail", str(error), "fix the file named, or point DATABASE_URL elsewhere")]
    # A PostgreSQL URL is shown without its password.
    where = path if path is not None else redacted_url(settings.database_url.get_secret_value())
    return [Check("database", "ok", f"{where}, schema version {version}")]


def _new_database(path: Path) -> Check:
    # Doctor looks, it does not create: the bot makes the file at its first start.
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        fix = "create it or fix DATABASE_URL"
        return Check("database", "fail", f"directory {directory} does not exist", fix)
    if not os.access(directory, os.W_OK):
        fix = "give the bot write access to it"
        return Check("database", "fail", f"directory {directory} is not writable", fix)
    return Check("database", "ok", f"{path} does not exist yet; it is created at the first start")


# --- model API -----------------------------------------------------------------------------------------


async def _model(settings: Settings, live: bool) -> list[Check]:
    if settings.aiml_api_key is None:
        fix = "create a key at https://aimlapi.com/app/keys and set AIML_API_KEY"
        checks = [Check("model API", "fail", "AIML_API_KEY is not set", fix)]
        return checks + ([Check("model live call", "skipped", "no API key")] if live else [])
    client = ChatClient(settings)
    try:
        listed = await _guard_model(settings, lambda: _list_models(settings, client), "model API")
        if not live:
            return [listed]
        if listed.status == "fail":
            return [listed, Check("model live call", "skipped", "the model API check failed")]
        called = await _guard_model(settings, lambda: _live_call(settings, client), "model live call")
        return [listed, called]
    finally:
        await client.aclose()


async def _list_models(settings: Settings, client: ChatClient) -> Check:
    models = await client.list_models()
    where = settings.aiml_base_url
    if settings.model in models:
        return Check("model API", "ok", f"{where} serves {settings.model}")
    return Check(
        "model API",
        "warn",
        f"{where} answered but does not list {settings.model} ({len(models)} models listed)",
        "check SEEDBOT_MODEL against the provider's model list",
    )


async def _live_call(settings: Settings, client: ChatClient) -> Check:
    request = ChatRequest(
        model=settings.model,
        messages=[UserMessage(content="Reply with the single word: ok")],
        max_tokens=LIVE_MAX_TOKENS,
        reasoning_effort="low",
    )
    result = await client.complete(request)
    cost = f", ${result.cost.usd}" if result.cost.usd is not None else ""
    tokens = f", {result.usage.total_tokens} tokens" if result.usage else ""
    return Check("model live call", "ok", f"answered in {result.total_s or 0:.1f} s{tokens}{cost}")


async def _guard_model(settings: Settings, probe: Callable[[], Awaitable[Check]], name: str) -> Check:
    """Turn a model-API failure into a row; `str()` of our API errors is safe to show."""
    try:
        return await probe()
    except errors.InvalidAPIKey as error:
        return Check(name, "fail", str(error), "create a new key at https://aimlapi.com/app/keys")
    except errors.OutOfCredits as error:
        return Check(name, "fail", str(error), "top up the account at https://aimlapi.com/app/billing")
    except (errors.NetworkError, errors.UpstreamTimeout) as error:
        fix = f"check AIML_BASE_URL ({settings.aiml_base_url}) and the network"
        return Check(name, "fail", f"{error} at {settings.aiml_base_url}", fix)
    except errors.ModelAPIError as error:
        return Check(name, "fail", str(error), "see the message; retry later if the service is down")
    except (ValueError, KeyError, TypeError) as error:
        fix = "AIML_BASE_URL must point at an OpenAI-compatible API (ending in /v1)"
        detail = f"unreadable answer from {settings.aiml_base_url} ({type(error).__name__})"
        return Check(name, "fail", detail, fix)


# --- MCP servers ---------------------------------------------------------------------------------------


async def _mcp(settings: Settings) -> list[Check]:
    """One row per configured server; a server that is down warns (the bot runs without its tools)."""
    if not settings.mcp_config:
        return [Check("mcp", "skipped", "SEEDBOT_MCP_CONFIG is not set")]
    if not settings.tools_enabled:
        return [Check("mcp", "skipped", "SEEDBOT_TOOLS_ENABLED is false")]
    try:
        manager = McpManager.from_settings(settings)
    except ConfigError as error:
        return [Check("mcp", "fail", str(error), "fix SEEDBOT_MCP_CONFIG (a JSON file path or the JSON)")]
    try:
        await manager.start()
        statuses = manager.status()
    finally:
        await manager.aclose()
    fix = "see the reason; the bot runs without this server's tools until it starts"
    return [
        Check(f"mcp {status.name}", "ok" if status.state == "ok" else "warn", _detail(status), fix)
        for status in statuses
    ]


def _detail(status: ServerStatus) -> str:
    return status.line().removeprefix(f"{status.name}: ")


# --- Slack ---------------------------------------------------------------------------------------------


async def _slack(settings: Settings, http: httpx.AsyncClient) -> list[Check]:
    if settings.slack_bot_token is None:
        return [Check("slack", "skipped", "SLACK_BOT_TOKEN is not set")]
    token = settings.slack_bot_token.get_secret_value()
    reply = await _slack_call(settings, http, "auth.test", token)
    if isinstance(reply, Check):
        return [reply]
    body, headers = reply
    if not body.get("ok"):
        code = str(body.get("error", "unknown_error"))
        if code in SLACK_AUTH_ERRORS:
            fix = "copy the Bot User OAuth Token (xoxb-…) from the app's OAuth & Permissions page"
            return [Check("slack auth", "fail", f"Slack rejected SLACK_BOT_TOKEN ({code})", fix)]
        return [Check("slack auth", "fail", f"auth.test failed: {code}", "see Slack's auth.test reference")]
    who = f"bot {body.get('user', '?')} in workspace {body.get('team', '?')}"
    auth = Check("slack auth", "ok", who)
    if not token.startswith("xoxb-"):
        detail = f"{who}, but SLACK_BOT_TOKEN is not a bot token (xoxb-…)"
        auth = Check("slack auth", "warn", detail, "use the Bot User OAuth Token, not a user token")
    return [auth, _slack_scopes(headers), await _slack_connection(settings, http)]


def _slack_scopes(headers: httpx.Headers) -> Check:
    raw = headers.get("x-oauth-scopes")
    if raw is None:
        return Check("slack scopes", "warn", "Slack did not report the granted scopes", "")
    granted = {scope.strip() for scope in raw.split(",") if scope.strip()}
    missing = [scope for scope in BOT_SCOPES if scope not in granted]
    required = [scope for scope in missing if scope not in OPTIONAL_SCOPES]
    fix = (
        f"add {', '.join(missing)} under OAuth & Permissions → Bot Token Scopes (or paste "
        "deploy/slack/manifest.yaml), then reinstall the app to the workspace"
    )
    if required:
        return Check("slack scopes", "fail", f"missing {', '.join(missing)}", fix)
    if missing:
        extras = "; ".join(f"{scope}: {OPTIONAL_SCOPES[scope]}" for scope in missing)
        return Check("slack scopes", "warn", f"missing optional {extras}", fix)
    return Check("slack scopes", "ok", f"all {len(BOT_SCOPES)} needed scopes granted")


async def _slack_connection(settings: Settings, http: httpx.AsyncClient) -> Check:
    name = "slack connection"
    if settings.slack_app_token is not None:
        app_token = settings.slack_app_token.get_secret_value()
        reply = await _slack_call(settings, http, "apps.connections.open", app_token)
        if isinstance(reply, Check):
            return reply
        body, _ = reply
        if body.get("ok"):
            return Check(name, "ok", "Socket Mode: SLACK_APP_TOKEN can open a connection")
        fix = (
            "enable Socket Mode and create an app-level token with connections:write "
            "(Basic Information → App-Level Tokens); set it as SLACK_APP_TOKEN (xapp-…)"
        )
        return Check(name, "fail", f"Socket Mode refused: {body.get('error', 'unknown_error')}", fix)
    if settings.slack_signing_secret is not None:
        if settings.http_port is None:
            return Check(name, "fail", "HTTP mode needs a port", "set SEEDBOT_HTTP_PORT (e.g. 8080)")
        detail = f"HTTP mode: Slack must reach https://<public host>/slack/events → port {settings.http_port}"
        return Check(name, "ok", detail)
    return Check(
        name,
        "fail",
        "neither SLACK_APP_TOKEN nor SLACK_SIGNING_SECRET is set",
        "set SLACK_APP_TOKEN (Socket Mode, no public URL) or SLACK_SIGNING_SECRET + SEEDBOT_HTTP_PORT",
    )


async def _slack_call(
    settings: Settings, http: httpx.AsyncClient, method: str, token: str
) -> tuple[dict[str, Any], httpx.Headers] | Check:
    """POST a Web API method with `token`; the JSON reply and headers, or a row saying what went wrong."""
    url = f"{settings.slack_api_url}{method}"
    name = f"slack {method}"
    try:
        response = await http.post(url, headers={"Authorization": f"Bearer {token}"})
    except httpx.HTTPError as error:
        fix = "check SLACK_API_URL and the network"
        return Check(name, "fail", f"could not reach {url} ({type(error).__name__})", fix)
    if response.status_code == 429:
        retry = response.headers.get("retry-after", "?")
        return Check(name, "warn", f"rate limited (retry after {retry} s)", "run doctor again later")
    body = _json_object(response)
    if response.status_code >= 400 or body is None:
        detail = f"{url} answered HTTP {response.status_code}, not a Slack Web API reply"
        return Check(name, "fail", detail, "SLACK_API_URL must be https://slack.com/api/")
    return body, response.headers


def _json_object(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


# --- Discord -------------------------------------------------------------------------------------------


async def _discord(settings: Settings, http: httpx.AsyncClient) -> list[Check]:
    if settings.discord_bot_token is None:
        return [Check("discord", "skipped", "DISCORD_BOT_TOKEN is not set")]
    headers = {"Authorization": f"Bot {settings.discord_bot_token.get_secret_value()}"}
    me = await _discord_get(settings, http, "/users/@me", headers, "discord auth")
    if isinstance(me, Check):
        return [me, Check("discord intents", "skipped", "the bot could not log in")]
    auth = Check("discord auth", "ok", f"bot {me.get('username', '?')} (id {me.get('id', '?')})")
    app = await _discord_get(settings, http, "/applications/@me", headers, "discord intents")
    if isinstance(app, Check):
        return [auth, app]
    flags = int(app.get("flags") or 0)
    if flags & GATEWAY_MESSAGE_CONTENT:
        return [auth, Check("discord intents", "ok", "message content intent approved")]
    if flags & GATEWAY_MESSAGE_CONTENT_LIMITED:
        return [auth, Check("discord intents", "ok", "message content intent enabled (under 100 servers)")]
    fix = (
        "Developer Portal → your application → Bot → Privileged Gateway Intents → enable "
        "MESSAGE CONTENT INTENT (apps in 100+ servers must apply for it)"
    )
    return [auth, Check("discord intents", "fail", "message content intent is not enabled", fix)]


async def _discord_get(
    settings: Settings, http: httpx.AsyncClient, path: str, headers: dict[str, str], name: str
) -> dict[str, Any] | Check:
    url = f"{settings.discord_api_base}{path}"
    try:
        response = await http.get(url, headers=headers)
    except httpx.HTTPError as error:
        fix = "check DISCORD_API_BASE and the network"
        return Check(name, "fail", f"could not reach {url} ({type(error).__name__})", fix)
    if response.status_code == 401:
        fix = "Developer Portal → your application → Bot → Reset Token, then set DISCORD_BOT_TOKEN"
        return Check(name, "fail", "Discord rejected DISCORD_BOT_TOKEN (401)", fix)
    if response.status_code == 429:
        return Check(name, "warn", "rate limited by Discord", "run doctor again in a minute")
    body = _json_object(response)
    if response.status_code >= 400 or body is None:
        detail = f"{url} answered HTTP {response.status_code}"
        return Check(name, "fail", detail, "DISCORD_API_BASE must be https://discord.com/api/v10")
    return body
