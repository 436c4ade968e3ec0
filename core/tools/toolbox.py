"""The tools offered for one request, and the one safe way to run a model's tool call.

The answer loop needs only four calls: `specs()` for the request's `tools`, `needs_confirmation(call)`
and `status_text(call)` before running a call, and `await call(call, ctx)`, which never raises for
anything the model or a tool did wrong: unknown names, bad JSON, hangs, exceptions and oversized or
malformed output all become error results the model can read and recover from.

Logs name the tool, the duration and the outcome, never arguments or content (they may be private).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterable
from typing import Any

from core.config import Settings
from core.llm.types import FunctionDefinition, TextPart, ToolCall
from core.llm.types import Tool as ToolSpec
from core.tools.base import Tool, ToolContext, ToolResult
from core.tools.names import NameMap

log = logging.getLogger("seedbot.tools")

DEFAULT_TIMEOUT_S = 30.0
DEFAULT_MAX_RESULT_CHARS = 20_000


def cut_marker(total: int, kept: int) -> str:
    return f"\n\n[… cut here: the result had {total} characters; only the first {kept} are shown]"


def parse_arguments(raw: str) -> dict[str, Any] | str:
    """The call's arguments as an object, or the reason they cannot be used (for the model)."""
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except ValueError as error:
        return f"The arguments are not valid JSON ({error.msg} at position {error.pos}). Send a JSON object."
    if value is None:
        return {}
    if not isinstance(value, dict):
        return f"The arguments must be a JSON object, not {type(value).__name__}."
    return value


def drop_empty_optional(args: dict[str, Any], parameters: dict[str, Any]) -> dict[str, Any]:
    """`args` without optional arguments the model sent as "" or null (models often fill every field)."""
    required = set(parameters.get("required") or ())
    return {key: value for key, value in args.items() if key in required or value not in ("", None)}


class Toolbox:
    def __init__(
        self,
        tools: Iterable[Tool],
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        max_result_chars: int = DEFAULT_MAX_RESULT_CHARS,
    ) -> None:
        self._tools: dict[str, Tool] = {}
        for tool in tools:
            if tool.name in self._tools:
                raise ValueError(f"two tools are named {tool.name!r}")
            self._tools[tool.name] = tool
        self._names = NameMap(self._tools)
        self.timeout_s = timeout_s
        self.max_result_chars = max_result_chars

    @classmethod
    def from_settings(cls, settings: Settings, tools: Iterable[Tool]) -> Toolbox:
        return cls(tools, timeout_s=settings.tool_timeout_s, max_result_chars=settings.tool_result_max_chars)

    @property
    def tools(self) -> list[Tool]:
        return list(self._tools.values())

    def specs(self) -> list[ToolSpec]:
        """The request's `tools` array, under the names the API accepts."""
        return [
            ToolSpec(
                function=FunctionDefinition(
                    name=self._names.wire(tool.name), description=tool.description, parameters=tool.parameters
                )
            )
            for tool in self._tools.values()
        ]

    def tool_for(self, call: ToolCall) -> Tool | None:
        """The offered tool a call names, or None."""
        original = self._names.original(call.function.name)
        return self._tools.get(original) if original is not None else None

    def needs_confirmation(self, call: ToolCall) -> bool:
        tool = self.tool_for(call)
        return tool is not None and tool.needs_confirmation

    def status_text(self, call: ToolCall) -> str:
        tool = self.tool_for(call)
        if tool is None:
            return f"🔧 {call.function.name}…"
        args = parse_arguments(call.function.arguments)
        shown = drop_empty_optional(args, tool.parameters) if isinstance(args, dict) else {}
        try:
            return tool.status_text(shown)
        except Exception:
            log.warning("tool %s: status_text failed", tool.name, exc_info=True)
            return f"🔧 Using {tool.name}…"

    async def call(self, call: ToolCall, ctx: ToolContext) -> ToolResult:
        """Run one tool call; always returns a result (errors included) and never raises for the tool."""
        tool = self.tool_for(call)
        if tool is None:
            offered = ", ".join(self._names.wire(name) for name in self._tools) or "none"
            log.info("tool call refused: unknown name")
            return ToolResult.error(
                f"There is no tool named {call.function.name!r}. Tools available: {offered}.",
                summary="Unknown tool",
            )
        args = parse_arguments(call.function.arguments)
        if isinstance(args, str):
            log.info("tool %s: invalid arguments", tool.name)
            return ToolResult.error(args, summary=f"{tool.name}: invalid arguments")
        args = drop_empty_optional(args, tool.parameters)
        started = time.monotonic()
        outcome = "ok"
        timeout = tool.timeout_s or self.timeout_s
        try:
            async with asyncio.timeout(timeout):
                result = await tool.run(args, ctx)
            if not isinstance(result, ToolResult):
                outcome = "malformed"
                result = ToolResult.error(f"The tool {tool.name} returned no usable result.")
            elif not result.ok:
                outcome = "error"
        except TimeoutError:
            outcome = "timeout"
            result = ToolResult.error(
                f"The tool {tool.name} did not finish within {timeout:g} seconds and was stopped.",
                summary=f"{tool.name} timed out",
            )
        except Exception as error:
            outcome = f"raised {type(error).__name__}"
            # The traceback may quote arguments, so it is logged only at DEBUG.
            log.debug("tool %s raised", tool.name, exc_info=True)
            result = ToolResult.error(
                f"The tool {tool.name} failed ({type(error).__name__}).", summary=f"{tool.name} failed"
            )
        log.info("tool %s: %s in %.2fs", tool.name, outcome, time.monotonic() - started)
        return self._capped(result)

    def _capped(self, result: ToolResult) -> ToolResult:
        """`result` with its text within `max_result_chars` (text, then text parts), marked where cut."""
        budget = self.max_result_chars
        total = len(result.text) + sum(len(p.text) for p in result.parts if isinstance(p, TextPart))
        if total <= budget:
            return result
        marker = cut_marker(total, budget)
        text = result.text[:budget]
        budget -= len(text)
        parts = []
        for part in result.parts:
            if isinstance(part, TextPart):
                if budget <= 0:
                    continue
                part = TextPart(text=part.text[:budget])
                budget -= len(part.text)
            parts.append(part)
        if parts and isinstance(parts[-1], TextPart) and len(result.text) < self.max_result_chars:
            parts[-1] = TextPart(text=parts[-1].text + marker)
        else:
            text += marker
        return ToolResult(
            text=text, parts=parts, ok=result.ok, sources=list(result.sources), summary=result.summary
        )
