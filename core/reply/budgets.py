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

A surface holds its reply's place in them as `ReplyCalls` (which budget each of its methods draws
from is the adapter's data); a call outside any reply (crash recovery) goes through
`SharedBudgets.paced`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

from core.coordination import BucketStore, Draw, Taken
from core.metrics import Metrics
from core.reply.pacing import Priority, call_priority
from core.reply.surface import SurfaceBusy, SurfaceRateLimited

T = TypeVar("T")

_RANK: dict[Priority, int] = {"urgent": 0, "routine": 1, "low": 2}
# Share of each budget's burst a call of this priority must leave for more urgent ones.
_KEEP: dict[Priority, float] = {"urgent": 0.0, "routine": 0.2, "low": 0.5}
# How often a call that is not first in line looks again (it is also woken when the line moves).
_LINE_POLL_S = 0.25
# Attempts per acquire: each one waits at least a little, so this only bounds a runaway loop.
_MAX_ATTEMPTS = 10_000
# How long a reply's call of each priority waits for its turn before the reply gives up on it for now:
# a final text waits (within SEEDBOT_FINAL_EDIT_DEADLINE_S), a mid-answer edit briefly (the next one
# carries its text), a status not at all.
PATIENCE_S: dict[Priority, float] = {"urgent": 45.0, "routine": 1.0, "low": 0.0}
# A call outside any reply (crash recovery) is tried this many times at most when it meets 429s.
PACED_ATTEMPTS = 5


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

    async def paced(
        self,
        draw: Draw,
        call: Callable[[], Awaitable[T]],
        *,
        retry_after_of: Callable[[Exception], float | None],
        patience_s: float = PATIENCE_S["urgent"],
        attempts: int = PACED_ATTEMPTS,
    ) -> T:
        """Run one call outside any reply (crash recovery, shutdown) within `draw`'s budget, as
        urgently as a final text: it waits its turn, and a failure `retry_after_of` reads as a 429
        (the seconds to wait; None for any other failure, which is raised) slows the budget for
        everyone and is retried, `attempts` times at most; after that it is raised too."""
        # A lane of its own: among urgent calls, one that has waited for nothing yet goes first.
        lane = self.lane()
        try:
            for attempt in range(attempts):
                if not await self.acquire([draw], "urgent", lane=lane, patience_s=patience_s):
                    continue
                try:
                    return await call()
                except Exception as error:
                    wait = retry_after_of(error)
                    if wait is None or attempt == attempts - 1:
                        raise
                    await self.penalize(draw.key, wait)
            raise SurfaceRateLimited(patience_s)
        finally:
            self.close_lane(lane)

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


@dataclass(frozen=True, slots=True)
class Pacer:
    """Runs calls outside any reply (opening a thread, reading history, crash recovery) within one
    budget, each as urgently as a final text (`SharedBudgets.paced`); `retry_after_of` reads the
    platform's 429 out of a failure."""

    budgets: SharedBudgets
    budget: Draw
    retry_after_of: Callable[[Exception], float | None]

    async def __call__(self, call: Callable[[], Awaitable[T]], *, calls: int = 1) -> T:
        """Run `call`, which makes `calls` platform calls (a budget's burst at most is taken at once)."""
        draw = replace(self.budget, cost=min(float(calls), self.budget.rate.burst))
        return await self.budgets.paced(draw, call, retry_after_of=self.retry_after_of)


class ReplyCalls:
    """One reply's calls against the shared budgets of its platform, once the service has handed them
    over (`use`; until then every call goes ahead at once). `draw_for(method)` names the budget a call
    of `method` draws from; `patience_s` how long a call of each priority may wait for its turn."""

    def __init__(
        self, draw_for: Callable[[str], Draw], patience_s: Mapping[Priority, float] = PATIENCE_S
    ) -> None:
        self._draw_for = draw_for
        self._patience_s = patience_s
        self._budgets: SharedBudgets | None = None
        self._lane = 0

    def use(self, budgets: SharedBudgets) -> None:
        self._budgets = budgets
        self._lane = budgets.lane()

    async def take(
        self, method: str, *, priority: Priority | None = None, patience_s: float | None = None
    ) -> bool:
        """Wait for this call's turn in the budget of `method` (priority: the streamer's); False when
        it would come later than its patience allows."""
        if self._budgets is None:
            return True
        priority = priority or call_priority.get()
        patience = self._patience_s[priority] if patience_s is None else patience_s
        return await self._budgets.acquire(
            [self._draw_for(method)], priority, lane=self._lane, patience_s=patience
        )

    async def need(self, method: str) -> None:
        """`take`, or raise `SurfaceBusy`: the streamer shows the text later, merged with what comes next."""
        if not await self.take(method):
            raise SurfaceBusy(method)

    async def penalize(self, method: str, seconds: float) -> None:
        if self._budgets is not None:
            await self._budgets.penalize(self._draw_for(method).key, seconds)

    @contextlib.asynccontextmanager
    async def penalizing(self, method: str) -> AsyncIterator[None]:
        """A 429 inside slows `method`'s budget for every reply that shares it."""
        try:
            yield
        except SurfaceRateLimited as limited:
            await self.penalize(method, limited.retry_after)
            raise

    def close(self) -> None:
        """The reply is over: it no longer counts in the fair shares."""
        if self._budgets is not None:
            self._budgets.close_lane(self._lane)
