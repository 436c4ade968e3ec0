"""A real MCP server (the official SDK's MCPServer) for the MCP manager tests.

Run as a script: `python tests/fakes/mcp_server.py` speaks stdio; `--http PORT` serves streamable HTTP
on 127.0.0.1. Its tools: a read-only lookup, a tool with side effects, a read-only tool with a dotted
name longer than the API allows, one that reports its own environment, one that returns an image, and
one that kills the server (to test restarts).
"""

from __future__ import annotations

import base64
import json
import os
import sys
from typing import Any

from mcp.server.mcpserver import Image, MCPServer
from mcp.types import ToolAnnotations

LONG_NAME = "catalog.search." + "very_long_tool_name_" * 3 + "end"
CAPITALS = {"france": "Paris", "japan": "Tokyo", "kenya": "Nairobi"}
# A 1x1 red PNG.
RED_PIXEL = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC"
)


def mcp_config(name: str = "fake", **options: Any) -> str:
    """SEEDBOT_MCP_CONFIG (inline JSON) that runs this server over stdio as `name`."""
    entry = {"command": sys.executable, "args": [os.path.abspath(__file__)], **options}
    return json.dumps({"mcpServers": {name: entry}})


server = MCPServer("fake-tools")
notes: list[str] = []


@server.tool(
    description="Look up the capital of a country.", annotations=ToolAnnotations(read_only_hint=True)
)
def lookup(country: str) -> str:
    return CAPITALS.get(country.strip().lower(), f"no capital known for {country}")


@server.tool(description="Record a note (changes the server's state).")
def record_note(note: str, urgent: bool = False) -> str:
    notes.append(note)
    return f"recorded note {len(notes)}{' (urgent)' if urgent else ''}"


@server.tool(
    name=LONG_NAME, description="Search the catalog.", annotations=ToolAnnotations(read_only_hint=True)
)
def catalog_search(query: str) -> str:
    return f"catalog results for {query}"


@server.tool(
    description="The names of this server's environment variables.",
    annotations=ToolAnnotations(read_only_hint=True),
)
def environment() -> str:
    return "\n".join(f"{key}={os.environ[key] if key == 'PATH' else '…'}" for key in sorted(os.environ))


@server.tool(description="A tiny picture.", annotations=ToolAnnotations(read_only_hint=True))
def picture() -> Image:
    return Image(data=RED_PIXEL, format="png")


@server.tool(description="Fail on purpose.", annotations=ToolAnnotations(read_only_hint=True))
def fails() -> str:
    raise ValueError("the fake failed on purpose")


@server.tool(description="Kill the server process at once.")
def crash() -> str:
    os._exit(3)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--http":
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        server.run()
