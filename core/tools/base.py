"""The tool abstraction: what a tool is, what it may know about the conversation, and what it returns.

Tools are platform-neutral: a Slack or Discord adapter hands them a `ToolContext` (ids, and capabilities
such as `ConversationSearch` that it implements), and they hand back a `ToolResult` that the answer
loop turns into messages for the model.

The API's tool message carries a string only, so a result's images cannot ride in it: `tool_message`
carries the text, and `media_message` puts the images and videos of a round's results into one user
message that follows the tool messages.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from core.llm.types import AssistantMessage, ContentPart, TextPart, ToolCall, ToolMessage, UserMessage


@dataclass(frozen=True, slots=True)
class FoundMessage:
    """One chat message a conversation search found."""

    author: str
    time: datetime
    text: str
    link: str | None = None


class SearchUnavailable(Exception):
    """The platform would not show the conversation; `str()` says why, for the model."""


class ConversationSearch(Protocol):
    """Searching the current conversation's channel; implemented by each platform adapter."""

    async def search(self, query: str | None, since: datetime | None, limit: int) -> list[FoundMessage]:
        """Messages matching `query` (None: any) posted at or after `since` (None: any time), newest first.
        Raises SearchUnavailable when the platform will not show them."""
        ...


@dataclass(frozen=True, slots=True)
class ToolContext:
    """What a tool may know about the request it runs for."""

    platform: str
    workspace_id: str | None = None
    channel_id: str | None = None
    user_id: str | None = None
    conversation_search: ConversationSearch | None = None


@dataclass(slots=True)
class ToolResult:
    """What a tool call produced.

    `text` and the text parts go back to the model as the tool message; image and video parts follow in
    a user message. `summary` is a short line for the chat ("Fetched example.com (12 KB)"); `sources`
    lists what the result came from (fetched URLs), for the answer to cite.
    """

    text: str = ""
    parts: list[ContentPart] = field(default_factory=list)
    ok: bool = True
    sources: list[str] = field(default_factory=list)
    summary: str = ""

    @classmethod
    def error(cls, text: str, summary: str = "") -> ToolResult:
        return cls(text=text, ok=False, summary=summary or text)

    @property
    def media(self) -> list[ContentPart]:
        """The parts that cannot travel in a tool message (images, videos)."""
        return [part for part in self.parts if not isinstance(part, TextPart)]

    def model_text(self) -> str:
        """Everything textual, as the tool message's content."""
        texts = [self.text] if self.text else []
        texts.extend(part.text for part in self.parts if isinstance(part, TextPart))
        if self.media:
            count = len(self.media)
            texts.append(f"[{count} image/video part{'s' if count > 1 else ''} follow in the next message]")
        return "\n\n".join(texts) if texts else "(no output)"

    def tool_message(self, tool_call_id: str) -> ToolMessage:
        prefix = "" if self.ok else "Error: "
        return ToolMessage(content=prefix + self.model_text(), tool_call_id=tool_call_id)


def assistant_message(content: str | None, tool_calls: Sequence[ToolCall]) -> AssistantMessage:
    """The model's tool-calling turn as it goes back into the next request.

    The API wants `content` to be a string even beside `tool_calls` (never null, never missing), and
    a turn without tool calls must not carry an empty `tool_calls` list.
    """
    return AssistantMessage(content=content or "", tool_calls=list(tool_calls) or None)


def media_message(results: Sequence[ToolResult]) -> UserMessage | None:
    """One user message with the images/videos of a round of tool results, to follow their tool messages."""
    media = [part for result in results for part in result.media]
    if not media:
        return None
    intro = TextPart(text="Images and videos returned by the tool calls above:")
    return UserMessage(content=[intro, *media])


class Tool(ABC):
    """A tool the model may call.

    `parameters` is a JSON schema object. `read_only` tools only read (fetch a page, look something
    up); a tool with `needs_confirmation` set must be approved by the user before it runs.
    `timeout_s` overrides the toolbox's per-call timeout for this tool.
    """

    name: str
    description: str
    parameters: dict[str, Any]
    read_only: bool = True
    timeout_s: float | None = None

    @property
    def needs_confirmation(self) -> bool:
        return not self.read_only

    @abstractmethod
    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        """Do the work; may raise or hang: the toolbox turns both into error results."""

    def status_text(self, args: dict[str, Any]) -> str:
        """The live status line while the tool runs."""
        return f"🔧 Using {self.name}…"
