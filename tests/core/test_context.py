"""Context assembly: the stored conversation and the new turn become one request within the budget."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from core.config import Settings, load_settings
from core.context import (
    MESSAGE_OVERHEAD_TOKENS,
    ContextTooLarge,
    NewTurn,
    assemble_context,
)
from core.llm.types import (
    AssistantMessage,
    ChatRequest,
    ContentPart,
    ImagePart,
    ImageURL,
    SystemMessage,
    TextPart,
    UserMessage,
    VideoPart,
    VideoURL,
)
from core.media.tokens import UNKNOWN_IMAGE_TOKENS, estimate_text_tokens
from core.models import AttachmentMeta, ConversationKey, MessageStatus, Role
from core.store.base import StoredMessage

KEY = ConversationKey("slack", "T1", "C1", "1.0")
ANN = NewTurn("U1", "Ann", [TextPart(text="and now?")])


def settings(**env: Any) -> Settings:
    return load_settings(_env_file=None, SEEDBOT_SYSTEM_PROMPT="Be helpful.", **env)


def stored(
    n: int,
    role: Role = "user",
    text: str | None = None,
    *,
    author: str = "U1",
    status: MessageStatus = "complete",
    attachments: tuple[AttachmentMeta, ...] = (),
) -> StoredMessage:
    return StoredMessage(
        id=n,
        key=KEY,
        role=role,
        author_id=author,
        author_name={"U1": "Ann", "U2": "Bob"}.get(author, "Seed"),
        text=f"message {n}" if text is None else text,
        status=status,
        platform_message_id=None,
        attachments=attachments,
        created_at=datetime(2026, 5, 1, tzinfo=UTC),
    )


def photo(name: str) -> AttachmentMeta:
    return AttachmentMeta("image", "image/jpeg", 1000, name.encode().hex().ljust(64, "0"), name)


def image_part(name: str) -> ImagePart:
    return ImagePart(image_url=ImageURL(url=f"data:image/jpeg;base64,{name}"))


def texts(messages: list[Any]) -> list[str]:
    return [
        m.content if isinstance(m.content, str) else " | ".join(_part_text(p) for p in m.content)
        for m in messages
    ]


def _part_text(part: ContentPart) -> str:
    return part.text if isinstance(part, TextPart) else f"<{part.type}>"


def test_system_prompt_then_history_oldest_first_then_the_new_turn() -> None:
    history = [stored(1), stored(2, "assistant", author="B"), stored(3)]

    context = assemble_context(history, ANN, settings=settings())

    assert isinstance(context.messages[0], SystemMessage)
    assert texts(context.messages) == ["Be helpful.", "message 1", "message 2", "message 3", "and now?"]
    assert isinstance(context.messages[2], AssistantMessage)
    assert (context.used_turns, context.dropped_turns, context.footer_note) == (3, 0, None)


def test_a_channel_system_prompt_replaces_the_default() -> None:
    context = assemble_context([], ANN, settings=settings(), system_prompt="Answer in French.")
    assert context.messages[0] == SystemMessage(content="Answer in French.")


def test_oldest_messages_are_dropped_first_and_the_footer_says_so() -> None:
    history = [
        stored(n, "user" if n % 2 else "assistant", "x" * 3000, author="U1" if n % 2 else "B")
        for n in range(1, 41)
    ]
    config = settings(SEEDBOT_CONTEXT_TOKENS=20_000, SEEDBOT_MAX_TOKENS=8_000)

    context = assemble_context(history, ANN, settings=config)

    assert context.estimated_prompt_tokens <= 12_000
    assert context.dropped_turns > 0 and context.used_turns + context.dropped_turns == 40
    kept = context.messages[1:-1]
    assert len(kept) == context.used_turns
    # The newest ones are kept, and the conversation opens with a human turn.
    assert isinstance(kept[0], UserMessage) and isinstance(kept[-1], AssistantMessage)
    assert context.footer_note == f"using the last {context.used_turns} messages"
    # A smaller reply budget leaves room for more history.
    roomier = assemble_context(history, ANN, settings=config, max_tokens=1_000)
    assert roomier.used_turns > context.used_turns


def test_the_estimate_matches_the_messages_sent() -> None:
    history = [stored(1, text="héllo wörld " * 50), stored(2, "assistant", "答案" * 40, author="B")]
    context = assemble_context(history, ANN, settings=settings())
    texts_sent = ["Be helpful.", "héllo wörld " * 50, "答案" * 40, "and now?"]
    expected = sum(MESSAGE_OVERHEAD_TOKENS + estimate_text_tokens(text) for text in texts_sent)
    assert context.estimated_prompt_tokens == expected


def test_token_estimate_is_conservative_for_english_and_cjk() -> None:
    assert estimate_text_tokens("") == 0
    assert estimate_text_tokens("The quick brown fox jumps over the lazy dog.") >= 11  # ~10 real tokens
    assert estimate_text_tokens("你好世界") >= 4  # at least one token per CJK character


def test_recent_media_are_resent_and_older_ones_become_mentions() -> None:
    history = [
        stored(1, text="first look", attachments=(photo("old.jpg"),)),
        stored(2, "assistant", "an old cat", author="B"),
        stored(3, text="second look", attachments=(photo("new.jpg"), photo("gone.jpg"))),
        stored(4, "assistant", "a new cat", author="B"),
    ]
    cache = {"old.jpg": [image_part("old")], "new.jpg": [image_part("new")]}

    context = assemble_context(
        history,
        ANN,
        settings=settings(SEEDBOT_CONTEXT_MEDIA_TURNS=1),
        media_parts=lambda meta: cache.get(meta.name),
    )

    assert texts(context.messages)[1:4] == [
        "first look | [earlier image: old.jpg]",
        "an old cat",
        "second look | <image_url> | [earlier image: gone.jpg]",
    ]
    with_image = context.messages[3]
    assert isinstance(with_image, UserMessage) and image_part("new") in with_image.content


def test_media_that_do_not_fit_become_mentions_but_the_message_stays() -> None:
    history = [stored(1, text="look", attachments=(photo("big.jpg"),))]
    config = settings(SEEDBOT_CONTEXT_TOKENS=1024 + UNKNOWN_IMAGE_TOKENS // 2, SEEDBOT_MAX_TOKENS=1024)

    context = assemble_context(history, ANN, settings=config, media_parts=lambda meta: [image_part("big")])

    assert texts(context.messages)[1] == "look | [earlier image: big.jpg]"
    assert context.used_turns == 1


def test_no_lookup_means_mentions_for_every_earlier_file() -> None:
    clip = AttachmentMeta("video", "video/mp4", 10, "ff" * 32, "clip.mp4")
    report = AttachmentMeta("pdf", "application/pdf", 10, "aa" * 32, "report.pdf")
    history = [stored(1, text="", attachments=(clip, report))]

    context = assemble_context(history, ANN, settings=settings())

    assert texts(context.messages)[1] == "[earlier video: clip.mp4] | [earlier PDF: report.pdf]"


def test_the_new_turn_keeps_its_media_and_counts_them() -> None:
    video = VideoPart(video_url=VideoURL(url="data:video/mp4;base64,AAAA"))
    turn = NewTurn("U1", "Ann", [TextPart(text="what happens here?"), image_part("now"), video])

    context = assemble_context([], turn, settings=settings())

    assert context.messages[-1] == UserMessage(content=list(turn.parts))
    assert context.estimated_prompt_tokens > UNKNOWN_IMAGE_TOKENS


def test_in_a_multi_user_conversation_each_human_message_names_its_author() -> None:
    history = [
        stored(1, author="U1"),
        stored(2, "assistant", author="B"),
        stored(3, author="U2", attachments=(photo("p.jpg"),)),
    ]

    context = assemble_context(history, ANN, settings=settings())

    assert texts(context.messages)[1:] == [
        "Ann: message 1",
        "message 2",
        "Bob: message 3 | [earlier image: p.jpg]",
        "Ann: and now?",
    ]


def test_a_one_person_conversation_has_no_name_prefixes_unless_asked() -> None:
    history = [stored(1), stored(2, "assistant", author="B")]
    assert texts(assemble_context(history, ANN, settings=settings()).messages)[-1] == "and now?"
    forced = assemble_context(history, ANN, settings=settings(), multi_user=True)
    assert texts(forced.messages)[-1] == "Ann: and now?"
    image_only = assemble_context(
        [], NewTurn("U1", "Ann", [image_part("x")]), settings=settings(), multi_user=True
    )
    assert texts(image_only.messages)[-1] == "Ann: | <image_url>"


def test_unfinished_and_failed_replies_are_not_sent_back() -> None:
    history = [
        stored(1),
        stored(2, "assistant", "⚠️ rate limited", author="B", status="error"),
        stored(3),
        stored(4, "assistant", "half an answ", author="B", status="interrupted"),
        stored(5),
        stored(6, "assistant", "being written", author="B", status="streaming"),
        stored(7, text="   "),
    ]

    context = assemble_context(history, ANN, settings=settings())

    assert texts(context.messages)[1:-1] == ["message 1", "message 3", "half an answ", "message 5"]
    assert context.dropped_turns == 0


def test_assistant_turns_carry_only_their_answer() -> None:
    history = [stored(1), stored(2, "assistant", "the answer", author="B")]
    context = assemble_context(history, ANN, settings=settings())

    request = ChatRequest(model="m", messages=context.messages, max_tokens=100)

    assert request.to_payload()["messages"][2] == {"role": "assistant", "content": "the answer"}


def test_a_new_turn_too_large_for_the_model_is_refused_clearly() -> None:
    turn = NewTurn("U1", "Ann", [TextPart(text="word " * 10_000)])
    with pytest.raises(ContextTooLarge, match=r"too long for the model: about [\d,]+ tokens where 1,024 fit"):
        assemble_context([], turn, settings=settings(SEEDBOT_CONTEXT_TOKENS=2048, SEEDBOT_MAX_TOKENS=1024))
