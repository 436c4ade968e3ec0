"""The toolbox runs whatever the model sends without ever raising: every failure is a readable result."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from core.config import Settings
from core.llm.types import FunctionCall, ImagePart, ImageURL, TextPart, ToolCall
from core.media.pipeline import MediaPipeline
from core.tools.base import Tool, ToolContext, ToolResult, media_message
from core.tools.builtin import builtin_tools
from core.tools.names import WIRE_NAME
from core.tools.toolbox import Toolbox

CTX = ToolContext(platform="test", channel_id="C1", user_id="U1")


class Echo(Tool):
    name = "echo.tool"
    description = "Echo the arguments back."
    parameters = {  # noqa: RUF012
        "type": "object",
        "properties": {"text": {"type": "string"}, "note": {"type": "string"}, "count": {"type": "integer"}},
        "required": ["text"],
    }

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        return ToolResult(text=repr(sorted(args.items())), summary="echoed")

    def status_text(self, args: dict[str, Any]) -> str:
        return f"🔧 Echoing {args.get('text', '')!r}"


class Hangs(Tool):
    name = "hangs"
    description = "Never finishes."
    parameters = {"type": "object", "properties": {}}  # noqa: RUF012
    timeout_s = 0.2

    def __init__(self) -> None:
        self.cancelled = False

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        return ToolResult(text="never")


class Raises(Tool):
    name = "raises"
    description = "Always fails."
    parameters = {"type": "object", "properties": {}}  # noqa: RUF012

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        raise RuntimeError("secret detail from args")


class Garbage(Tool):
    name = "garbage"
    description = "Returns something that is not a ToolResult."
    parameters = {"type": "object", "properties": {}}  # noqa: RUF012

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        return {"not": "a result"}  # type: ignore[return-value]


class Huge(Tool):
    name = "huge"
    description = "Returns a lot of text and an image."
    parameters = {"type": "object", "properties": {}}  # noqa: RUF012

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        image = ImagePart(image_url=ImageURL(url="data:image/png;base64,AAAA"))
        return ToolResult(text="a" * 3000, parts=[TextPart(text="b" * 3000), image])


def call(name: str, arguments: str = "{}") -> ToolCall:
    return ToolCall(id="call_1", function=FunctionCall(name=name, arguments=arguments))


@pytest.fixture
def toolbox() -> Toolbox:
    return Toolbox([Echo(), Hangs(), Raises(), Garbage(), Huge()], timeout_s=5, max_result_chars=1000)


def test_specs_offer_every_tool_under_an_api_valid_name(toolbox: Toolbox):
    specs = toolbox.specs()
    names = [spec.function.name for spec in specs]
    assert names == ["echo_tool", "hangs", "raises", "garbage", "huge"]
    assert all(WIRE_NAME.match(name) for name in names)
    assert specs[0].function.parameters == Echo.parameters
    assert specs[0].model_dump()["type"] == "function"


async def test_a_cleaned_name_calls_the_tool_it_stands_for(toolbox: Toolbox):
    result = await toolbox.call(call("echo_tool", '{"text": "hi"}'), CTX)
    assert result.ok and result.text == "[('text', 'hi')]"


async def test_an_unknown_tool_is_refused_with_the_list_of_tools(toolbox: Toolbox):
    result = await toolbox.call(call("delete_everything"), CTX)
    assert not result.ok
    assert "no tool named 'delete_everything'" in result.text and "echo_tool" in result.text
    # The original (unclean) name was never offered on the wire either.
    assert not (await toolbox.call(call("echo.tool", '{"text": "x"}'), CTX)).ok


@pytest.mark.parametrize("arguments", ['{"text": "hi"', "[1, 2]", '"text"', "{'text': 'hi'}"])
async def test_arguments_that_are_not_a_json_object_are_an_error_result(toolbox: Toolbox, arguments: str):
    result = await toolbox.call(call("echo_tool", arguments), CTX)
    assert not result.ok and "JSON" in result.text
    assert result.tool_message("call_1").content.startswith("Error: ")


async def test_empty_arguments_mean_no_arguments(toolbox: Toolbox):
    assert (await toolbox.call(call("huge", ""), CTX)).ok
    assert (await toolbox.call(call("huge", "null"), CTX)).ok


async def test_empty_optional_arguments_are_dropped_but_required_ones_kept(toolbox: Toolbox):
    result = await toolbox.call(call("echo_tool", '{"text": "", "note": "", "count": null}'), CTX)
    assert result.text == "[('text', '')]"
    result = await toolbox.call(call("echo_tool", '{"text": "a", "note": "n", "count": 0}'), CTX)
    assert result.text == "[('count', 0), ('note', 'n'), ('text', 'a')]"


async def test_a_hanging_tool_is_stopped_at_its_timeout():
    hangs = Hangs()
    toolbox = Toolbox([hangs], timeout_s=30)
    started = asyncio.get_running_loop().time()
    result = await toolbox.call(call("hangs"), CTX)
    assert asyncio.get_running_loop().time() - started < 2
    assert not result.ok and "did not finish within 0.2 seconds" in result.text
    assert hangs.cancelled


async def test_the_toolbox_timeout_applies_to_tools_without_their_own():
    class Slow(Hangs):
        name = "slow"
        timeout_s = None

    result = await Toolbox([Slow()], timeout_s=0.1).call(call("slow"), CTX)
    assert not result.ok and "0.1 seconds" in result.text


async def test_a_raising_tool_becomes_an_error_result_without_its_message(
    toolbox: Toolbox, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO, logger="seedbot.tools")
    result = await toolbox.call(call("raises"), CTX)
    assert not result.ok and "RuntimeError" in result.text
    assert "secret detail" not in result.text
    assert "secret detail" not in caplog.text
    assert "raises: raised RuntimeError" in caplog.text


async def test_a_tool_returning_garbage_becomes_an_error_result(toolbox: Toolbox):
    result = await toolbox.call(call("garbage"), CTX)
    assert not result.ok and "no usable result" in result.text


async def test_oversized_output_is_cut_with_a_visible_marker(toolbox: Toolbox):
    result = await toolbox.call(call("huge"), CTX)
    assert result.text.startswith("a" * 1000)
    assert "cut here: the result had 6000 characters; only the first 1000 are shown" in result.text
    # The text parts beyond the budget are gone; the image is kept (it is not counted in characters).
    assert [type(part) for part in result.parts] == [ImagePart]
    assert len(result.model_text()) < 1200


async def test_logs_name_the_tool_and_outcome_but_never_the_arguments(
    toolbox: Toolbox, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.DEBUG, logger="seedbot.tools")
    await toolbox.call(call("echo_tool", '{"text": "my private words"}'), CTX)
    assert "echo.tool: ok in" in caplog.text
    assert "private" not in caplog.text


def test_status_text_and_confirmation_come_from_the_tool(toolbox: Toolbox):
    assert toolbox.status_text(call("echo_tool", '{"text": "deploy", "note": ""}')) == "🔧 Echoing 'deploy'"
    assert toolbox.status_text(call("echo_tool", "not json")) == "🔧 Echoing ''"
    assert toolbox.status_text(call("nope")) == "🔧 nope…"
    assert not toolbox.needs_confirmation(call("echo_tool"))
    assert not toolbox.needs_confirmation(call("nope"))

    class Writes(Echo):
        name = "writes"
        read_only = False

    assert Toolbox([Writes()]).needs_confirmation(call("writes"))


def test_two_tools_with_one_name_are_a_programming_error():
    with pytest.raises(ValueError, match="two tools"):
        Toolbox([Echo(), Echo()])


def test_images_travel_in_a_user_message_after_the_tool_messages():
    image = ImagePart(image_url=ImageURL(url="data:image/png;base64,AAAA"))
    results = [ToolResult(text="page text"), ToolResult(text="an image", parts=[image])]
    assert results[0].tool_message("c0").content == "page text"
    assert "follow in the next message" in results[1].tool_message("c1").content
    message = media_message(results)
    assert message is not None and message.content[1] == image  # type: ignore[index]
    assert media_message(results[:1]) is None


def test_the_builtin_tools_follow_the_settings():
    settings = Settings(_env_file=None, tool_timeout_s=7, tool_result_max_chars=900)
    media = MediaPipeline(settings)
    toolbox = Toolbox.from_settings(settings, builtin_tools(settings, media))
    assert [spec.function.name for spec in toolbox.specs()] == [
        "fetch_url",
        "current_time",
        "search_conversation",
    ]
    assert (toolbox.timeout_s, toolbox.max_result_chars) == (7, 900)
    assert builtin_tools(Settings(_env_file=None, tools_enabled=False), media) == []
