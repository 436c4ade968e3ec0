"""ChatClient streaming: the wire format becomes typed events and one accumulated result."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from core.llm import errors
from core.llm.client import ChatClient
from core.llm.types import (
    ChatRequest,
    ContentDelta,
    CostReport,
    Finish,
    ReasoningDelta,
    ToolCallDelta,
    UsageReport,
    UserMessage,
)
from tests.fakes.model_server import Script


def ask(text: str = "hi", **fields) -> ChatRequest:
    return ChatRequest(
        model="bytedance/dola-seed-2-0-lite", messages=[UserMessage(content=text)], max_tokens=512, **fields
    )


async def collect(client: ChatClient, request: ChatRequest):
    events = []
    async with client.stream(request) as stream:
        async for event in stream:
            events.append(event)
    return events, stream.result


@pytest.fixture
async def client(make_settings):
    client = ChatClient(make_settings())
    yield client
    await client.aclose()


async def test_reasoning_then_content_then_finish_usage_and_cost(client, model_server):
    model_server.enqueue(Script(reasoning="Let me think.", content="The answer is 42.", chunk_chars=4))
    events, result = await collect(client, ask())

    kinds = [type(event) for event in events]
    assert kinds.index(ReasoningDelta) < kinds.index(ContentDelta) < kinds.index(Finish)
    assert kinds[-2:] == [UsageReport, CostReport]
    assert "".join(e.text for e in events if isinstance(e, ReasoningDelta)) == "Let me think."
    assert "".join(e.text for e in events if isinstance(e, ContentDelta)) == "The answer is 42."
    assert result.content == "The answer is 42."
    assert result.reasoning == "Let me think."
    assert result.finish_reason == "stop"
    assert not result.interrupted
    assert result.usage is not None and result.usage.reasoning_tokens == len("Let me think.") // 4
    assert result.cost.usd == Decimal("0.0033265")
    assert result.cost.credits == 6653
    assert result.model == "seed-2-0-lite-260228"
    assert result.time_to_first_token_s is not None and result.total_s is not None


async def test_cost_is_taken_from_whichever_chunk_carries_it(client, model_server):
    model_server.enqueue(Script(content="ok", usage_in_meta_only=True, usd=0.5, cached_tokens=7))
    _, result = await collect(client, ask())
    assert result.cost.usd == Decimal("0.5")
    assert result.usage is not None and result.usage.cached_tokens == 7


async def test_reasoning_field_of_other_servers_is_understood(client, model_server):
    # vLLM and others stream `reasoning` instead of `reasoning_content`.
    model_server.enqueue(Script(content="done"))
    async with client.stream(ask()) as stream:
        events = [event for event in stream._parse_chunk(b'{"choices":[{"delta":{"reasoning":"hmm"}}]}')]
        async for _ in stream:
            pass
    assert events == [ReasoningDelta("hmm")]


async def test_tool_call_fragments_are_merged_by_index(client, model_server):
    model_server.enqueue(
        Script(
            finish_reason="tool_calls",
            chunk_chars=3,
            tool_calls=[
                {"id": "call_a", "name": "lookup", "arguments": '{"q": "seed"}'},
                {"id": "call_b", "name": "clock", "arguments": "{}"},
            ],
        )
    )
    events, result = await collect(client, ask())
    assert any(isinstance(event, ToolCallDelta) for event in events)
    assert result.finish_reason == "tool_calls"
    assert [(c.id, c.function.name, c.function.arguments) for c in result.tool_calls] == [
        ("call_a", "lookup", '{"q": "seed"}'),
        ("call_b", "clock", "{}"),
    ]


async def test_every_request_carries_max_tokens_usage_option_and_a_fresh_request_id(client, model_server):
    await collect(client, ask())
    await collect(client, ask())
    first = model_server.requests[0]
    assert first.body["max_tokens"] == 512
    assert first.body["stream"] is True
    assert first.body["stream_options"] == {"include_usage": True}
    ids = [r.headers["X-Client-Request-Id"] for r in model_server.requests]
    assert len(set(ids)) == 2 and all(len(i) == 32 for i in ids)


async def test_result_keeps_the_request_id_that_was_sent(client, model_server):
    _, result = await collect(client, ask())
    assert model_server.requests[0].headers["X-Client-Request-Id"] == result.request_id


async def test_stream_without_finish_reason_is_an_interruption_with_partial_text(client, model_server):
    model_server.enqueue(Script(content="partial answer", finish_reason=None))
    with pytest.raises(errors.StreamInterrupted) as caught:
        await collect(client, ask())
    assert "cut off" in str(caught.value)


async def test_connection_cut_mid_stream_keeps_partial_text(client, model_server):
    model_server.enqueue(Script(content="0123456789" * 4, chunk_chars=10, cut_after=2))
    stream_result = None
    with pytest.raises(errors.StreamInterrupted):
        async with client.stream(ask()) as stream:
            stream_result = stream.result
            async for _ in stream:
                pass
    assert stream_result is not None and stream_result.content == "0123456789" * 2
    assert stream_result.interrupted


async def test_stall_after_first_chunks_raises_stalled_and_keeps_partial(make_settings, model_server):
    client = ChatClient(make_settings(idle_timeout_s=0.3))
    model_server.enqueue(Script(content="abcdefgh" * 3, stall_after=1))
    with pytest.raises(errors.StreamStalled):
        async with client.stream(ask()) as stream:
            async for _ in stream:
                pass
    assert stream.result.content == "abcdefgh"
    await client.aclose()


async def test_a_slow_but_steady_stream_is_not_a_stall(make_settings, model_server):
    # The idle timeout bounds the gap between chunks, never the whole answer.
    client = ChatClient(make_settings(idle_timeout_s=0.3))
    model_server.enqueue(Script(content="x" * 40, chunk_chars=4, delay_s=0.1))
    _, result = await collect(client, ask())
    assert result.content == "x" * 40
    await client.aclose()


async def test_malformed_chunk_mid_stream_is_reported_and_partial_kept(client, model_server):
    model_server.enqueue(Script(content="good text here", chunk_chars=5, malformed_after=1))
    with pytest.raises(errors.MalformedResponse):
        async with client.stream(ask()) as stream:
            async for _ in stream:
                pass
    assert stream.result.content == "good "


@pytest.mark.parametrize(
    "odd",
    [
        '{"choices": ["x"]}',
        '{"choices": [{"delta": {"tool_calls": [{"index": "first"}]}}]}',
        "[1, 2, 3]",
    ],
)
async def test_valid_json_of_the_wrong_shape_is_a_malformed_response_with_partial_kept(
    client, model_server, odd
):
    model_server.enqueue(Script(content="kept text", chunk_chars=5, malformed_after=1, odd_chunk=odd))
    with pytest.raises(errors.MalformedResponse):
        async with client.stream(ask()) as stream:
            async for _ in stream:
                pass
    assert stream.result.content == "kept "


def test_odd_usage_values_count_as_zero_rather_than_failing_the_answer():
    from core.llm.client import parse_usage

    usage = parse_usage({"prompt_tokens": "n/a", "completion_tokens": 7, "completion_tokens_details": []})
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens, usage.reasoning_tokens) == (
        0,
        7,
        0,
    )


async def test_error_event_inside_the_stream_becomes_a_typed_error(client, model_server):
    model_server.enqueue(Script(content="some words", chunk_chars=5, error_event_after=1))
    with pytest.raises(errors.UpstreamUnavailable):
        async with client.stream(ask()) as stream:
            async for _ in stream:
                pass
    assert stream.result.content == "some "


async def test_cancelling_the_task_closes_the_upstream_connection(client, model_server):
    model_server.enqueue(Script(content="y" * 400, chunk_chars=2, delay_s=0.05))
    first_token = asyncio.Event()

    async def consume() -> None:
        async with client.stream(ask()) as stream:
            async for _ in stream:
                first_token.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first_token.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.wait_for(model_server.requests[0].disconnected.wait(), 5)


async def test_non_streaming_call_reads_cost_from_meta_or_header(client, model_server):
    model_server.enqueue(Script(content="plain", reasoning="r", usd=0.01, credits=None))
    result = await client.complete(ask())
    assert model_server.requests[0].body["stream"] is False
    assert "stream_options" not in model_server.requests[0].body
    assert (result.content, result.reasoning, result.finish_reason) == ("plain", "r", "stop")
    assert result.cost.usd == Decimal("0.01")

    model_server.enqueue(Script(content="plain", usd=0.02, cost_in_header_only=True))
    assert (await client.complete(ask())).cost.usd == Decimal("0.02")


async def test_models_are_listed(client):
    assert await client.list_models() == ["bytedance/dola-seed-2-0-lite"]
