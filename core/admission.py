"""Admission: the one path from "a message arrived" to "it is being answered".

    adapter: platform event -> Arrival (facts) + Asker (how to read and answer this one message)
    core:    addressed? -> allowlisted? (else say so once) -> claim (exactly once) -> stop word?
             -> the asker builds the Turn -> deleted meanwhile? -> ChatService.answer

Adapters state facts (who, where, mentioned or not, admin or not); the decisions and the
memories they need (refusals already said, prompts deleted before their answer began) live here, once
and bounded. `Work` keeps the tasks an adapter started, so a shutdown can wait for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from core.access import Allowlist, Place
from core.models import ConversationKey, Platform, Turn
from core.prompts import is_stop_request
from core.reply.surface import ReplySurface
from core.store import StoreError
from core.store.base import STORAGE_UNAVAILABLE

if TYPE_CHECKING:
    from core.answer import AnswerOutcome
    from core.service import ChatService

log = logging.getLogger("seedbot.admission")

NOT_ENABLED = "Sorry, Seed isn't enabled here. Ask an admin to add this channel (or you) to its allowlist."
# Deleted messages remembered in case an answer to one is still being prepared (most are not prompts).
REMEMBERED_DELETIONS = 1000
# (place, person) pairs already told the bot is not enabled there.
REMEMBERED_REFUSALS = 10_000


@dataclass(frozen=True, slots=True)
class Arrival:
    """What the platform says about one incoming message."""

    platform: Platform
    message_id: str  # the platform's id of the message (what a deletion names)
    event_id: str  # what makes answering it exactly-once, across redeliveries, restarts and instances
    where: Place  # where it was written and by whom, as the allowlists see it
    admin: bool  # what the platform counts as an admin (they may use the bot anywhere)
    text: str  # readable: the bot's own mention removed, other mentions as names
    # The bot was called: a DM, a mention, a reply to one of its messages, a thread it started.
    addressed: bool = False
    # Otherwise it may still be meant for the bot: a thread the bot answered in, a reply to a
    # message whose conversation the store knows (when the platform did not say who wrote it).
    continues: ConversationKey | None = None
    replies_to: str | None = None


class Asker(Protocol):
    """The adapter's side of one arrival."""

    async def tell(self, text: str) -> None:
        """Say something only the author needs (a refusal, how to ask), quietly or privately."""
        ...

    async def conversation(self) -> ConversationKey | None:
        """The conversation this message continues, if any (a "stop" there ends its answer)."""
        ...

    async def turn(self) -> tuple[Turn, ReplySurface] | None:
        """Read what the answer needs (context, files) and where it goes; None when nothing was asked."""
        ...


class _Bounded:
    """An ordered set that forgets its oldest entries past `size`."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: dict[object, None] = {}

    def __contains__(self, item: object) -> bool:
        return item in self._items

    def add(self, item: object) -> None:
        self._items[item] = None
        if len(self._items) > self._size:
            del self._items[next(iter(self._items))]


class Admission:
    def __init__(self, service: ChatService, usage_hint: str, allowlist: Allowlist) -> None:
        self.service = service
        self.usage_hint = usage_hint
        self.allowlist = allowlist
        self._refused = _Bounded(REMEMBERED_REFUSALS)
        self._deleted = _Bounded(REMEMBERED_DELETIONS)

    async def admit(self, arrival: Arrival, asker: Asker) -> AnswerOutcome | None:
        """Take one message through every step; the answer's outcome, or None when it got none. With
        the database away, the person is told to try again shortly (nothing is claimed or lost)."""
        try:
            return await self._admit(arrival, asker)
        except StoreError as error:
            log.warning("a message was not answered: %s", error)
            await asker.tell(STORAGE_UNAVAILABLE)
            return None

    async def _admit(self, arrival: Arrival, asker: Asker) -> AnswerOutcome | None:
        if not await self._addressed(arrival):
            return None
        if not self.allowlist.allows(arrival.where, admin=arrival.admin):
            await self.refuse(arrival.where, asker.tell)
            return None
        if not await self.claim(arrival.platform, arrival.event_id):
            return None  # delivered before (a second event for one message, a redelivery)
        key = await asker.conversation()
        if key is not None and is_stop_request(arrival.text) and await self.service.stop_anywhere(key):
            return None  # "stop" while an answer is being written there ends it; nothing to answer
        prepared = await asker.turn()
        if prepared is None:
            await asker.tell(self.usage_hint)
            return None
        turn, surface = prepared
        if (arrival.platform, arrival.message_id) in self._deleted:
            # Deleted while its context was read; from here on, deleting it stops the answer.
            await surface.close()
            return None
        return await self.service.answer(turn, surface)

    async def claim(self, platform: Platform, event_id: str) -> bool:
        """True the first time an event (a message, a command's trigger, an interaction) is seen, across
        redeliveries, restarts and instances. While draining nothing is claimed: the platform delivers
        it again after the restart, and it is answered then."""
        return self.service.draining or await self.service.store.claim_event(platform, event_id)

    async def refuse(self, where: Place, tell: Callable[[str], Awaitable[None]]) -> None:
        """ "Not enabled here", once per person and channel rather than on every message."""
        if (where.channel, where.user) in self._refused:
            return
        self._refused.add((where.channel, where.user))
        await tell(NOT_ENABLED)

    def deleted(self, platform: Platform, message_id: str) -> None:
        """A message was deleted: stop its answer, or make sure one never starts."""
        if not message_id:
            return
        if self.service.stop(platform, message_id):
            log.info("prompt %s deleted: stopped its answer", message_id)
            return
        self._deleted.add((platform, message_id))

    async def conversation_of(self, platform: Platform, message_id: str) -> ConversationKey | None:
        """The stored conversation a platform message belongs to (to follow a reply chain)."""
        message = await self.service.store.find_by_platform_message(platform, message_id)
        return message.key if message else None

    async def _addressed(self, arrival: Arrival) -> bool:
        if arrival.addressed:
            return True
        if arrival.continues is not None and await self.service.store.has_conversation(arrival.continues):
            return True
        return arrival.replies_to is not None and (
            await self.conversation_of(arrival.platform, arrival.replies_to) is not None
        )


class Work:
    """The tasks an adapter runs for the platform's events, so a shutdown can wait for them."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.accepting = True
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, work: Coroutine[Any, Any, object], what: str) -> None:
        """Run `work` in the background (dropped once shutting down); a failure is logged, not raised."""
        if not self.accepting:
            work.close()
            return
        task = asyncio.create_task(self._logged(work, what), name=f"{self.name}-{what}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @contextlib.contextmanager
    def track(self) -> Iterator[None]:
        """Count the current task as work in flight while the block runs (for handlers a library
        already runs as tasks)."""
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            yield
        finally:
            if task is not None:
                self._tasks.discard(task)

    @property
    def busy(self) -> int:
        return len(self._tasks)

    async def idle(self, timeout_s: float) -> bool:
        """Wait until no work is in flight (True) or `timeout_s` passes (False)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while self._tasks:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            await asyncio.wait(set(self._tasks), timeout=remaining)
        return True

    async def stop(self, grace_s: float) -> None:
        """Take no more work; give what runs `grace_s` to finish, then cancel it and wait."""
        self.accepting = False
        if not await self.idle(grace_s):
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _logged(self, work: Coroutine[Any, Any, object], what: str) -> None:
        try:
            await work
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s %s failed", self.name, what)
