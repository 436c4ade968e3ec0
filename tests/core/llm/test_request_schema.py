"""Every request shape the bot produces is valid against the published OpenAPI schema."""

from __future__ import annotations

import base64

import pytest

from core.llm.types import (
    AssistantMessage,
    ChatRequest,
    FunctionCall,
    FunctionDefinition,
    ImagePart,
    ImageURL,
    JSONSchemaFormat,
    NamedFunction,
    NamedToolChoice,
    Prediction,
    ResponseFormat,
    SystemMessage,
    TextPart,
    Tool,
    ToolCall,
    ToolMessage,
    UserMessage,
    VideoPart,
    VideoURL,
)
from tests.fakes.model_server import schema_problems

MODEL = "bytedance/dola-seed-2-0-lite"
PNG = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n").decode()
MP4 = "data:video/mp4;base64," + base64.b64encode(b"\x00\x00\x00\x18ftypmp42").decode()
TOOL = Tool(function=FunctionDefinition(name="lookup", description="Look up", parameters={"type": "object"}))

SHAPES = {
    "plain text": ChatRequest(model=MODEL, messages=[UserMessage(content="hi")], max_tokens=8192),
    "conversation with system, names and effort": ChatRequest(
        model=MODEL,
        messages=[
            SystemMessage(content="Be brief."),
            UserMessage(content="Ana: hello", name="ana"),
            AssistantMessage(content="Hello Ana."),
            UserMessage(content=[TextPart(text="Bo: and me?")], name="bo"),
        ],
        max_tokens=2048,
        reasoning_effort="high",
    ),
    "image and video parts": ChatRequest(
        model=MODEL,
        messages=[
            UserMessage(
                content=[
                    TextPart(text="What is in these?"),
                    ImagePart(image_url=ImageURL(url=PNG, detail="high")),
                    ImagePart(image_url=ImageURL(url="https://example.com/cat.png")),
                    VideoPart(video_url=VideoURL(url=MP4)),
                ]
            )
        ],
        max_tokens=4096,
        reasoning_effort="low",
    ),
    "tools and a tool answer": ChatRequest(
        model=MODEL,
        messages=[
            UserMessage(content="look it up"),
            AssistantMessage(
                tool_calls=[ToolCall(id="c1", function=FunctionCall(name="lookup", arguments="{}"))]
            ),
            ToolMessage(content='{"result": 1}', tool_call_id="c1"),
        ],
        max_tokens=512,
        tools=[TOOL],
        tool_choice=NamedToolChoice(function=NamedFunction(name="lookup")),
        parallel_tool_calls=False,
    ),
    "every sampling option": ChatRequest(
        model=MODEL,
        messages=[UserMessage(content="x")],
        max_tokens=16,
        stream=False,
        temperature=0.7,
        top_p=0.9,
        frequency_penalty=0.5,
        presence_penalty=-0.5,
        seed=42,
        prediction=Prediction(content="draft"),
        tools=[TOOL],
        tool_choice="auto",
        response_format=ResponseFormat(
            type="json_schema",
            json_schema=JSONSchemaFormat(name="answer", schema={"type": "object"}, strict=True),
        ),
    ),
    "json object format": ChatRequest(
        model=MODEL,
        messages=[UserMessage(content="json please")],
        max_tokens=16,
        response_format=ResponseFormat(type="json_object"),
    ),
}


@pytest.mark.parametrize("name", SHAPES)
def test_request_shape_is_valid_against_the_openapi_schema(name):
    payload = SHAPES[name].to_payload()
    assert schema_problems(payload) == []
    assert payload["max_tokens"] >= 1


def test_streaming_requests_always_ask_for_usage():
    assert SHAPES["plain text"].to_payload()["stream_options"] == {"include_usage": True}


def test_the_validator_does_catch_a_bad_shape():
    assert schema_problems({"model": MODEL, "messages": [{"role": "user", "content": [{"type": "audio"}]}]})
