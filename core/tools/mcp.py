"""MCP servers as tools, through the official `mcp` SDK client (stdio and streamable HTTP).

`SEEDBOT_MCP_CONFIG` is a JSON file path or the JSON itself, in the format MCP clients share:

    {"mcpServers": {
        "files": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "/srv"],
                  "env": {"LOG_LEVEL": "info"}},
        "tracker": {"url": "https://mcp.example.com/mcp", "headers": {"Authorization": "Bearer …"},
                    "confirm": true}}}

Each server runs in its own task, which owns the SDK's context managers (anyio cancel scopes must be
entered and left in one task), watches the connection (a ping every `ping_interval_s`, and any call
that finds it closed), and restarts a dead server with exponential backoff, giving up after
`max_restarts` restarts that did not stay up. A server that cannot start is only reported
(`status()`, for `seedbot doctor` and `/tools`); it never stops the bot.

A stdio server gets exactly the environment its config gives plus a minimal PATH: none of the bot's
variables (API keys, chat tokens) reach it. The SDK itself adds HOME, LOGNAME, SHELL, TERM and USER,
which identify the account but are not secrets. HTTP server URLs are the operator's, so they are not
put through fetch_url's address guard.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import time
from collections.abc import Iterable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import anyio
import httpx2
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp import types as mcp_types
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from pydantic import BaseModel, ConfigDict, ValidationError

from core.config import ConfigError, Settings
from core.llm.types import ContentPart
from core.media.pipeline import MediaPipeline
from core.tools.base import Tool, ToolContext, ToolResult
from core.tools.names import namespaced

log = logging.getLogger("seedbot.tools.mcp")

MINIMAL_PATH = "/usr/local/bin:/usr/bin:/bin"
ServerState = Literal["starting", "ok", "unavailable", "stopped"]

# --- configuration -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StdioServer:
    name: str
    command: str
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None
    confirm: bool = False

    def parameters(self) -> StdioServerParameters:
        """What the SDK spawns: the config's environment over a minimal PATH, nothing of ours."""
        return StdioServerParameters(
            command=self.command, args=list(self.args), env={"PATH": MINIMAL_PATH, **self.env}, cwd=self.cwd
        )


@dataclass(frozen=True, slots=True)
class HttpServer:
    name: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    confirm: bool = False


ServerConfig = StdioServer | HttpServer


