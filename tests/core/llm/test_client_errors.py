"""ChatClient failures: each upstream problem is a distinct, chat-safe error; retries are bounded."""

from __future__ import annotations

import pytest

from core.llm import errors
from core.llm.client import ChatClient, error_from_response
from core.llm.types import ChatRequest, UserMessage
from tests.fakes.model_server import Script


def ask() -> ChatRequest:
    return ChatRequest(
        model="bytedance/dola-seed-2-0-lite", messages=[UserMessage(content="hi")], max_tokens=64
    )


async def run(client: ChatClient) -> str:
    async with client.stream(ask()) as stream:
        async for _ in stream:
            pass
    return stream.result.content


@pytest.fixture
async def client(make_settings):
    client = ChatClient(make_settings(max_retries=3, retry_max_wait_s=5.0))
    yield client
    await client.aclose()


@pytest.mark.parametrize(
    ("status", "style", "kind"),
    [
        (400, "aiml", errors.BadRequest),
        (401, "aiml", errors.InvalidAPIKey),
        (403, "openai", errors.OutOfCredits),
        (404, "text", errors.BadRequest),
    ],
)
async def test_client_errors_are_not_retried_and_are_typed(client, model_server, status, style, kind):
    model_server.enqueue(Script(status=status, error_style=style, error_message="messages must not be empty"))
    with pytest.raises(kind) as caught:
        await run(client)
    assert len(model_server.requests) == 1
    assert caught.value.status == status
    assert caught.value.request_id == model_server.requests[0].headers["X-Client-Request-Id"]


async def test_bad_request_shows_the_services_message(client, model_server):
    model_server.enqueue(Script(status=400, error_message="image_url is not a valid URL"))
    with pytest.raises(errors.BadRequest, match="image_url is not a valid URL"):
        await run(client)


def test_status_code_given_as_a_string_in_the_body_is_understood():
    # The body says 403 although the HTTP status is 400: the AI/ML body is authoritative.
    error = error_from_response(400, b'{"message": "Insufficient credits", "statusCode": "403"}', {}, "r1")
    assert isinstance(error, errors.OutOfCredits)


@pytest.mark.parametrize(
    "body",
    [b"", b"<html>Bad gateway</html>", b'{"statusCode": "nonsense"}', b"[1, 2]", b'{"message": ["a", "b"]}'],
)
def test_odd_error_bodies_never_crash_the_parser(body):
    assert isinstance(error_from_response(502, body, {}, None), errors.UpstreamUnavailable)


async def test_invalid_key_message_never_contains_the_key(make_settings, model_server):
    client = ChatClient(make_settings(aiml_api_key="sk-wrong-and-secret"))
    with pytest.raises(errors.InvalidAPIKey) as caught:
        await run(client)
    assert "sk-wrong-and-secret" not in str(caught.value)
    assert "AIML_API_KEY" in str(caught.value)
    await client.aclose()


async def test_missing_key_says_where_to_get_one(make_settings):
    client = ChatClient(make_settings(aiml_api_key=None))
    with pytest.raises(errors.MissingAPIKey, match=r"aimlapi\.com/app/keys"):
        await run(client)
    await client.aclose()


async def test_rate_limit_is_retried_honouring_retry_after(client, model_server):
    model_server.enqueue(Script(status=429, retry_after="0.2"), Script(content="after the wait"))
    assert await run(client) == "after the wait"
    first, second = model_server.requests
    assert second.received_at - first.received_at >= 0.2
    # A retry is the same logical request: same id, so the ledger keeps one row.
    assert first.headers["X-Client-Request-Id"] == second.headers["X-Client-Request-Id"]


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_errors_are_retried_with_backoff(client, model_server, status):
    model_server.enqueue(Script(status=status), Script(status=status), Script(content="recovered"))
    assert await run(client) == "recovered"
    assert len(model_server.requests) == 3


async def test_retries_are_bounded_in_attempts(make_settings, model_server):
    client = ChatClient(make_settings(max_retries=2))
    model_server.enqueue(*[Script(status=503)] * 5)
    with pytest.raises(errors.UpstreamUnavailable):
        await run(client)
    assert len(model_server.requests) == 3
    await client.aclose()


async def test_retries_are_bounded_in_total_wait(make_settings, model_server):
    client = ChatClient(make_settings(max_retries=5, retry_max_wait_s=1.0))
    model_server.enqueue(Script(status=429, retry_after="30"))
    with pytest.raises(errors.RateLimited) as caught:
        await run(client)
    assert len(model_server.requests) == 1
    assert caught.value.retry_after == 30
    await client.aclose()


async def test_gateway_timeout_is_a_timeout(make_settings, model_server):
    client = ChatClient(make_settings(max_retries=0))
    model_server.enqueue(Script(status=504))
    with pytest.raises(errors.UpstreamTimeout):
        await run(client)
    await client.aclose()


async def test_unreachable_server_is_a_network_error_after_retries(make_settings, unused_port):
    client = ChatClient(make_settings(aiml_base_url=f"http://127.0.0.1:{unused_port}/v1", max_retries=1))
    with pytest.raises(errors.NetworkError, match="Could not reach"):
        await run(client)
    await client.aclose()


async def test_no_retry_once_the_answer_has_started(client, model_server):
    model_server.enqueue(Script(content="abcdefghij", chunk_chars=5, cut_after=1), Script(content="second"))
    with pytest.raises(errors.StreamInterrupted):
        await run(client)
    assert len(model_server.requests) == 1
