"""Asking the person who asked before a tool with side effects runs.

The core decides; the adapter only shows the question and passes clicks on. For one tool call:

    1. core:    pending = PendingConfirmation(ConfirmationRequest(...))
    2. core:    shown = await surface.ask_confirmation(pending)
                adapter: post "Run NAME with {args}?" with Approve / Decline buttons whose values carry
                `request_id` and `call_id`, route clicks on them to `pending.answer(...)`, return True
                (False, or raising, when the question cannot be shown: the call is declined)
    3. adapter: on each click, `pending.answer(approved, user_id)`; it returns False for a click that
                does not count (not the asker, too late, already decided), so the adapter may tell that
                person privately that only the asker can answer
    4. core:    waits for the decision until `expires_at` (no answer: "expired"); a stop or a shutdown
                cancels the wait ("cancelled")
    5. core:    await surface.show_decision(request, decision), exactly once after a True in step 2;
                adapter: edit the question to say who approved or declined and when (or that it
                expired or was cancelled), remove the buttons, forget the request id

Only the asker's answer counts: `answer()` checks the user, so an adapter that passes every click on is
still safe. A pending confirmation blocks nothing but its own answer: other conversations go on, and
`stop` ends the wait like any other step of the answer.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, Literal, TypeVar

DecisionOutcome = Literal["approved", "declined", "expired", "cancelled"]
Where = TypeVar("Where")
PREVIEW_CHARS = 300

DECLINED = "The user declined; the tool was not run. Do not retry it unless they ask again."
EXPIRED = "The user did not confirm in time; the tool was not run."
CANNOT_ASK = "This platform cannot ask for confirmation, so this tool (which has side effects) was not run."
NOT_SHOWN = "The confirmation question could not be shown, so the tool was not run."
NOT_YOURS = "Only the person who asked can approve or decline this."
ANSWERED = "This question is no longer open."


def preview_arguments(raw: str) -> str:
    """The call's arguments as people read them: compact JSON, cut at PREVIEW_CHARS."""
    try:
        text = json.dumps(json.loads(raw), ensure_ascii=False, separators=(", ", ": "))
    except ValueError:
        text = raw.strip() or "{}"
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"


@dataclass(frozen=True, slots=True)
class ConfirmationRequest:
    """One question: may tool `tool_name` run with these arguments? Bind the buttons to `request_id`
    and `call_id`; only `user_id` may answer, and only before `expires_at` (UTC)."""

    request_id: str
    call_id: str
    tool_name: str
    arguments_preview: str
    user_id: str
    expires_at: datetime

    @property
    def question(self) -> str:
        return f"Run {self.tool_name} with {self.arguments_preview}?"

    def who_answers(self, name: Callable[[str], str] = str) -> str:
        """Under the buttons (`name` shows the user the platform's way, e.g. as a mention)."""
        return f"Only {name(self.user_id)} can answer."

    def decided_text(self, decision: Decision, name: Callable[[str], str] = str) -> str:
        """What the question says once decided, e.g. "✅ Run fetch_url with {…}? Approved by U1 at
        14:03 UTC."; it replaces the question and its buttons."""
        mark = "✅" if decision.approved else "⏹️"
        return f"{mark} {self.question} {decision.summary(name)}."


@dataclass(frozen=True, slots=True)
class Decision:
    """How a request ended, who decided (None: nobody, it expired or was cancelled) and when (UTC)."""

    outcome: DecisionOutcome
    user_id: str | None
    at: datetime

    @property
    def approved(self) -> bool:
        return self.outcome == "approved"

    def tool_text(self) -> str:
        """What the model is told instead of a result when the call did not run."""
        return DECLINED if self.outcome == "declined" else EXPIRED

    def summary(self, name: Callable[[str], str] = str) -> str:
        """One line for the chat, e.g. "Declined by U1 at 14:03 UTC" (`name` shows the user the
        platform's way, e.g. as a mention)."""
        when = self.at.astimezone(UTC).strftime("%H:%M UTC")
        if self.user_id is None:
            return {"expired": "Not confirmed in time", "cancelled": "Cancelled"}.get(self.outcome, "")
        return f"{self.outcome.capitalize()} by {name(self.user_id)} at {when}"


class PendingConfirmation:
    """A request waiting for its answer; the adapter resolves it with `answer()`."""

    def __init__(self, request: ConfirmationRequest) -> None:
        self.request = request
        self._decided: asyncio.Future[Decision] = asyncio.get_running_loop().create_future()

    @property
    def decided(self) -> bool:
        return self._decided.done()

    def answer(self, approved: bool, user_id: str, at: datetime | None = None) -> bool:
        """A click. True when it decides the request; False (and nothing changes) when it is not the
        asker's, comes after `expires_at`, or the request is already decided."""
        at = at or datetime.now(UTC)
        if self._decided.done() or user_id != self.request.user_id or at > self.request.expires_at:
            return False
        self._decided.set_result(Decision("approved" if approved else "declined", user_id, at))
        return True

    async def wait(self) -> Decision:
        """The decision, or "expired" at `expires_at`; "cancelled" if the wait is cancelled (the
        cancellation still propagates)."""
        remaining = (self.request.expires_at - datetime.now(UTC)).total_seconds()
        try:
            async with asyncio.timeout(max(0.0, remaining)):
                return await asyncio.shield(self._decided)
        except TimeoutError:
            return self._end("expired")
        except asyncio.CancelledError:
            self._end("cancelled")
            raise

    def _end(self, outcome: DecisionOutcome) -> Decision:
        if not self._decided.done():
            self._decided.set_result(Decision(outcome, None, datetime.now(UTC)))
        return self._decided.result()

    @property
    def decision(self) -> Decision:
        """The decision once made (the adapter's view after `show_decision`)."""
        return self._decided.result()


class ShownQuestions(Generic[Where]):
    """The confirmations an adapter is showing, by request id: the pending request, so that a click
    finds it, and where its question was shown (`Where`, the adapter's own handle to that message), so
    that the decision can replace it."""

    def __init__(self) -> None:
        self._open: dict[str, PendingConfirmation] = {}
        self._shown: dict[str, Where] = {}

    async def ask(self, pending: PendingConfirmation, show: Callable[[], Awaitable[Where | None]]) -> bool:
        """Show the question with `show` (None: it could not be, and the adapter has logged why); True
        when it is on screen, waiting for a click."""
        request_id = pending.request.request_id
        self._open[request_id] = pending  # before it is shown: a click may come back before `show` does
        where = await show()
        if where is None:
            self._open.pop(request_id, None)
            return False
        self._shown[request_id] = where
        return True

    def decided(self, request_id: str) -> Where | None:
        """Forget a decided request: where its question is, to replace it (None: it was never shown)."""
        self._open.pop(request_id, None)
        return self._shown.pop(request_id, None)

    def click(self, request_id: str, approved: bool, user_id: str) -> str | None:
        """Pass a click on: None when it decided the request, else what to tell the clicker privately."""
        pending = self._open.get(request_id)
        if pending is None or pending.decided:
            return ANSWERED
        if user_id != pending.request.user_id:
            return NOT_YOURS
        return None if pending.answer(approved, user_id) else ANSWERED