class _Entry(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    command: str | None = None
    args: list[str] = []
    env: dict[str, str] = {}
    cwd: str | None = None
    url: str | None = None
    headers: dict[str, str] = {}
    confirm: bool = False


def parse_mcp_config(data: Any) -> list[ServerConfig]:
    """Servers from the parsed JSON; ConfigError (one line) for anything unusable."""
    prefix = "SEEDBOT_MCP_CONFIG"
    servers = data.get("mcpServers") if isinstance(data, dict) else None
    if not isinstance(servers, dict):
        raise ConfigError(f'{prefix}: expected an object {{"mcpServers": {{"NAME": {{...}}}}}}')
    configs: list[ServerConfig] = []
    for name, raw in servers.items():
        if not name.strip():
            raise ConfigError(f"{prefix}: a server has an empty name")
        try:
            entry = _Entry.model_validate(raw)
        except ValidationError as error:
            problem = error.errors()[0]
            where = ".".join(str(part) for part in problem["loc"]) or "entry"
            raise ConfigError(f"{prefix}: server {name!r}: {where}: {problem['msg']}") from None
        if (entry.command is None) == (entry.url is None):
            raise ConfigError(f'{prefix}: server {name!r}: give either "command" (stdio) or "url" (HTTP)')
        if entry.url is not None:
            if not entry.url.startswith(("http://", "https://")):
                raise ConfigError(f"{prefix}: server {name!r}: url must start with http:// or https://")
            configs.append(HttpServer(name, entry.url, dict(entry.headers), entry.confirm))
        else:
            assert entry.command is not None
            if not entry.command.strip():
                raise ConfigError(f"{prefix}: server {name!r}: command is empty")
            configs.append(
                StdioServer(name, entry.command, tuple(entry.args), dict(entry.env), entry.cwd, entry.confirm)
            )
    return configs


def load_mcp_config(value: str | None) -> list[ServerConfig]:
    """`SEEDBOT_MCP_CONFIG`: inline JSON (starting with `{` or `[`), a JSON file path, or unset."""
    if value is None or not value.strip():
        return []
    text = value.strip()
    if not text.startswith(("{", "[")):
        try:
            text = Path(text).expanduser().read_text(encoding="utf-8")
        except OSError as error:
            raise ConfigError(f"SEEDBOT_MCP_CONFIG: cannot read {value}: {error.strerror}") from None
    try:
        data = json.loads(text)
    except ValueError as error:
        raise ConfigError(f"SEEDBOT_MCP_CONFIG: not valid JSON ({error})") from None
    return parse_mcp_config(data)


# --- results -----------------------------------------------------------------------------------------


async def convert_result(
    result: mcp_types.CallToolResult, media: MediaPipeline | None, label: str
) -> ToolResult:
    """An MCP tool result as ours: text blocks as text, images through the media pipeline."""
    texts: list[str] = []
    parts: list[ContentPart] = []
    for index, block in enumerate(result.content):
        if isinstance(block, mcp_types.TextContent):
            texts.append(block.text)
        elif isinstance(block, mcp_types.ImageContent):
            texts.extend(await _image(block, media, f"{label}-image-{index + 1}", parts))
        elif isinstance(block, mcp_types.EmbeddedResource):
            resource = block.resource
            if isinstance(resource, mcp_types.TextResourceContents):
                texts.append(resource.text)
            else:
                texts.append(f"[binary resource {resource.uri} not shown]")
        elif isinstance(block, mcp_types.ResourceLink):
            texts.append(f"[resource: {block.uri}]")
        else:
            texts.append(f"[{block.type} content not shown]")
    if not texts and not parts and result.structured_content is not None:
        texts.append(json.dumps(result.structured_content, ensure_ascii=False))
    return ToolResult(text="\n".join(texts), parts=parts, ok=not result.is_error)


async def _image(
    block: mcp_types.ImageContent, media: MediaPipeline | None, name: str, parts: list[ContentPart]
) -> list[str]:
    if media is None:
        return ["[image not shown]"]
    try:
        data = base64.b64decode(block.data, validate=True)
    except (binascii.Error, ValueError):
        return ["[an image that could not be decoded]"]
    prepared = await media.prepare_bytes(name, data)
    parts.extend(prepared.parts)
    return prepared.notes


# --- one server --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServerStatus:
    name: str
    state: ServerState
    reason: str = ""
    tools: int = 0

    def line(self) -> str:
        """One line for `seedbot doctor` and `/tools`."""
        if self.state == "ok":
            return f"{self.name}: ok ({self.tools} tool{'s' if self.tools != 1 else ''})"
        return f"{self.name}: {self.state}" + (f" — {self.reason}" if self.reason else "")


class ServerUnavailable(Exception):
    """The server cannot take calls now; `str()` says why."""


class CallFailed(Exception):
    """The server took the call but answered with a protocol error; `str()` is its message."""


def describe_failure(error: BaseException) -> str:
    """A one-line reason for a server that would not start or stopped, without secrets."""
    if isinstance(error, BaseExceptionGroup) and error.exceptions:
        return describe_failure(error.exceptions[0])
    if isinstance(error, FileNotFoundError):
        return f"command not found: {error.filename or 'the server command'}"
    if isinstance(error, PermissionError):
        return f"command not executable: {error.filename or 'the server command'}"
    if isinstance(error, TimeoutError):
        return "did not answer in time"
    if isinstance(error, httpx2.HTTPStatusError):
        return f"HTTP {error.response.status_code} from the server"
    if isinstance(error, httpx2.HTTPError):
        return f"cannot connect ({type(error).__name__})"
    message = str(error).splitlines()[0] if str(error) else ""
    return f"{type(error).__name__}: {message}"[:200] if message else type(error).__name__


@dataclass(frozen=True, slots=True)
class ConnectionOptions:
    """How each server connection is timed, watched and restarted."""

    call_timeout_s: float = 30.0
    start_timeout_s: float = 30.0
    # Restarts in a row (of runs shorter than `healthy_after_s`) before the server is given up.
    max_restarts: int = 3
    backoff_s: float = 1.0
    max_backoff_s: float = 60.0
    ping_interval_s: float = 30.0
    healthy_after_s: float = 60.0


class McpConnection:
    """One configured server: its runner task, its session while up, and its state."""

    def __init__(self, config: ServerConfig, options: ConnectionOptions | None = None) -> None:
        self.config = config
        self.options = options or ConnectionOptions()
        self.restarts = 0
        self._state: ServerState = "starting"
        self._reason = ""
        self._session: ClientSession | None = None
        self._tools: list[mcp_types.Tool] = []
        self._settled = asyncio.Event()
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def status(self) -> ServerStatus:
        tools = len(self._tools) if self._state == "ok" else 0
        return ServerStatus(self.name, self._state, self._reason, tools)

    @property
    def tools(self) -> list[mcp_types.Tool]:
        return list(self._tools) if self._state == "ok" else []

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"mcp-{self.name}")

    async def wait_settled(self, timeout_s: float) -> None:
        """Until the server is up or has failed once (or `timeout_s` passes)."""
        try:
            async with asyncio.timeout(timeout_s):
                await self._settled.wait()
        except TimeoutError:
            pass

    async def call(self, tool: str, arguments: dict[str, Any]) -> mcp_types.CallToolResult:
        session = self._session
        if session is None or self._state != "ok":
            raise ServerUnavailable(self._reason or "it is starting")
        try:
            result = await session.call_tool(
                tool, arguments, read_timeout_seconds=self.options.call_timeout_s
            )
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            self._broken()
            raise ServerUnavailable("the connection closed during the call") from None
        except MCPError as error:
            if error.code == mcp_types.CONNECTION_CLOSED:
                self._broken()
                raise ServerUnavailable("the server stopped during the call") from None
            if error.code == mcp_types.REQUEST_TIMEOUT:
                raise CallFailed(f"no answer within {self.options.call_timeout_s:g} seconds") from None
            raise CallFailed(error.message[:500]) from None
        if not isinstance(result, mcp_types.CallToolResult):
            raise CallFailed("the server answered with something that is not a tool result")
        return result

    async def aclose(self, grace_s: float = 5.0) -> None:
        self._stopping = True
        self._wake.set()
        task, self._task = self._task, None
        if task is None:
            return
        try:
            async with asyncio.timeout(grace_s):
                await asyncio.shield(task)
        except TimeoutError:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        self._state, self._session, self._tools = "stopped", None, []

    def _broken(self) -> None:
        self._wake.set()

    def _mark(self, state: ServerState, reason: str = "") -> None:
        if (state, reason) != (self._state, self._reason):
            log.info("MCP server %s: %s%s", self.name, state, f" ({reason})" if reason else "")
        self._state, self._reason = state, reason
        self._settled.set()

    async def _run(self) -> None:
        failures = 0
        while not self._stopping:
            started = time.monotonic()
            try:
                await self._serve_once()
                reason = "the server stopped"
            except Exception as error:
                reason = describe_failure(error)
            if self._stopping:
                break
            if time.monotonic() - started >= self.options.healthy_after_s:
                failures = 0
            failures += 1
            if failures > self.options.max_restarts:
                self._mark("unavailable", f"{reason} (gave up after {self.options.max_restarts} restarts)")
                return
            self._mark("unavailable", reason)
            delay = min(self.options.backoff_s * 2 ** (failures - 1), self.options.max_backoff_s)
            await self._sleep(delay)
            if not self._stopping:
                self.restarts += 1
        self._mark("stopped")

    async def _sleep(self, seconds: float) -> None:
        """Sleep, or less if woken to stop."""
        self._wake.clear()
        if self._stopping:
            return
        try:
            async with asyncio.timeout(seconds):
                await self._wake.wait()
        except TimeoutError:
            pass

    async def _serve_once(self) -> None:
        """Connect, list tools, then watch the connection until it breaks or we stop."""
        async with AsyncExitStack() as stack:
            read, write = await stack.enter_async_context(self._transport(stack))
            session = await stack.enter_async_context(
                ClientSession(read, write, read_timeout_seconds=self.options.call_timeout_s)
            )
            # Only awaits inside this scope: the contexts above must close in the order they opened.
            with anyio.fail_after(self.options.start_timeout_s):
                await session.initialize()
                tools = await _list_tools(session)
            self._wake.clear()
            self._session, self._tools = session, tools
            self._mark("ok")
            try:
                await self._watch(session)
            finally:
                # Closing the old connection takes a moment; calls meanwhile are told why they fail.
                self._session = None
                if not self._stopping:
                    self._mark("unavailable", "the connection was lost; reconnecting")

    def _transport(self, stack: AsyncExitStack) -> Any:
        config = self.config
        if isinstance(config, StdioServer):
            return stdio_client(config.parameters())
        client = httpx2.AsyncClient(
            headers=dict(config.headers), timeout=httpx2.Timeout(self.options.call_timeout_s, read=300.0)
        )
        stack.push_async_callback(client.aclose)
        return streamable_http_client(config.url, http_client=client)

    async def _watch(self, session: ClientSession) -> None:
        while not self._stopping:
            try:
                async with asyncio.timeout(self.options.ping_interval_s):
                    await self._wake.wait()
            except TimeoutError:
                pass
            if self._stopping:
                return
            if self._wake.is_set():  # a call found the connection closed
                return
            try:
                with anyio.fail_after(self.options.call_timeout_s):
                    await session.send_ping()
            except Exception:
                return


