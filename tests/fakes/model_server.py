"""A fake AI/ML API: a real HTTP server on 127.0.0.1 that speaks the chat-completions wire format.

Answers are scripted per request (`server.enqueue(Script(...))`); with nothing queued it answers
`Echo: <last user text>` after a little reasoning. Scripts can inject every fault the real service
shows: error statuses with the AI/ML error body, Retry-After, malformed chunks, a cut stream, a stall.

    async with FakeModelServer() as server:
        settings = Settings(aiml_base_url=server.base_url, aiml_api_key="test-key")
        server.enqueue(Script(content="Hello!", reasoning="thinking"))

Tool calls stream like the real service's: each call's id and name first, then its arguments in
fragments, several calls told apart by `index`. A tool loop is scripted as one Script per model call:

    server.enqueue(
        tool_round(tool_call("current_time", {"timezone": "Asia/Tokyo"}), content="Let me check."),
        Script(content="It is 9 am in Tokyo."),
    )

Arguments may be any string (invalid JSON included), a name need not be one that was offered, and
`tool_round(..., finish_reason="length")` with cut arguments is a call cut by the token limit.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import deque
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
from aiohttp import web

from tests.fakes.loopback import serve_on_loopback

API_KEY = "test-key"
MODEL_ID = "bytedance/dola-seed-2-0-lite"
SERVED_MODEL = "seed-2-0-lite-260228"
SCHEMA_PATH = Path(__file__).parent.parent / "data" / "chat-completions.openapi.json"


@cache
def request_validator() -> jsonschema.protocols.Validator:
    """Validates a request body against the published OpenAPI schema (a copy kept in tests/data)."""
    spec = json.loads(SCHEMA_PATH.read_text())
    operation = spec["paths"]["/v1/chat/completions"]["post"]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    return jsonschema.Draft7Validator(schema)


def schema_problems(body: Any) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}"
        for e in request_validator().iter_errors(body)
    ]


@dataclass
class Script:
    """One scripted answer (or failure) for one request."""

    content: str = ""
    reasoning: str = ""
    chunk_chars: int = 8  # characters per delta
    finish_reason: str | None = "stop"
    tool_calls: list[dict[str, Any]] = field(default_factory=list)  # [{"id","name","arguments"}]
    usd: float | None = 0.0033265
    credits: int | None = 6653
    cached_tokens: int = 0
    status: int = 200  # != 200: answer with an AI/ML error body instead
    error_message: str = "Something went wrong"
    error_style: str = "aiml"  # "aiml" | "openai" | "text"
    retry_after: str | None = None
    delay_s: float = 0.0  # pause before each delta
    first_byte_delay_s: float = 0.0  # pause before the response headers
    cut_after: int | None = None  # close the connection after this many deltas
    stall_after: int | None = None  # stop sending (but keep the connection) after this many deltas
    malformed_after: int | None = None  # send an unreadable chunk after this many deltas
    odd_chunk: str | None = None  # with malformed_after: this data (valid JSON of a wrong shape) instead
    error_event_after: int | None = None  # send `data: {"error": ...}` after this many deltas
    usage_in_meta_only: bool = False  # the cost arrives in a chunk of its own, after the usage
    cost_in_header_only: bool = False  # non-streaming: no `meta`, only the x-aimlapi-usd-spent header


_call_ids = itertools.count(1)


def tool_call(
    name: str, arguments: dict[str, Any] | str | None = None, call_id: str | None = None
) -> dict[str, Any]:
    """One scripted tool call; `arguments` as a dict is sent as JSON, a string exactly as it is."""
    raw = arguments if isinstance(arguments, str) else json.dumps(arguments or {})
    return {"id": call_id or f"call_{next(_call_ids)}", "name": name, "arguments": raw}


def tool_round(*calls: dict[str, Any], content: str = "", **fields: Any) -> Script:
    """A model call that ends asking for `calls` (finish reason "tool_calls" unless given)."""
    fields.setdefault("finish_reason", "tool_calls")
    return Script(content=content, tool_calls=list(calls), **fields)


@dataclass
class RecordedRequest:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    received_at: float
    disconnected: asyncio.Event = field(default_factory=asyncio.Event)


class FakeModelServer:
    def __init__(self, *, api_key: str = API_KEY, stall_limit_s: float = 30.0, validate: bool = True):
        self.api_key = api_key
        # Every request any test sends is checked against the published schema, like the real service does.
        self.validate = validate
        self.stall_limit_s = stall_limit_s
        self.requests: list[RecordedRequest] = []
        self.default = None  # a Script used whenever nothing is queued (None: echo)
        self._queue: deque[Script] = deque()
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def enqueue(self, *scripts: Script) -> None:
        self._queue.extend(scripts)

    async def __aenter__(self) -> FakeModelServer:
        app = web.Application(client_max_size=256 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        self._runner, self.port = await serve_on_loopback(app)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # --- handlers --------------------------------------------------------------------------------

    def _authorized(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {self.api_key}"

    async def _models(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return _error_response(Script(status=401, error_message="Invalid API key"))
        return web.json_response({"object": "list", "data": [{"id": MODEL_ID, "object": "model"}]})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        recorded = RecordedRequest(request.path, dict(request.headers), body, time.monotonic())
        self.requests.append(recorded)
        if not self._authorized(request):
            return _error_response(Script(status=401, error_message="Invalid API key"))
        problems = schema_problems(body) if self.validate else []
        if problems:
            return _error_response(Script(status=400, error_message="; ".join(problems)))
        script = self._queue.popleft() if self._queue else (self.default or _echo(body))
        if script.first_byte_delay_s:
            await asyncio.sleep(script.first_byte_delay_s)
        if script.status != 200:
            return _error_response(script)
        if not body.get("stream"):
            return _json_answer(script, body)
        try:
            return await self._stream(request, script, body)
        except (ConnectionResetError, asyncio.CancelledError):
            recorded.disconnected.set()
            raise

    async def _stream(self, request: web.Request, script: Script, body: dict[str, Any]) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        chunk_id = f"chatcmpl-{len(self.requests)}"

        async def send(payload: dict[str, Any] | str) -> None:
            text = payload if isinstance(payload, str) else json.dumps(payload)
            await response.write(f"data: {text}\n\n".encode())

        def chunk(delta: dict[str, Any] | None, finish: str | None = None, **extra: Any) -> dict[str, Any]:
            choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
            return {
                "id": chunk_id,
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": SERVED_MODEL,
                "choices": choices,
                **extra,
            }

        await send(chunk({"role": "assistant", "content": ""}))
        deltas = [{"reasoning_content": piece} for piece in _pieces(script.reasoning, script.chunk_chars)]
        deltas += [{"content": piece} for piece in _pieces(script.content, script.chunk_chars)]
        deltas += [
            {
                "tool_calls": [
                    {
                        "index": index,
                        "id": call["id"],
                        "type": "function",
                        "function": {"name": call["name"], "arguments": ""},
                    }
                ]
            }
            for index, call in enumerate(script.tool_calls)
        ]
        deltas += [
            {"tool_calls": [{"index": index, "function": {"arguments": piece}}]}
            for index, call in enumerate(script.tool_calls)
            for piece in _pieces(call["arguments"], script.chunk_chars)
        ]
        for sent, delta in enumerate(deltas):
            if sent == script.cut_after:
                request.transport.close()  # type: ignore[union-attr]
                return response
            if sent == script.stall_after:
                await asyncio.sleep(self.stall_limit_s)
                return response
            if sent == script.malformed_after:
                await send(script.odd_chunk or '{"id": "broken", "choices": [{"delta": {"content": "oops"')
            if sent == script.error_event_after:
                await send({"error": {"message": "Internal server error", "code": 500}})
                await response.write_eof()
                return response
            if script.delay_s:
                await asyncio.sleep(script.delay_s)
            await send(chunk(delta))
        if script.finish_reason is None:
            await response.write_eof()
            return response
        await send(chunk({"content": ""}, script.finish_reason))
        usage = _usage(script, body)
        meta = _meta(script)
        if script.usage_in_meta_only:
            await send(chunk(None, usage=usage))
            if meta:
                await send(chunk(None, meta=meta))
        else:
            await send(chunk(None, usage=usage, **({"meta": meta} if meta else {})))
        await send("[DONE]")
        await response.write_eof()
        return response


def _echo(body: dict[str, Any]) -> Script:
    last = next((m for m in reversed(body.get("messages", [])) if m.get("role") == "user"), {})
    content = last.get("content", "")
    if isinstance(content, list):
        content = " ".join(part.get("text", f"[{part.get('type')}]") for part in content)
    return Script(content=f"Echo: {content}", reasoning="Let me think about that.")


def _pieces(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def _usage(script: Script, body: dict[str, Any]) -> dict[str, Any]:
    prompt = max(1, len(json.dumps(body.get("messages", []))) // 4)
    reasoning = max(0, len(script.reasoning) // 4)
    completion = reasoning + len(script.content) // 4 + 1
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": script.cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": reasoning},
    }


def _meta(script: Script) -> dict[str, Any] | None:
    if script.usd is None and script.credits is None:
        return None
    usage: dict[str, Any] = {}
    if script.credits is not None:
        usage["credits_used"] = script.credits
    if script.usd is not None:
        usage["usd_spent"] = script.usd
    return {"usage": usage}


def _json_answer(script: Script, body: dict[str, Any]) -> web.Response:
    message: dict[str, Any] = {"role": "assistant", "content": script.content}
    if script.reasoning:
        message["reasoning_content"] = script.reasoning
    if script.tool_calls:
        message["tool_calls"] = [
            {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
            for c in script.tool_calls
        ]
    payload: dict[str, Any] = {
        "id": "chatcmpl-json",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": SERVED_MODEL,
        "choices": [
            {"index": 0, "message": message, "finish_reason": script.finish_reason, "logprobs": None}
        ],
        "usage": _usage(script, body),
    }
    meta = None if script.cost_in_header_only else _meta(script)
    headers = {}
    if meta:
        payload["meta"] = meta
    if script.usd is not None:
        headers["x-aimlapi-usd-spent"] = str(script.usd)
    return web.json_response(payload, headers=headers)


def _error_response(script: Script) -> web.Response:
    headers = {"Retry-After": script.retry_after} if script.retry_after is not None else {}
    if script.error_style == "text":
        return web.Response(status=script.status, text=script.error_message, headers=headers)
    if script.error_style == "openai":
        payload: dict[str, Any] = {"error": {"message": script.error_message, "type": "error", "code": None}}
    else:
        # The AI/ML API sends statusCode as a string on some paths; the client must cope.
        payload = {
            "message": script.error_message,
            "path": "/v1/chat/completions",
            "requestId": "req-fake",
            "statusCode": str(script.status),
            "timestamp": "2026-11-25T00:00:00.000Z",
        }
    return web.json_response(payload, status=script.status, headers=headers)
