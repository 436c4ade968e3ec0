"""One round of tool calls inside an answer: confirm, run, show, and hand back what the model reads.

`core.answer` drives the rounds (a model call, its budget reservation and ledger row, then the tools it
asked for, then the next model call into the same reply); this module is the work between two model
calls:

    calls -> ids made unique -> side-effect calls asked for, one at a time, in call order (asker only,
    SEEDBOT_TOOL_CONFIRM_TIMEOUT_S) -> the approved calls run concurrently, each shown as a ToolStep,
    within what is left of SEEDBOT_TOOL_ANSWER_TIMEOUT_S -> results in call order -> messages:
    the assistant turn with its calls, one tool message per call, then the images as a user message

Tool results are untrusted text: they go to the model only as tool messages (capped by the Toolbox),
never into the system prompt, and nothing of them is logged.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from core.llm.types import Message, ToolCall
from core.reply.streamer import ReplyStreamer
from core.reply.surface import ToolStep
from core.tools.base import ToolContext, ToolResult, assistant_message, media_message
from core.tools.confirm import (
    CANNOT_ASK,
    NOT_SHOWN,
    ConfirmationRequest,
    PendingConfirmation,
    preview_arguments,
)
from core.tools.toolbox import Toolbox

OUT_OF_TIME = "The tool was stopped: this answer's time for tools ran out."


@dataclass(frozen=True, slots=True)
class RoundResult:
    """What one round of calls produced: a result per call, in call order, and whether the answer's
    time for tools ran out during it (the unfinished calls then carry OUT_OF_TIME)."""

    calls: list[ToolCall]
    results: list[ToolResult]
    out_of_time: bool
    seconds: float  # time spent running tools (confirmation waits excluded)

    def messages(self, content: str) -> list[Message]:
        """The round as the next request carries it. Only the request does: tool messages are not
        stored with the conversation, so a later turn sees the final answer text, not the results."""
        messages: list[Message] = [assistant_message(content, self.calls)]
        messages.extend(
            result.tool_message(call.id) for call, result in zip(self.calls, self.results, strict=True)
        )
        media = media_message(self.results)
        if media is not None:
            messages.append(media)
        return messages


def unique_ids(calls: Sequence[ToolCall], round_number: int) -> list[ToolCall]:
    """The calls with an id each, and no id twice: tool messages are matched to calls by id, and a
    model that leaves ids out (or repeats one) would otherwise make the next request ambiguous."""
    seen: set[str] = set()
    fixed = []
    for index, call in enumerate(calls):
        if not call.id or call.id in seen:
            call = call.model_copy(update={"id": f"call_{round_number}_{index}"})
        seen.add(call.id)
        fixed.append(call)
    return fixed


class ToolRunner:
    """Runs the tool calls of one answer, round after round, into one reply."""

    def __init__(
        self,
        toolbox: Toolbox,
        ctx: ToolContext,
        streamer: ReplyStreamer,
        *,
        confirm_timeout_s: float,
        time_limit_s: float,
    ) -> None:
        self.toolbox = toolbox
        self.ctx = ctx
        self.streamer = streamer
        self.confirm_timeout_s = confirm_timeout_s
        self.time_left_s = time_limit_s
        self.calls_made = 0

    @property
    def out_of_time(self) -> bool:
        return self.time_left_s <= 0

    async def run(self, calls: list[ToolCall]) -> RoundResult:
        """Run one round. Cancelling this (a stop, a shutdown) cancels the tools and ends any wait for
        a confirmation."""
        self.calls_made += len(calls)
        refused: dict[str, ToolResult] = {}
        for call in calls:
            if self.toolbox.needs_confirmation(call):
                verdict = await self._confirm(call)
                if verdict is not None:
                    refused[call.id] = verdict
        started = time.monotonic()
        tasks = {
            call.id: asyncio.create_task(self._run_one(call), name=f"tool-{call.function.name}")
            for call in calls
            if call.id not in refused
        }
        try:
            if tasks:
                await asyncio.wait(tasks.values(), timeout=max(0.0, self.time_left_s))
        finally:
            for task in tasks.values():
                task.cancel()  # no-op for the finished ones; a stop or the time limit ends the rest
            await asyncio.gather(*tasks.values(), return_exceptions=True)
        seconds = time.monotonic() - started
        self.time_left_s -= seconds
        results = []
        out_of_time = False
        for call in calls:
            task = tasks.get(call.id)
            if task is None:
                results.append(refused[call.id])
            elif task.cancelled():
                out_of_time = True
                results.append(ToolResult.error(OUT_OF_TIME, summary="Stopped: out of time"))
                await self._show(call, results[-1])
            else:
                results.append(task.result())
        return RoundResult(calls, results, out_of_time, seconds)

    async def _run_one(self, call: ToolCall) -> ToolResult:
        await self.streamer.show_step(
            ToolStep(call.id, self.toolbox.status_text(call), "running", tool=call.function.name)
        )
        result = await self.toolbox.call(call, self.ctx)
        await self._show(call, result)
        return result

    async def _show(self, call: ToolCall, result: ToolResult) -> None:
        status = "done" if result.ok else "failed"
        title = self.toolbox.status_text(call)
        await self.streamer.show_step(
            ToolStep(call.id, title, status, result.summary, tuple(result.sources), call.function.name)
        )

    async def _confirm(self, call: ToolCall) -> ToolResult | None:
        """None when the asker approved the call; otherwise the result that tells the model why not."""
        tool = self.toolbox.tool_for(call)
        assert tool is not None  # only an offered tool needs confirmation
        if not self.streamer.can_confirm:
            return await self._not_run(call, CANNOT_ASK, "Not run: confirmation is not possible here")
        request = ConfirmationRequest(
            request_id=uuid.uuid4().hex,
            call_id=call.id,
            tool_name=tool.name,
            arguments_preview=preview_arguments(call.function.arguments),
            user_id=self.ctx.user_id or "",
            expires_at=datetime.now(UTC) + timedelta(seconds=self.confirm_timeout_s),
        )
        pending = PendingConfirmation(request)
        if not await self.streamer.ask_confirmation(pending):
            return await self._not_run(call, NOT_SHOWN, "Not run: the question could not be shown")
        try:
            decision = await pending.wait()
        finally:
            # Said in the chat however the wait ended, a stop included.
            await self.streamer.show_decision(request, pending.decision)
        if decision.approved:
            return None
        return await self._not_run(call, decision.tool_text(), decision.summary())

    async def _not_run(self, call: ToolCall, text: str, summary: str) -> ToolResult:
        result = ToolResult.error(text, summary=summary)
        await self._show(call, result)
        return result
