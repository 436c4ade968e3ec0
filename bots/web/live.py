"""What the Live page needs from the answer pipeline: a snapshot of the answers in flight and a way
to stop one. `ServiceAnswers` reads them from the `ChatService` the console runs next to; a console
mounted without one is given `NothingInFlight`, and the page says so."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from core.answer import AnswerProgress as LiveAnswer

if TYPE_CHECKING:
    from core.service import ChatService

__all__ = ["LiveAnswer", "LiveAnswers", "NothingInFlight", "ServiceAnswers"]


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


class ServiceAnswers:
    """The answers this process's `ChatService` is writing."""

    def __init__(self, service: ChatService) -> None:
        self._service = service

    @property
    def connected(self) -> bool:
        return True

    def snapshot(self) -> list[LiveAnswer]:
        return self._service.live()

    async def stop(self, answer_id: str) -> bool:
        return self._service.stop_answer(answer_id)


class NothingInFlight:
    """The stand-in for a console with no answer pipeline to report."""

    @property
    def connected(self) -> bool:
        return False

    def snapshot(self) -> list[LiveAnswer]:
        return []

    async def stop(self, answer_id: str) -> bool:
        return False
