"""An in-memory `ReplySurface` that behaves like a strict chat platform.

It enforces a `PlatformLimits`: text over `max_message_chars` is refused (`SurfaceError`), and a post
or edit beyond `edits_per_window` calls in any `window_s` is answered with a 429
(`SurfaceRateLimited` with the Retry-After a platform would send). Tests can also script 429s and
permanent failures, and add latency. Every call is recorded with its time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from core.reply.surface import MessageRef, PlatformLimits, SurfaceError, SurfaceRateLimited, ToolStep
from core.tools.confirm import ConfirmationRequest, Decision, PendingConfirmation


@dataclass(frozen=True, slots=True)
class Call:
    kind: Literal["post", "edit", "status"]
    at: float
    text: str | None
    message_id: str | None = None
    outcome: Literal["ok", "rate_limited", "refused"] = "ok"


@dataclass(slots=True)
class _Channel:
    """What the platform tracks per channel: every reply surface in the channel shares it."""

    accepted: list[float] = field(default_factory=list)  # times of the latest accepted posts and edits
    scripted_429s: list[float] = field(default_factory=list)
    rate_limited: int = 0  # 429s answered (paced or scripted)


class MemorySurface:
    def __init__(
        self,
        limits: PlatformLimits,
        *,
        channel: str = "C1",
        latency_s: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        _shared: _Channel | None = None,
    ):
        self.limits = limits
        self.channel = channel
        self.latency_s = latency_s
        self._clock = clock
        self.messages: dict[str, str] = {}  # id -> current text, in posting order
        self.calls: list[Call] = []
        self.statuses: list[str | None] = []
        self._shared = _shared or _Channel()
        self._refuse: str | None = None
        self.changed = asyncio.Event()  # set on every accepted post or edit
        self.closed = 0  # how many times the reply was closed (the protocol says: once, last)

    async def close(self) -> None:
        self.closed += 1

    def sibling(self) -> MemorySurface:
        """Another reply in the same channel: own messages, shared pace and 429s."""
        return MemorySurface(
            self.limits,
            channel=self.channel,
            latency_s=self.latency_s,
            clock=self._clock,
            _shared=self._shared,
        )

    # --- scripting -------------------------------------------------------------------------------

    def rate_limit_next(self, count: int, retry_after: float) -> None:
        """Answer the next `count` posts or edits in the channel with a 429, whatever the pace."""
        self._shared.scripted_429s.extend([retry_after] * count)

    def refuse_from_now(self, reason: str) -> None:
        """Every later post or edit fails for good (message deleted, permission removed...)."""
        self._refuse = reason

    # --- what tests read -------------------------------------------------------------------------

    @property
    def rate_limited(self) -> int:
        """429s answered in this channel (paced or scripted)."""
        return self._shared.rate_limited

    @property
    def texts(self) -> list[str]:
        return list(self.messages.values())

    @property
    def edits(self) -> list[Call]:
        return [c for c in self.calls if c.kind == "edit" and c.outcome == "ok"]

    @property
    def posts(self) -> list[Call]:
        return [c for c in self.calls if c.kind == "post" and c.outcome == "ok"]

    # --- ReplySurface ----------------------------------------------------------------------------

    async def post(self, text: str) -> MessageRef:
        now = await self._admit("post", text, None)
        ref = MessageRef(id=f"m{len(self.messages) + 1}", channel=self.channel)
        self.messages[ref.id] = text
        self.calls.append(Call("post", now, text, ref.id))
        self.changed.set()
        return ref

    async def edit(self, ref: MessageRef, text: str) -> None:
        if ref.id not in self.messages:
            raise SurfaceError(f"unknown message {ref.id}")
        now = await self._admit("edit", text, ref.id)
        self.messages[ref.id] = text
        self.calls.append(Call("edit", now, text, ref.id))
        self.changed.set()

    async def set_status(self, status: str | None) -> None:
        self.statuses.append(status)
        self.calls.append(Call("status", self._clock(), status))

    async def _admit(self, kind: Literal["post", "edit"], text: str, message_id: str | None) -> float:
        """Check one post or edit like the platform would; returns its time if accepted."""
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        now = self._clock()
        if self._refuse is not None:
            self.calls.append(Call(kind, now, text, message_id, "refused"))
            raise SurfaceError(self._refuse)
        if len(text) > self.limits.max_message_chars:
            self.calls.append(Call(kind, now, text, message_id, "refused"))
            raise SurfaceError(f"text of {len(text)} characters exceeds {self.limits.max_message_chars}")
        retry_after = self._retry_after(now)
        if retry_after is not None:
            self._shared.rate_limited += 1
            self.calls.append(Call(kind, now, text, message_id, "rate_limited"))
            raise SurfaceRateLimited(retry_after)
        shared = self._shared
        shared.accepted = [*shared.accepted[-self.limits.edits_per_window :], now]
        return now

    def _retry_after(self, now: float) -> float | None:
        if self._shared.scripted_429s:
            return self._shared.scripted_429s.pop(0)
        window = self.limits.window_s
        recent = [t for t in self._shared.accepted if t > now - window]
        if len(recent) >= self.limits.edits_per_window:
            return recent[-self.limits.edits_per_window] + window - now
        return None


class ToolSurface(MemorySurface):
    """A MemorySurface with the optional tool capabilities a platform like Slack implements: native
    steps (`show_step`) and confirmation buttons (`ask_confirmation` / `show_decision`).

    `clicks` are pressed as soon as a question is shown, in order, as (approved, user id); what each
    press returned (did it count?) is kept in `counted`. With no clicks the question waits.
    """

    def __init__(self, limits: PlatformLimits, *, clicks: list[tuple[bool, str]] | None = None, **options):
        super().__init__(limits, **options)
        self.steps: list[ToolStep] = []
        self.asked: list[ConfirmationRequest] = []
        self.decisions: list[Decision] = []
        self.counted: list[bool] = []
        self.question_shown = asyncio.Event()
        self._clicks = list(clicks or [])

    async def show_step(self, step: ToolStep) -> bool:
        self.steps.append(step)
        return True

    async def ask_confirmation(self, pending: PendingConfirmation) -> bool:
        self.asked.append(pending.request)
        self.question_shown.set()
        for approved, user in self._clicks:
            self.counted.append(pending.answer(approved, user))
        return True

    async def show_decision(self, request: ConfirmationRequest, decision: Decision) -> None:
        self.decisions.append(decision)
