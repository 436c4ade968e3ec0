"""Scripted answers from the fake model server, through the real ChatClient, into the streamer."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import pytest

from core.llm.client import ChatClient
from core.llm.errors import OutOfCredits, StreamInterrupted, StreamStalled
from core.llm.types import ChatRequest, StreamEvent, UserMessage
from core.reply.split import close_fence
from tests.core.reply.helpers import DISCORD, make_streamer, run_reply, small, visible_texts, wait_until
from tests.fakes.memory_surface import MemorySurface
from tests.fakes.model_server import MODEL_ID, FakeModelServer, Script

REQUEST = ChatRequest(model=MODEL_ID, messages=[UserMessage(content="Explain.")], max_tokens=512)


@pytest.fixture
async def client(make_settings):
    client = ChatClient(make_settings(idle_timeout_s=0.5))
    yield client
    await client.aclose()


async def model_events(client: ChatClient) -> AsyncIterator[StreamEvent]:
    """The events of one streamed call, as the service reads them (closing the call when abandoned)."""
    async with client.stream(REQUEST) as stream:
        async for event in stream:
            yield event


def long_markdown() -> str:
    code = "\n".join(f"    total += weight_{i} * value_{i}  # term {i}" for i in range(40))
    prose = " ".join(f"Sentence {i} explains a detail of the method." for i in range(25))
    return (
        f"## Method\n\n{prose}\n\n```python\ndef score():\n{code}\n    return total\n```\n\n{prose} Done ✅."
    )


async def test_long_answer_with_a_code_block_streams_into_several_messages(client, model_server):
    content = long_markdown()
    model_server.enqueue(
        Script(content=content, reasoning="Planning the layout.", chunk_chars=16, delay_s=0.001)
    )
    surface = MemorySurface(small(DISCORD, 400))
    result = await run_reply(make_streamer(surface), model_events(client), footer="medium effort · 1.0 s")
    assert result.delivered and surface.rate_limited == 0
    assert len(surface.texts) >= 6
    assert all(len(text) <= 400 and close_fence(text) == text for text in surface.texts)
    code_lines = [line for text in surface.texts for line in text.split("\n") if "total +=" in line]
    assert code_lines == [line for line in content.split("\n") if "total +=" in line]
    for text in surface.texts:
        if "total +=" in text:
            assert "```python\n" in text[: text.index("total +=")]
    assert surface.texts[-1].endswith("Done ✅.\n\n_medium effort · 1.0 s_")


async def test_reasoning_shows_a_thinking_line_that_the_answer_replaces(client, model_server):
    reasoning = " ".join(f"consider option {i};" for i in range(60))
    model_server.enqueue(Script(reasoning=reasoning, content="Option 7 wins.", chunk_chars=20, delay_s=0.02))
    surface = MemorySurface(DISCORD)
    result = await run_reply(make_streamer(surface), model_events(client))
    texts = visible_texts(surface)
    assert texts[0] == "💭 _Thinking…_"
    # The excerpt is the latest reasoning, live: it may end mid-word.
    assert any(
        re.fullmatch(r"💭 _Thinking… \d+ s_\n_….*; consider option \d+; \w.*_", text) for text in texts
    )
    assert result.delivered and surface.texts == ["Option 7 wins."]


async def test_a_cut_stream_keeps_the_partial_answer_with_a_warning(client, model_server):
    model_server.enqueue(Script(content="aaaa bbbb cccc dddd eeee ffff", chunk_chars=5, cut_after=4))
    surface = MemorySurface(DISCORD)
    result = await run_reply(make_streamer(surface), model_events(client))
    body, warning = surface.texts[0].split("\n\n")
    assert body == "aaaa bbbb cccc dddd"
    assert warning.startswith(f"⚠️ Interrupted: {StreamInterrupted.user_message}")
    assert result.delivered


async def test_a_stalled_stream_ends_with_the_partial_answer(client, model_server):
    model_server.enqueue(Script(content="aaaaa bbbbb ccccc and then nothing", chunk_chars=6, stall_after=3))
    surface = MemorySurface(DISCORD)
    await run_reply(make_streamer(surface), model_events(client))
    body, warning = surface.texts[0].split("\n\n")
    assert body == "aaaaa bbbbb ccccc"
    assert warning.startswith(f"⚠️ Interrupted: {StreamStalled.user_message}")


async def test_an_api_error_before_any_text_is_explained(client, model_server):
    model_server.enqueue(Script(status=403, error_message="Insufficient balance"))
    surface = MemorySurface(DISCORD)
    result = await run_reply(make_streamer(surface), model_events(client))
    assert surface.texts[0].startswith(f"⚠️ {OutOfCredits.user_message}")
    assert result.delivered


async def test_stopping_closes_the_model_connection_and_marks_the_reply(
    client, model_server: FakeModelServer
):
    model_server.enqueue(Script(content="word " * 2000, chunk_chars=5, delay_s=0.005))
    surface = MemorySurface(DISCORD)
    streamer = make_streamer(surface)
    await streamer.begin()
    task = asyncio.create_task(streamer.consume(model_events(client)))
    await wait_until(surface, lambda: "word word" in "".join(surface.texts))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    result = await streamer.finish("stopped")
    async with asyncio.timeout(5):
        await model_server.requests[-1].disconnected.wait()
    assert surface.texts == [f"{streamer.content.rstrip()}\n\n⏹️ Stopped."]
    assert result.delivered
