"""ChatClient: the one async client for any OpenAI-compatible chat-completions endpoint.

One pooled `httpx.AsyncClient` per process. Streams are parsed incrementally into typed events;
failures become the exceptions of `core.llm.errors`. Retries happen only before the first streamed
byte, so a user never sees an answer start twice.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from decimal import Decimal, InvalidOperation
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any

import httpx

from core.config import Settings
from core.llm import errors
from core.llm.sse import iter_sse_data
from core.llm.types import (
    ChatRequest,
    CompletionResult,
    ContentDelta,
    Cost,
    CostReport,
    Finish,
    FunctionCall,
    ReasoningDelta,
    StreamEvent,
    ToolCall,
    ToolCallDelta,
    Usage,
    UsageReport,
)

log = logging.getLogger("seedbot.llm")

REQUEST_ID_HEADER = "X-Client-Request-Id"
COST_HEADER = "x-aimlapi-usd-spent"
_FINISH_REASONS = {"stop", "length", "content_filter", "tool_calls", "function_call"}
_RETRY_BASE_S = 0.5


def build_http_client(settings: Settings) -> httpx.AsyncClient:
    """The process-wide pool. No total timeout: a reasoning answer may legitimately take minutes."""
    timeout = httpx.Timeout(
        connect=settings.connect_timeout_s, read=settings.idle_timeout_s, write=30.0, pool=30.0
    )
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=50)
    return httpx.AsyncClient(timeout=timeout, limits=limits, headers={"User-Agent": "seedbot/0.1"})


class ChatClient:
    def __init__(
        self,
        settings: Settings,
        http: httpx.AsyncClient | None = None,
        *,
        on_retry: Callable[[], None] | None = None,
    ):
        self._settings = settings
        self._on_retry = on_retry
        self._http = http or build_http_client(settings)
        self._owns_http = http is None
        self._url = f"{settings.aiml_base_url}/chat/completions"

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    def stream(self, request: ChatRequest) -> ChatStream:
        """`async with client.stream(req) as s: async for event in s: ...`; then `s.result`."""
        return ChatStream(self, request.model_copy(update={"stream": True}))

    async def complete(self, request: ChatRequest) -> CompletionResult:
        """One non-streaming call."""
        request = request.model_copy(update={"stream": False, "stream_options": None})
        request_id = new_request_id()
        started = time.monotonic()
        async with AsyncExitStack() as stack:
            response = await self._open(request, request_id, stack)
            try:
                body = await response.aread()
            except httpx.HTTPError as exc:
                raise body_error(exc, self._settings, request_id) from None
        result = CompletionResult(request_id=request_id, total_s=time.monotonic() - started)
        result.time_to_first_token_s = result.total_s
        try:
            data = json.loads(body)
            choice = data["choices"][0]
            message = choice.get("message") or {}
        except (ValueError, KeyError, IndexError, TypeError) as error:
            raise errors.MalformedResponse("not a chat completion", request_id=request_id) from error
        result.model = data.get("model")
        result.content = message.get("content") or ""
        result.reasoning = message.get("reasoning_content") or message.get("reasoning") or ""
        result.tool_calls = [
            ToolCall(id=call.get("id", ""), function=FunctionCall(**call["function"]))
            for call in message.get("tool_calls") or []
        ]
        result.finish_reason = _finish_reason(choice.get("finish_reason"))
        result.usage = parse_usage(data.get("usage"))
        result.cost = parse_cost(data.get("meta")) or Cost(usd=_decimal(response.headers.get(COST_HEADER)))
        return result

    async def list_models(self) -> list[str]:
        """Model ids the endpoint serves (`GET /models`); used by `seedbot doctor`."""
        try:
            response = await self._http.get(f"{self._settings.aiml_base_url}/models", headers=self._headers())
        except httpx.TransportError as error:
            raise errors.NetworkError(type(error).__name__) from None
        if response.status_code >= 400:
            raise error_from_response(response.status_code, response.content, response.headers, None)
        payload = response.json()
        items = payload.get("data", payload) if isinstance(payload, dict) else payload
        return [item["id"] for item in items if isinstance(item, dict) and "id" in item]

    def _headers(self, request_id: str | None = None) -> dict[str, str]:
        key = self._settings.aiml_api_key
        if key is None:
            raise errors.MissingAPIKey()
        headers = {"Authorization": f"Bearer {key.get_secret_value()}"}
        if request_id:
            headers[REQUEST_ID_HEADER] = request_id
        return headers

    async def _open(self, request: ChatRequest, request_id: str, stack: AsyncExitStack) -> httpx.Response:
        """Send the request, retrying what is safe to retry, and return a response with status < 400."""
        headers = self._headers(request_id)
        payload = request.to_payload()
        deadline = time.monotonic() + self._settings.retry_max_wait_s
        attempt = 0
        while True:
            try:
                response = await stack.enter_async_context(
                    self._http.stream("POST", self._url, json=payload, headers=headers)
                )
                if response.status_code < 400:
                    return response
                body = await response.aread()
                error = error_from_response(response.status_code, body, response.headers, request_id)
            except httpx.ConnectError as exc:
                error = errors.NetworkError("could not connect", request_id=request_id)
                error.__cause__ = exc
            except httpx.ConnectTimeout:
                error = errors.NetworkError("connection timed out", request_id=request_id)
            except httpx.ReadTimeout:
                raise errors.UpstreamTimeout("no response", request_id=request_id) from None
            except httpx.TransportError as exc:
                raise errors.NetworkError(type(exc).__name__, request_id=request_id) from None
            attempt += 1
            delay = _backoff_delay(attempt, getattr(error, "retry_after", None))
            if (
                not error.retryable
                or attempt > self._settings.max_retries
                or time.monotonic() + delay > deadline
            ):
                raise error
            if self._on_retry is not None:
                self._on_retry()
            log.warning(
                "model API %s, retry %d in %.2fs",
                type(error).__name__,
                attempt,
                delay,
                extra={"request_id": request_id},
            )
            await asyncio.sleep(delay)


class ChatStream:
    """One streamed call. Iterating yields `StreamEvent`s; `result` accumulates them as they pass.

    Iteration raises a `ModelAPIError` on failure; `result` then still holds the partial answer.
    A stream that ends without a finish reason raises `StreamInterrupted`.
    """

    def __init__(self, client: ChatClient, request: ChatRequest):
        self._client = client
        self._request = request
        self._stack = AsyncExitStack()
        self._response: httpx.Response | None = None
        self._started = 0.0
        self.result = CompletionResult(request_id=new_request_id())
        self._tool_calls: dict[int, dict[str, str]] = {}

    @property
    def request_id(self) -> str:
        return self.result.request_id

    async def __aenter__(self) -> ChatStream:
        self._started = time.monotonic()
        try:
            self._response = await self._client._open(self._request, self.request_id, self._stack)
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        # Closing an unfinished response drops the connection at once, which cancels the generation.
        await self._stack.aclose()
        self.result.total_s = time.monotonic() - self._started

    def __aiter__(self) -> AsyncIterator[StreamEvent]:
        return self._events()

    async def _events(self) -> AsyncIterator[StreamEvent]:
        if self._response is None:
            raise RuntimeError("use `async with client.stream(...)` before iterating")
        result = self.result
        try:
            async for data in iter_sse_data(self._response.aiter_bytes()):
                if data == b"[DONE]":
                    break
                for event in self._parse_chunk(data):
                    if result.time_to_first_token_s is None and isinstance(
                        event, ReasoningDelta | ContentDelta
                    ):
                        result.time_to_first_token_s = time.monotonic() - self._started
                    yield event
        except httpx.HTTPError as exc:
            raise body_error(exc, self._client._settings, self.request_id) from None
        except ValueError:
            raise errors.MalformedResponse("unreadable stream", request_id=self.request_id) from None
        finally:
            result.tool_calls = [
                ToolCall(id=call["id"], function=FunctionCall(name=call["name"], arguments=call["arguments"]))
                for _, call in sorted(self._tool_calls.items())
            ]
        if result.finish_reason is None:
            raise errors.StreamInterrupted("the stream ended early", request_id=self.request_id)

    def _parse_chunk(self, data: bytes) -> list[StreamEvent]:
        try:
            return self._read_chunk(data)
        except (ValueError, TypeError, AttributeError, KeyError):
            # Valid SSE but not the chunk shape we know (a string where a number belongs, a list
            # where an object does): the answer so far is kept, the rest cannot be trusted.
            raise errors.MalformedResponse("unreadable stream chunk", request_id=self.request_id) from None

    def _read_chunk(self, data: bytes) -> list[StreamEvent]:
        chunk = json.loads(data)
        if not isinstance(chunk, dict):
            raise TypeError("a stream chunk is a JSON object")
        if "error" in chunk and "choices" not in chunk:
            raise error_from_body(chunk, 500, {}, self.request_id)
        result = self.result
        events: list[StreamEvent] = []
        if result.model is None and chunk.get("model"):
            result.model = chunk["model"]
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            if reasoning:
                result.reasoning += reasoning
                events.append(ReasoningDelta(reasoning))
            content = delta.get("content")
            if content:
                result.content += content
                events.append(ContentDelta(content))
            for call in delta.get("tool_calls") or ():
                events.append(self._merge_tool_call(call))
            reason = _finish_reason(choice.get("finish_reason"))
            if reason is not None:
                result.finish_reason = reason
                events.append(Finish(reason))
        usage = parse_usage(chunk.get("usage"))
        if usage is not None:
            result.usage = usage
            events.append(UsageReport(usage))
        cost = parse_cost(chunk.get("meta"))
        if cost is not None:
            result.cost = cost
            events.append(CostReport(cost))
        return events

    def _merge_tool_call(self, call: dict[str, Any]) -> ToolCallDelta:
        function = call.get("function") or {}
        index = int(call.get("index", 0))
        merged = self._tool_calls.setdefault(index, {"id": "", "name": "", "arguments": ""})
        if call.get("id"):
            merged["id"] = call["id"]
        if function.get("name"):
            merged["name"] = function["name"]
        merged["arguments"] += function.get("arguments") or ""
        return ToolCallDelta(index, call.get("id"), function.get("name"), function.get("arguments") or "")


def body_error(exc: httpx.HTTPError, settings: Settings, request_id: str) -> errors.ModelAPIError:
    """What went wrong while reading a response body that had started well."""
    if isinstance(exc, httpx.ReadTimeout):
        return errors.StreamStalled(f"nothing for {settings.idle_timeout_s:g}s", request_id=request_id)
    log.warning("model response broke: %s", type(exc).__name__, extra={"request_id": request_id})
    return errors.StreamInterrupted("the connection dropped", request_id=request_id)


def new_request_id() -> str:
    return uuid.uuid4().hex


def parse_usage(raw: Any) -> Usage | None:
    if not isinstance(raw, dict):
        return None
    prompt_details = raw.get("prompt_tokens_details")
    completion_details = raw.get("completion_tokens_details")
    prompt_details = prompt_details if isinstance(prompt_details, dict) else {}
    completion_details = completion_details if isinstance(completion_details, dict) else {}
    return Usage(
        prompt_tokens=_int(raw.get("prompt_tokens"), 0) or 0,
        completion_tokens=_int(raw.get("completion_tokens"), 0) or 0,
        total_tokens=_int(raw.get("total_tokens"), 0) or 0,
        reasoning_tokens=_int(completion_details.get("reasoning_tokens"), 0) or 0,
        cached_tokens=_int(prompt_details.get("cached_tokens"), 0) or 0,
    )


def parse_cost(meta: Any) -> Cost | None:
    usage = meta.get("usage") if isinstance(meta, dict) else None
    if not isinstance(usage, dict):
        return None
    return Cost(usd=_decimal(usage.get("usd_spent")), credits=_int(usage.get("credits_used"), None))


def _decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _finish_reason(value: Any) -> Any:
    return value if value in _FINISH_REASONS else None


def _backoff_delay(attempt: int, retry_after: float | None) -> float:
    if retry_after is not None:
        return retry_after
    return _RETRY_BASE_S * 2 ** (attempt - 1) * (0.5 + random.random())


def _retry_after(headers: httpx.Headers | dict[str, str]) -> float | None:
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


_ERRORS_BY_STATUS: dict[int, type[errors.ModelAPIError]] = {
    400: errors.BadRequest,
    401: errors.InvalidAPIKey,
    403: errors.OutOfCredits,
    429: errors.RateLimited,
    504: errors.UpstreamTimeout,
}


def error_from_response(
    status: int, body: bytes, headers: httpx.Headers | dict[str, str], request_id: str | None
) -> errors.ModelAPIError:
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        parsed = {"message": body[:200].decode("utf-8", "replace").strip()} if body else {}
    return error_from_body(parsed, status, headers, request_id)


def error_from_body(
    body: dict[str, Any], status: int, headers: httpx.Headers | dict[str, str], request_id: str | None
) -> errors.ModelAPIError:
    """Map the AI/ML body `{message, path, requestId, statusCode, timestamp}` or OpenAI's `{error: {...}}`."""
    nested = body.get("error")
    message: Any = body.get("message")
    if isinstance(nested, dict):
        message = nested.get("message", message)
        status = _int(nested.get("code"), None) or _int(nested.get("status"), None) or status
    elif isinstance(nested, str) and not message:
        message = nested
    status = _int(body.get("statusCode"), None) or status
    if isinstance(message, list):
        message = "; ".join(str(item) for item in message)
    detail = str(message).strip()[:300] if message else None
    kind = _ERRORS_BY_STATUS.get(status)
    if kind is None:
        kind = errors.UpstreamUnavailable if status >= 500 else errors.BadRequest
    if kind is errors.RateLimited:
        return errors.RateLimited(
            detail, retry_after=_retry_after(headers), status=status, request_id=request_id
        )
    # Server-side details of outages are noise to a chat user; a 400's message is what they must fix.
    if kind is not errors.BadRequest:
        log.info("model API %s (%s): %s", status, kind.__name__, detail, extra={"request_id": request_id})
        detail = None
    return kind(detail, status=status, request_id=request_id)


def _int(value: Any, default: int | None) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default
