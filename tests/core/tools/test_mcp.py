"""The MCP manager against a real MCP server (tests/fakes/mcp_server.py) over stdio and streamable HTTP."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from core.config import ConfigError, Settings
from core.llm.types import FunctionCall, ToolCall
from core.media.pipeline import MediaPipeline
from core.tools.base import ToolContext
from core.tools.mcp import (
    MINIMAL_PATH,
    ConnectionOptions,
    HttpServer,
    McpManager,
    StdioServer,
    load_mcp_config,
    parse_mcp_config,
)
from core.tools.names import WIRE_NAME
from core.tools.toolbox import Toolbox
from tests.fakes.mcp_server import LONG_NAME

FAKE = str(Path(__file__).resolve().parents[2] / "fakes" / "mcp_server.py")
CTX = ToolContext(platform="test")
FAST = ConnectionOptions(backoff_s=0.05, start_timeout_s=20.0, call_timeout_s=10.0, ping_interval_s=0.5)


def fake(name: str = "fake", **options: Any) -> StdioServer:
    return StdioServer(name, sys.executable, (FAKE,), **options)


def call(name: str, arguments: dict[str, Any] | None = None) -> ToolCall:
    return ToolCall(id="c1", function=FunctionCall(name=name, arguments=json.dumps(arguments or {})))


async def eventually(check: Callable[[], bool], timeout_s: float = 20.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not check():  # noqa: ASYNC110 (polls state the manager reports; no event to wait on)
            await asyncio.sleep(0.05)


@pytest.fixture
async def manager(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[McpManager]:
    # A secret in the bot's own environment, which the server must never see.
    monkeypatch.setenv("AIML_API_KEY", "sk-bot-secret")
    media = MediaPipeline(Settings(_env_file=None))
    async with McpManager([fake(env={"FAKE_SETTING": "on"})], media=media, options=FAST) as started:
        yield started


async def test_the_manager_starts_the_server_and_lists_namespaced_tools_with_schemas(manager: McpManager):
    assert [status.line() for status in manager.status()] == ["fake: ok (7 tools)"]
    tools = {tool.name: tool for tool in manager.tools()}
    assert set(tools) == {
        f"fake__{name}"
        for name in ("lookup", "record_note", LONG_NAME, "environment", "picture", "fails", "crash")
    }
    lookup = tools["fake__lookup"]
    assert lookup.parameters["properties"]["country"]["type"] == "string"
    assert lookup.parameters["required"] == ["country"]
    assert lookup.description == "Look up the capital of a country."
    specs = Toolbox(manager.tools()).specs()
    assert all(WIRE_NAME.match(spec.function.name) for spec in specs)
    assert "fake__lookup" in {spec.function.name for spec in specs}


async def test_a_lookup_runs_through_the_toolbox_even_under_a_cleaned_name(manager: McpManager):
    toolbox = Toolbox(manager.tools())
    result = await toolbox.call(call("fake__lookup", {"country": "Japan"}), CTX)
    assert result.ok and result.text == "Tokyo"
    assert result.summary == "Used fake: lookup"
    long_wire = next(
        spec.function.name for spec in toolbox.specs() if spec.function.name.startswith("fake__catalog")
    )
    assert len(long_wire) <= 64
    result = await toolbox.call(call(long_wire, {"query": "maps"}), CTX)
    assert result.ok and result.text == "catalog results for maps"


async def test_tools_not_declared_read_only_need_confirmation(manager: McpManager):
    toolbox = Toolbox(manager.tools())
    assert not toolbox.needs_confirmation(call("fake__lookup"))
    assert toolbox.needs_confirmation(call("fake__record_note"))
    assert toolbox.needs_confirmation(call("fake__crash"))
    tools = {tool.name: tool for tool in manager.tools()}
    assert tools["fake__lookup"].read_only and not tools["fake__record_note"].read_only
    assert toolbox.status_text(call("fake__lookup")) == "🔧 fake: lookup…"


async def test_every_tool_of_a_confirm_server_needs_confirmation():
    async with McpManager([fake("careful", confirm=True)], options=FAST) as manager:
        toolbox = Toolbox(manager.tools())
        assert toolbox.needs_confirmation(call("careful__lookup"))


async def test_the_server_sees_only_its_configured_environment_and_a_minimal_path(manager: McpManager):
    result = await Toolbox(manager.tools()).call(call("fake__environment"), CTX)
    variables = dict(line.split("=", 1) for line in result.text.splitlines())
    assert variables["PATH"] == MINIMAL_PATH
    assert "FAKE_SETTING" in variables
    assert "AIML_API_KEY" not in variables
    assert set(variables) <= {"PATH", "FAKE_SETTING", "HOME", "LOGNAME", "SHELL", "TERM", "USER", "LC_CTYPE"}


async def test_images_and_tool_errors_come_back_as_results(manager: McpManager):
    toolbox = Toolbox(manager.tools())
    picture = await toolbox.call(call("fake__picture"), CTX)
    assert picture.ok and picture.media and picture.media[0].type == "image_url"
    failed = await toolbox.call(call("fake__fails"), CTX)
    assert not failed.ok and "fails" in failed.text


async def test_a_dead_server_is_restarted(manager: McpManager):
    toolbox = Toolbox(manager.tools())
    died = await toolbox.call(call("fake__crash"), CTX)
    assert not died.ok and "unavailable" in died.text
    connection = manager.connections[0]
    await eventually(lambda: connection.restarts == 1 and connection.status.state == "ok")
    # The tools offered before the restart reach the new process.
    result = await toolbox.call(call("fake__lookup", {"country": "Kenya"}), CTX)
    assert result.ok and result.text == "Nairobi"


async def test_restarts_are_bounded():
    async with McpManager([fake()], options=replace(FAST, max_restarts=1)) as manager:
        connection = manager.connections[0]
        toolbox = Toolbox(manager.tools())
        await toolbox.call(call("fake__crash"), CTX)
        await eventually(lambda: connection.status.state == "ok" and connection.restarts == 1)
        await toolbox.call(call("fake__crash"), CTX)
        await eventually(lambda: "gave up" in connection.status.reason)
        assert connection.status.state == "unavailable" and connection.restarts == 1
        assert manager.tools() == []
        result = await toolbox.call(call("fake__lookup", {"country": "France"}), CTX)
        assert not result.ok and "unavailable" in result.text


async def test_a_server_whose_command_does_not_exist_is_reported_unavailable():
    missing = StdioServer("ghost", "/nonexistent/mcp-server-binary")
    async with McpManager([missing, fake()], options=replace(FAST, max_restarts=0)) as manager:
        ghost, working = manager.status()
        assert ghost.state == "unavailable"
        assert ghost.line().startswith(
            "ghost: unavailable — command not found: /nonexistent/mcp-server-binary"
        )
        assert working.state == "ok"
        assert {tool.name.split("__")[0] for tool in manager.tools()} == {"fake"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
async def http_server() -> AsyncIterator[str]:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        FAKE,
        "--http",
        str(port),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        async with asyncio.timeout(20):
            while True:
                try:
                    _, writer = await asyncio.open_connection("127.0.0.1", port)
                except OSError:
                    await asyncio.sleep(0.1)
                    continue
                writer.close()
                await writer.wait_closed()
                break
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        await process.wait()


async def test_a_streamable_http_server(http_server: str):
    config = HttpServer("remote", http_server, {"Authorization": "Bearer test-token"})
    async with McpManager([config], options=FAST) as manager:
        assert manager.status()[0].line() == "remote: ok (7 tools)"
        result = await Toolbox(manager.tools()).call(call("remote__lookup", {"country": "France"}), CTX)
        assert result.ok and result.text == "Paris"


async def test_an_unreachable_http_server_is_unavailable(unused_port: int):
    config = HttpServer("down", f"http://127.0.0.1:{unused_port}/mcp")
    async with McpManager([config], options=replace(FAST, max_restarts=0)) as manager:
        [status] = manager.status()
        assert status.state == "unavailable" and status.reason


def test_config_in_the_common_format():
    configs = parse_mcp_config(
        {
            "mcpServers": {
                "files": {"command": "npx", "args": ["-y", "server"], "env": {"A": "1"}, "type": "stdio"},
                "tracker": {"url": "https://mcp.example.com/mcp", "headers": {"X": "y"}, "confirm": True},
            }
        }
    )
    assert configs == [
        StdioServer("files", "npx", ("-y", "server"), {"A": "1"}),
        HttpServer("tracker", "https://mcp.example.com/mcp", {"X": "y"}, confirm=True),
    ]
    assert configs[0].parameters().env == {"PATH": MINIMAL_PATH, "A": "1"}


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("[]", 'expected an object {"mcpServers"'),
        ('{"servers": {}}', 'expected an object {"mcpServers"'),
        ('{"mcpServers": {"x": {}}}', 'server \'x\': give either "command" (stdio) or "url" (HTTP)'),
        ('{"mcpServers": {"x": {"command": "a", "url": "http://h"}}}', "give either"),
        ('{"mcpServers": {"x": {"url": "ftp://h"}}}', "server 'x': url must start with http:// or https://"),
        (
            '{"mcpServers": {"x": {"command": "a", "args": "b"}}}',
            "server 'x': args: Input should be a valid list",
        ),
        ('{"mcpServers": {"x": {"command": "a", "env": {"K": 1}}}}', "server 'x': env.K:"),
        ('{"mcpServers": ', "not valid JSON"),
        ("/nonexistent/mcp.json", "cannot read /nonexistent/mcp.json"),
    ],
)
def test_config_errors_are_one_clear_line(config: str, message: str):
    with pytest.raises(ConfigError) as raised:
        load_mcp_config(config)
    text = str(raised.value)
    assert text.startswith("SEEDBOT_MCP_CONFIG: ") and message in text and "\n" not in text


def test_config_from_a_file_and_from_settings(tmp_path: Path):
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps({"mcpServers": {"f": {"command": "x"}}}), encoding="utf-8")
    assert load_mcp_config(str(path)) == [StdioServer("f", "x")]
    assert load_mcp_config(None) == [] and load_mcp_config("  ") == []
    manager = McpManager.from_settings(Settings(_env_file=None, mcp_config=str(path)))
    assert [c.name for c in manager.connections] == ["f"]
