"""The chat-completions wire format (mirrors the OpenAPI schema) and the typed stream events we emit.

Request models serialise with `to_payload()`, which drops unset fields so that what goes on the wire is
exactly what the caller asked for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# --- request -----------------------------------------------------------------------------------------


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TextPart(_Wire):
    type: Literal["text"] = "text"
    text: str


class ImageURL(_Wire):
    url: str
    detail: Literal["low", "high", "auto"] | None = None


class ImagePart(_Wire):
    type: Literal["image_url"] = "image_url"
    image_url: ImageURL


class VideoURL(_Wire):
    url: str


class VideoPart(_Wire):
    type: Literal["video_url"] = "video_url"
    video_url: VideoURL


ContentPart = TextPart | ImagePart | VideoPart


class SystemMessage(_Wire):
    role: Literal["system"] = "system"
    content: str | list[TextPart]
    name: str | None = None


class UserMessage(_Wire):
    role: Literal["user"] = "user"
    content: str | list[ContentPart]
    name: str | None = None


class FunctionCall(_Wire):
    name: str
    arguments: str


class ToolCall(_Wire):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class AssistantMessage(_Wire):
    role: Literal["assistant"] = "assistant"
    content: str | list[TextPart] | None = None
    name: str | None = None
    refusal: str | None = None
    tool_calls: list[ToolCall] | None = None


class ToolMessage(_Wire):
    role: Literal["tool"] = "tool"
    content: str
    tool_call_id: str


Message = SystemMessage | UserMessage | AssistantMessage | ToolMessage


class FunctionDefinition(_Wire):
    name: str
    parameters: dict[str, Any]
    description: str | None = None
    strict: bool | None = None


class Tool(_Wire):
    type: Literal["function"] = "function"
    function: FunctionDefinition


class NamedFunction(_Wire):
    name: str


class NamedToolChoice(_Wire):
    type: Literal["function"] = "function"
    function: NamedFunction


class StreamOptions(_Wire):
    include_usage: bool = True


class Prediction(_Wire):
    type: Literal["content"] = "content"
    content: str | list[TextPart]


class JSONSchemaFormat(_Wire):
    name: str
    description: str | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ResponseFormat(_Wire):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JSONSchemaFormat | None = None


Effort = Literal["low", "medium", "high"]


class ChatRequest(_Wire):
    model: str
    messages: list[Message]
    max_tokens: int = Field(ge=1)
    stream: bool = True
    stream_options: StreamOptions | None = None
    tools: list[Tool] | None = None
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0.01, le=1)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    seed: int | None = Field(default=None, ge=1)
    prediction: Prediction | None = None
    reasoning_effort: Effort | None = None
    response_format: ResponseFormat | None = None

    def to_payload(self) -> dict[str, Any]:
        payload = self.model_dump(mode="json", exclude_none=True, by_alias=True)
        if self.stream and self.stream_options is None:
            # Without this the stream carries no usage and we could not account for the call.
            payload["stream_options"] = {"include_usage": True}
        return payload


# --- results and stream events -----------------------------------------------------------------------

FinishReason = Literal["stop", "length", "content_filter", "tool_calls", "function_call"]


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    reasoning_tokens: int = 0
    cached_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        """Two calls' usage together (an answer of several model calls)."""
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.total_tokens + other.total_tokens,
            self.reasoning_tokens + other.reasoning_tokens,
            self.cached_tokens + other.cached_tokens,
        )


@dataclass(frozen=True, slots=True)
class Cost:
    """What the API says a call cost (`meta.usage`); absent when the endpoint does not report it."""

    usd: Decimal | None = None
    credits: int | None = None


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ContentDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """One streamed fragment of a tool call; fragments with the same `index` belong together."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass(frozen=True, slots=True)
class Finish:
    reason: FinishReason


@dataclass(frozen=True, slots=True)
class UsageReport:
    usage: Usage


@dataclass(frozen=True, slots=True)
class CostReport:
    cost: Cost


StreamEvent = ReasoningDelta | ContentDelta | ToolCallDelta | Finish | UsageReport | CostReport


@dataclass(slots=True)
class CompletionResult:
    """Everything one model call produced, accumulated from its events (streamed or not)."""

    request_id: str
    content: str = ""
    reasoning: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish_reason: FinishReason | None = None
    usage: Usage | None = None
    cost: Cost = field(default_factory=Cost)
    model: str | None = None
    # Seconds from sending the request to the first reasoning or content token, and to the end.
    time_to_first_token_s: float | None = None
    total_s: float | None = None

    @property
    def interrupted(self) -> bool:
        """The stream ended without the model saying it was finished."""
        return self.finish_reason is None
