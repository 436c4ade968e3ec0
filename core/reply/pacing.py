"""Per-channel edit pacing: every reply in one channel shares one budget of posts and edits.

A sliding window enforces the platform's published limit (`edits_per_window` in any `window_s`),
counted from the moment each call *completed*: the platform saw the request somewhere between our
send and its answer, so measuring from completion can never under-count. Three priorities share it:

- urgent (the first answer text, the final text): any free place in the window;
- routine (the growing answer): also spaced evenly, `window_s / (edits_per_window - 1)` apart,
  which keeps a place free for an urgent call;
- low (thinking lines and their refreshes): spaced too, and only within half the window, so
  several replies starting together in one channel cannot crowd out their own answers.

A 429 blocks the whole channel until its Retry-After has passed and slows the routine spacing for a
while, so the platform's real limit wins when it is tighter than the published one.

Budgets wider than a channel (Slack counts most methods per workspace) are `core.reply.budgets`':
the streamer states each call's priority in `call_priority`, and a surface that draws from shared
budgets reads it there, so the channel's pace and the workspace's both hold and the stricter wins.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Literal

from core.reply.surface import PlatformLimits

# A 429 multiplies the routine spacing by this (up to the cap); each successful call decays it.
_SLOWDOWN_STEP = 1.5
_SLOWDOWN_MAX = 4.0
_SLOWDOWN_DECAY = 0.9
# How often to look again while only calls still in flight fill the window.
_IN_FLIGHT_POLL_S = 0.05
# Retry-After 0 would make a busy loop of 429s.
_MIN_BLOCK_S = 0.05


Priority = Literal["urgent", "routine", "low"]
# The priority of the post or edit the streamer is making in this task; calls made outside the
# streamer (closing a reply, crash recovery) are the ones that finish a reply, hence urgent.
call_priority: ContextVar[Priority] = ContextVar("call_priority", default="urgent")


@dataclass(slots=True)
class Slot:
    """One reserved post or edit; `at` is its send time until `done`, then its completion time."""

    at: float
    done: bool = False


class EditPacer:
    """The edit budget of one channel. Call `delay`, then `reserve` when it is 0, then `release`."""

    def __init__(self, edits_per_window: int, window_s: float):
        if edits_per_window < 1 or window_s <= 0:
            raise ValueError("an edit pace needs at least one edit per positive window")
        self.edits_per_window = edits_per_window
        self.window_s = window_s
        self.spacing_s = window_s / max(1, edits_per_window - 1)
        self._slots: list[Slot] = []
        self._blocked_until = 0.0
        self._slowdown = 1.0
        self._last_used = 0.0
        self.rate_limited = 0  # 429s reported to this pacer

    @classmethod
    def for_limits(cls, limits: PlatformLimits) -> EditPacer:
        return cls(limits.edits_per_window, limits.window_s)

    def delay(self, now: float, priority: Priority = "routine") -> float:
        """Seconds to wait before the next call of this priority may be sent (0: send now)."""
        self._forget(now)
        wait = self._blocked_until - now
        capacity = self.edits_per_window if priority != "low" else max(1, self.edits_per_window // 2)
        if len(self._slots) >= capacity:
            finished = sorted(slot.at for slot in self._slots if slot.done)
            frees = len(self._slots) - capacity  # this many must leave the window first
            # The oldest finished calls free their places when they leave the window.
            wait = max(
                wait, finished[frees] + self.window_s - now if len(finished) > frees else _IN_FLIGHT_POLL_S
            )
        if priority != "urgent" and self._slots:
            if not self._slots[-1].done:
                wait = max(wait, _IN_FLIGHT_POLL_S)
            else:
                last = max(slot.at for slot in self._slots)
                wait = max(wait, last + self.spacing_s * self._slowdown - now)
        return max(0.0, wait)

    def reserve(self, now: float) -> Slot:
        """Take a place in the window; the caller has just seen `delay(now, ...) == 0`."""
        slot = Slot(now)
        self._slots.append(slot)
        self._last_used = now
        return slot

    def release(self, slot: Slot, now: float) -> None:
        """The call finished (whatever its outcome): its place counts from now."""
        slot.at, slot.done = now, True
        self._last_used = now
        self._slowdown = max(1.0, self._slowdown * _SLOWDOWN_DECAY)

    def penalize(self, now: float, retry_after: float) -> None:
        """The platform answered 429: nothing in this channel is sent until `retry_after` has passed."""
        self.rate_limited += 1
        self._blocked_until = max(self._blocked_until, now + max(retry_after, _MIN_BLOCK_S))
        self._slowdown = min(_SLOWDOWN_MAX, self._slowdown * _SLOWDOWN_STEP)

    def touch(self, now: float) -> None:
        """Someone is about to use this pacer: keep it alive in its registry."""
        self._last_used = max(self._last_used, now)

    def idle_for(self, now: float) -> float:
        """Seconds since this pacer last had anything to do (0 while a call is in flight or blocked)."""
        self._forget(now)
        if self._slots or now < self._blocked_until:
            return 0.0
        return now - self._last_used

    def _forget(self, now: float) -> None:
        self._slots = [slot for slot in self._slots if not slot.done or slot.at + self.window_s > now]


class PacerRegistry:
    """One `EditPacer` per (platform, channel), shared by every reply streaming into that channel."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        sweep_every: int = 256,
        forget_after_s: float = 900.0,
    ):
        self._clock = clock
        self._forget_after_s = forget_after_s
        self._pacers: dict[tuple[str, str], EditPacer] = {}
        self._sweep_every = sweep_every
        self._gets = 0

    def for_channel(self, limits: PlatformLimits, channel: str) -> EditPacer:
        key = (limits.name, channel)
        pacer = self._pacers.get(key)
        if pacer is None:
            self._gets += 1
            if self._gets % self._sweep_every == 0:
                self._sweep()
            pacer = self._pacers[key] = EditPacer.for_limits(limits)
        pacer.touch(self._clock())
        return pacer

    def __len__(self) -> int:
        return len(self._pacers)

    def _sweep(self) -> None:
        # A pacer unused for long remembers nothing and no live reply still holds it (an active reply
        # edits every few seconds), so dropping it bounds memory without loosening any channel's pace.
        now = self._clock()
        self._pacers = {
            key: pacer
            for key, pacer in self._pacers.items()
            if pacer.idle_for(now) < max(self._forget_after_s, pacer.window_s)
        }