async def _list_tools(session: ClientSession) -> list[mcp_types.Tool]:
    tools: list[mcp_types.Tool] = []
    cursor: str | None = None
    for _ in range(100):  # a server that pages forever does not hang the start
        params = mcp_types.PaginatedRequestParams(cursor=cursor) if cursor else None
        page = await session.list_tools(params=params)
        tools.extend(page.tools)
        cursor = page.next_cursor
        if not cursor:
            break
    return tools


# --- tools and the manager ---------------------------------------------------------------------------


class McpTool(Tool):
    """One tool of one MCP server, offered as `SERVER__tool` with its schema passed through."""

    def __init__(self, connection: McpConnection, spec: mcp_types.Tool, media: MediaPipeline | None) -> None:
        self.connection = connection
        self.remote_name = spec.name
        self.name = namespaced(connection.name, spec.name)
        self.title = spec.title or (spec.annotations.title if spec.annotations else None) or spec.name
        self.description = spec.description or f"{self.title} (from the {connection.name} MCP server)"
        self.parameters = dict(spec.input_schema) or {"type": "object", "properties": {}}
        self.read_only = bool(spec.annotations and spec.annotations.read_only_hint)
        self._media = media

    @property
    def needs_confirmation(self) -> bool:
        return self.connection.config.confirm or not self.read_only

    def status_text(self, args: dict[str, Any]) -> str:
        return f"🔧 {self.connection.name}: {self.title}…"

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        server = self.connection.name
        try:
            result = await self.connection.call(self.remote_name, args)
        except ServerUnavailable as reason:
            return ToolResult.error(f"The {server} MCP server is unavailable: {reason}.")
        except CallFailed as reason:
            return ToolResult.error(f"The {server} MCP server could not run {self.remote_name}: {reason}")
        converted = await convert_result(result, self._media, self.remote_name)
        converted.summary = f"{'Used' if converted.ok else 'Failed'} {server}: {self.title}"
        return converted


