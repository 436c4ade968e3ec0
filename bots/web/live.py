"""What the Live page needs from the answer pipeline: a snapshot of the answers in flight and a way
to stop one. `ChatService` does not expose this yet; until it does the console is given
`NothingInFlight`, and the page says so."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class LiveAnswer:
    id: str  # stable while the answer runs; what `stop` takes
    platform: str
    workspace: str
    channel: str
    user: str
    effort: str
    started_at: datetime
    tokens: int  # reasoning + answer tokens streamed so far
    step: str  # "waiting", "reading files", "thinking", "answering", "finishing"


class LiveAnswers(Protocol):
    @property
    def connected(self) -> bool:
        """False while no answer pipeline reports to the console (the page says so)."""
        ...

    def snapshot(self) -> list[LiveAnswer]:
        """The answers in flight right now, oldest first."""
        ...

    async def stop(self, answer_id: str) -> bool:
        """Stop an answer as if its author had said `stop`; False if it is no longer running."""
        ...


class NothingInFlight:
    """The stand-in while the answer pipeline does not report its answers."""

    @property
    def connected(self) -> bool:
        return False

    def snapshot(self) -> list[LiveAnswer]:
        return []

    async def stop(self, answer_id: str) -> bool:
        return False
