"""Context assembly: stored conversation + the new turn -> the messages of one model request.

The prompt must fit the model's context minus the reply's `max_tokens`. Token counts are estimated
conservatively (no tokenizer for the model is published): about one token per three UTF-8 bytes, which
over-counts English and counts each CJK character as a token, plus the media pipeline's estimates for
images (by pixel size) and videos (by duration).
When the conversation does not fit, the oldest messages go first; media of older turns are replaced by a
short mention so that a long thread full of pictures does not cost a fortune on every turn.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from core.config import Settings
from core.llm.types import (
    AssistantMessage,
    ContentPart,
    Message,
    SystemMessage,
    TextPart,
    UserMessage,
)
from core.media.tokens import estimate_text_tokens, estimate_tokens
from core.models import AttachmentMeta, MessageStatus, Role

# Role markers and separators the chat template adds around every message.
MESSAGE_OVERHEAD_TOKENS = 8

MediaLookup = Callable[[AttachmentMeta], list[ContentPart] | None]
"""Content parts for a stored attachment, or None when its bytes are no longer at hand."""

_MENTION_NOUNS = {"image": "image", "video": "video", "pdf": "PDF", "text": "file", "other": "file"}


class PastMessage(Protocol):
    """An earlier message of the conversation: a stored one, or one only the platform knows about
    (`core.history.EarlierMessage`)."""

    @property
    def role(self) -> Role: ...
    @property
    def author_id(self) -> str: ...
    @property
    def author_name(self) -> str: ...
    @property
    def text(self) -> str: ...
    @property
    def status(self) -> MessageStatus: ...
    @property
    def attachments(self) -> Sequence[AttachmentMeta]: ...


class ContextTooLarge(Exception):
    """The new message alone does not fit the model's context; `str()` is fit for the chat."""


@dataclass(frozen=True, slots=True)
class NewTurn:
    """The message being answered: its author and its content (text and media parts, in order)."""

    author_id: str
    author_name: str
    parts: Sequence[ContentPart]


@dataclass(frozen=True, slots=True)
class AssembledContext:
    messages: list[Message]
    used_turns: int  # earlier messages included (the new turn and system prompt not counted)
    dropped_turns: int  # earlier messages left out because they did not fit
    estimated_prompt_tokens: int

    @property
    def footer_note(self) -> str | None:
        """What the reply footer says when history was cut, else None."""
        if not self.dropped_turns:
            return None
        return f"using the last {self.used_turns} message{'' if self.used_turns == 1 else 's'}"


def estimate_message_tokens(message: Message) -> int:
    content = message.content
    if content is None:
        body = 0
    elif isinstance(content, str):
        body = estimate_text_tokens(content)
    else:
        body = sum(estimate_tokens(part) for part in content)
    if isinstance(message, AssistantMessage):
        body += sum(
            estimate_text_tokens(call.function.name + call.function.arguments)
            for call in message.tool_calls or ()
        )
    return MESSAGE_OVERHEAD_TOKENS + body


def assemble_context(
    history: Sequence[PastMessage],
    turn: NewTurn,
    *,
    settings: Settings,
    system_prompt: str | None = None,
    max_tokens: int | None = None,
    media_parts: MediaLookup | None = None,
    multi_user: bool | None = None,
    media_turns: int | None = None,
    left_out: int = 0,
) -> AssembledContext:
    """Messages for a request answering `turn` after `history` (oldest first, not including `turn`).

    `system_prompt` defaults to SEEDBOT_SYSTEM_PROMPT, `max_tokens` to SEEDBOT_MAX_TOKENS. `multi_user`
    (default: more than one human in the conversation) prefixes each human message with its author's
    name so the model knows who said what. Media of the last `media_turns` human turns (default
    `settings.context_media_turns`) are re-sent when `media_parts` still has them and they fit;
    otherwise they become a text mention. `left_out` counts older messages the caller never read.
    Raises ContextTooLarge when even the new turn alone does not fit.
    """
    reply_tokens = settings.max_tokens if max_tokens is None else max_tokens
    media_turns = settings.context_media_turns if media_turns is None else media_turns
    budget = settings.context_tokens - reply_tokens
    sendable = [message for message in history if _sendable(message)]
    if multi_user is None:
        authors = {message.author_id for message in sendable if message.role == "user"} | {turn.author_id}
        multi_user = len(authors) > 1

    system = SystemMessage(content=system_prompt if system_prompt is not None else settings.system_prompt)
    new_message = _user_message(turn.author_name if multi_user else None, turn.parts)
    used = estimate_message_tokens(system) + estimate_message_tokens(new_message)
    if used > budget:
        raise ContextTooLarge(
            f"this message is too long for the model: about {used:,} tokens where {max(budget, 0):,} fit "
            "(shorten it or send fewer files)"
        )

    chosen: list[Message] = []
    human_turns = 0
    for stored in reversed(sendable):
        if stored.role == "user":
            human_turns += 1
        lookup = media_parts if human_turns <= media_turns else None
        fitted = None
        for candidate in _renderings(stored, multi_user, lookup):
            cost = estimate_message_tokens(candidate)
            if used + cost <= budget:
                fitted, used = candidate, used + cost
                break
        if fitted is None:
            break
        chosen.append(fitted)
    # Chat templates expect the conversation to open with a human turn.
    while chosen and isinstance(chosen[-1], AssistantMessage):
        used -= estimate_message_tokens(chosen.pop())
    chosen.reverse()
    return AssembledContext(
        messages=[system, *chosen, new_message],
        used_turns=len(chosen),
        dropped_turns=len(sendable) - len(chosen) + left_out,
        estimated_prompt_tokens=used,
    )


def _sendable(message: PastMessage) -> bool:
    if message.role == "assistant":
        # A reply still streaming is the one being written now; an error reply holds our warning, not an
        # answer. An interrupted reply keeps its partial answer, which is worth the model's attention.
        return message.status in ("complete", "interrupted") and bool(message.text.strip())
    return bool(message.text.strip() or message.attachments)


def _renderings(message: PastMessage, multi_user: bool, lookup: MediaLookup | None) -> list[Message]:
    """The message with its media (when a lookup has them), then the lean form with mentions only."""
    if message.role == "assistant":
        return [AssistantMessage(content=message.text)]
    author = message.author_name if multi_user else None
    text = [TextPart(text=message.text)] if message.text.strip() else []
    lean = _user_message(author, [*text, *(_mention(meta) for meta in message.attachments)])
    if lookup is None or not message.attachments:
        return [lean]
    parts: list[ContentPart] = list(text)
    for meta in message.attachments:
        parts.extend(lookup(meta) or [_mention(meta)])
    return [_user_message(author, parts), lean]


def _mention(meta: AttachmentMeta) -> TextPart:
    return TextPart(text=f"[earlier {_MENTION_NOUNS.get(meta.kind, 'file')}: {meta.name}]")


def _user_message(author: str | None, parts: Sequence[ContentPart]) -> UserMessage:
    parts = list(parts)
    if author:
        if parts and isinstance(parts[0], TextPart):
            parts[0] = TextPart(text=f"{author}: {parts[0].text}")
        else:
            parts.insert(0, TextPart(text=f"{author}:"))
    if len(parts) == 1 and isinstance(parts[0], TextPart):
        return UserMessage(content=parts[0].text)
    return UserMessage(content=parts)