class McpManager:
    """All configured MCP servers: start, list their tools, report their status, stop."""

    def __init__(
        self,
        configs: Iterable[ServerConfig],
        *,
        media: MediaPipeline | None = None,
        options: ConnectionOptions | None = None,
    ) -> None:
        self._media = media
        self.options = options or ConnectionOptions()
        self._connections = [McpConnection(config, self.options) for config in configs]

    @classmethod
    def from_settings(cls, settings: Settings, media: MediaPipeline | None = None) -> McpManager:
        """ConfigError (one line) when SEEDBOT_MCP_CONFIG is unusable."""
        options = ConnectionOptions(call_timeout_s=settings.tool_timeout_s)
        return cls(load_mcp_config(settings.mcp_config), media=media, options=options)

    @property
    def connections(self) -> list[McpConnection]:
        return list(self._connections)

    async def start(self, *, wait: bool = True) -> None:
        """Start every server; with `wait`, until each is up or has failed once (bounded)."""
        for connection in self._connections:
            connection.start()
        if wait and self._connections:
            await asyncio.gather(
                *(c.wait_settled(self.options.start_timeout_s + 1) for c in self._connections)
            )

    def tools(self) -> list[McpTool]:
        """The tools of the servers that are up now."""
        return [McpTool(c, spec, self._media) for c in self._connections for spec in c.tools]

    def status(self) -> list[ServerStatus]:
        return [connection.status for connection in self._connections]

    async def aclose(self) -> None:
        await asyncio.gather(*(connection.aclose() for connection in self._connections))

    async def __aenter__(self) -> McpManager:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
