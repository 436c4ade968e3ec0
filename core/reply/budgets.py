"""Rate budgets that every reply of a platform shares (a workspace's method budgets on Slack).

A surface says which budgets a call draws from (`Draw`s: keys, rates and costs as data, no platform
names in the core) and how urgent it is; `SharedBudgets.acquire` grants calls in this order:

- by priority: urgent (first sign of life, final text) before routine (mid-answer edits) before
  low (thinking status); routine calls also leave a fifth of the burst behind and low ones half of
  it, and both leave a token for each reply still open (its final text may need it), so under
  contention the status thins out first, then the mid-answer edits, and finals do not queue;
- within a priority, fair shares: the reply that has been granted the fewest calls goes first
  (deficit round-robin), so thirty answers streaming at once each get their turn.

A caller that cannot wait longer gives up (`acquire` returns False) and the reply merges what it
wanted to show into its next call. The buckets themselves live in a `BucketStore`, in-process or
in Redis; the order above is kept per instance.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from core.coordination import BucketStore, Draw, Taken
from core.metrics import Metrics
from core.reply.pacing import Priority

_RANK: dict[Priority, int] = {"urgent": 0, "routine": 1, "low": 2}
# Share of each budget's burst a call of this priority must leave for more urgent ones.
_KEEP: dict[Priority, float] = {"urgent": 0.0, "routine": 0.2, "low": 0.5}
# How often a call that is not first in line looks again (it is also woken when the line moves).
_LINE_POLL_S = 0.25
# Attempts per acquire: each one waits at least a little, so this only bounds a runaway loop.
_MAX_ATTEMPTS = 10_000


@dataclass(eq=False, slots=True)
class _Waiter:
    lane: int
    rank: int
    seq: int
    keys: frozenset[str]


class SharedBudgets:
    """Fair, prioritized admission to a `BucketStore`'s budgets. One per service; one lane per reply."""

    def __init__(
        self,
        store: BucketStore,
        *,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.time,
    ):
        self.store = store
        self._metrics = metrics
        self._clock = clock
        self._lanes = itertools.count(1)
        self._seq = itertools.count()
        self._served: dict[int, int] = {}
        self._waiting: list[_Waiter] = []
        self._moved = asyncio.Event()
        self.deferred: dict[Priority, int] = {"urgent": 0, "routine": 0, "low": 0}

    def lane(self) -> int:
        """A new reply's place in the fair shares."""
        lane = next(self._lanes)
        self._served[lane] = 0
        return lane

    def close_lane(self, lane: int) -> None:
        self._served.pop(lane, None)

    async def acquire(
        self, draws: Sequence[Draw], priority: Priority, *, lane: int, patience_s: float
    ) -> bool:
        """Take `draws` for one call when its turn comes; False if that is more than `patience_s` away
        (counted as deferred: the caller shows its text later, merged with what comes next)."""
        if not draws:
            return True
        waiter = _Waiter(lane, _RANK[priority], next(self._seq), frozenset(draw.key for draw in draws))
        wanted = [replace(draw, keep=self._keep(draw, priority)) for draw in draws]
        deadline = self._clock() + patience_s
        self._waiting.append(waiter)
        try:
            for _ in range(_MAX_ATTEMPTS):
                now = self._clock()
                pause = _LINE_POLL_S
                if self._first_in_line(waiter):
                    taken = await self.store.take(wanted, now)
                    self._note_fill(draws, taken)
                    if taken.wait == 0:
                        self._served[lane] = self._served.get(lane, 0) + 1
                        return True
                    pause = taken.wait
                if now + pause > deadline:
                    # Waiting the whole pause could still be within patience for the first in line
                    # of a refilling budget; sleep until the deadline only when that can help.
                    if now >= deadline or not self._first_in_line(waiter):
                        break
                    pause = deadline - now
                moved = self._moved
                try:
                    async with asyncio.timeout(pause):
                        await moved.wait()
                except TimeoutError:
                    pass
        finally:
            self._waiting.remove(waiter)
            self._move()
        self.deferred[priority] += 1
        if self._metrics is not None:
            self._metrics.update_deferred(priority)
        return False

    async def penalize(self, key: str, retry_after: float) -> None:
        """The platform answered 429 for this budget: it is empty for everyone until Retry-After."""
        await self.store.penalize(key, self._clock() + retry_after)

    def _keep(self, draw: Draw, priority: Priority) -> float:
        """What a call of `priority` leaves behind: a share of the burst, and for anything less than
        urgent a token for each reply still open, whose final text may need one; never so much that
        the call could not fit in a full budget."""
        keep = draw.rate.burst * _KEEP[priority]
        if priority != "urgent":
            keep = max(keep, float(len(self._served)))
        return min(keep, max(0.0, draw.rate.burst - draw.cost))

    def _first_in_line(self, waiter: _Waiter) -> bool:
        mine = (waiter.rank, self._served.get(waiter.lane, 0), waiter.seq)
        return not any(
            (other.rank, self._served.get(other.lane, 0), other.seq) < mine
            for other in self._waiting
            if other is not waiter and other.keys & waiter.keys
        )

    def _move(self) -> None:
        self._moved.set()
        self._moved = asyncio.Event()

    def _note_fill(self, draws: Sequence[Draw], taken: Taken) -> None:
        if self._metrics is None:
            return
        for draw, tokens in zip(draws, taken.tokens, strict=True):
            self._metrics.budget_fill(draw.name, max(0.0, tokens) / draw.rate.burst)
