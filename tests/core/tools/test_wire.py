"""A whole tool round, built with the tool layer, is a request the published API schema accepts."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from core.config import Settings
from core.llm.types import ChatRequest, FunctionCall, SystemMessage, ToolCall, UserMessage
from core.media.pipeline import MediaPipeline
from core.tools.base import ToolContext, assistant_message, media_message
from core.tools.clock import CurrentTime
from core.tools.fetch import FetchUrl
from core.tools.mcp import McpManager, StdioServer
from core.tools.search import SearchConversation
from core.tools.toolbox import Toolbox
from tests.fakes.model_server import schema_problems

FAKE = str(Path(__file__).resolve().parents[2] / "fakes" / "mcp_server.py")


async def test_specs_tool_calls_results_and_images_form_a_valid_request():
    media = MediaPipeline(Settings(_env_file=None))
    async with McpManager([StdioServer("fake", sys.executable, (FAKE,))], media=media) as mcp:
        toolbox = Toolbox([CurrentTime(), SearchConversation(), FetchUrl(media), *mcp.tools()])
        specs = toolbox.specs()
        long_name = next(
            spec.function.name for spec in specs if spec.function.name.startswith("fake__catalog")
        )
        calls = [
            ToolCall(id="c1", function=FunctionCall(name="current_time", arguments='{"timezone": ""}')),
            ToolCall(id="c2", function=FunctionCall(name="fake__picture", arguments="{}")),
            ToolCall(id="c3", function=FunctionCall(name=long_name, arguments=json.dumps({"query": "x"}))),
            ToolCall(id="c4", function=FunctionCall(name="nonexistent", arguments="{")),
        ]
        ctx = ToolContext(platform="test")
        results = [await toolbox.call(call, ctx) for call in calls]
    assert [result.ok for result in results] == [True, True, True, False]
    messages = [
        SystemMessage(content="Be brief."),
        UserMessage(content="What time is it, and show me the picture."),
        assistant_message(None, calls),
        *(result.tool_message(call.id) for call, result in zip(calls, results, strict=True)),
    ]
    if (media_turn := media_message(results)) is not None:
        messages.append(media_turn)
    request = ChatRequest(
        model="bytedance/dola-seed-2-0-lite",
        messages=messages,
        max_tokens=1024,
        tools=specs,
        tool_choice="auto",
    )
    payload = request.to_payload()
    assert schema_problems(payload) == []
    assert payload["messages"][2]["content"] == ""
    assert payload["messages"][-1]["content"][1]["type"] == "image_url"
    assert "tool_calls" not in assistant_message("Done.", []).model_dump(exclude_none=True)
