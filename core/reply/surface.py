"""What an adapter hands the reply engine: where a reply lives and what the platform allows.

The core never imports a platform library. An adapter implements `ReplySurface` with its own client
and describes its platform with a `PlatformLimits`; the streamer does the rest.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

# A platform's own trouble (a 5xx) or the network's: the streamer tries again after this long.
TRANSIENT_RETRY_S = 1.0


@dataclass(frozen=True, slots=True)
class PlatformLimits:
    """Platform differences as data: lengths, edit pace and how the reply can be shown."""

    name: str
    # Longest message text the platform accepts, in characters (Discord 2,000; Slack ~40,000 but
    # `markdown_text` is capped at 12,000).
    max_message_chars: int
    # Sustained edit pace for one channel: `edits_per_window` edits in any `window_s` seconds.
    edits_per_window: int
    window_s: float
    # True where the thinking line belongs in the message itself; False where `set_status` shows it
    # (Slack's assistant status), so the message holds only answer text.
    thinking_in_message: bool = True


@dataclass(frozen=True, slots=True)
class MessageRef:
    """Opaque handle to one posted message; only the adapter that made it reads `id`."""

    id: str
    channel: str | None = None


StepStatus = Literal["running", "done", "failed"]


@dataclass(frozen=True, slots=True)
class ToolStep:
    """One tool call as people see it while the answer works: shown "running", then "done" or "failed"
    under the same `id` (the call's id), so a surface can update one card in place."""

    id: str
    title: str  # what is happening, e.g. "🔧 Fetching example.com…"
    status: StepStatus
    detail: str = ""  # what came back or why it failed, e.g. "Fetched example.com (12 KB)"
    sources: tuple[str, ...] = ()  # URLs the result came from (fetched pages)
    tool: str = ""  # the tool's name, e.g. "fetch_url"


class SurfaceRateLimited(Exception):
    """The platform answered 429; try again after `retry_after` seconds."""

    def __init__(self, retry_after: float):
        self.retry_after = retry_after
        super().__init__(f"rate limited, retry after {retry_after:.2f}s")


class SurfaceBusy(Exception):
    """Nothing was sent: a budget the platform shares with other replies has no room for this call
    yet. The streamer shows the text later, merged with whatever comes next (not a 429)."""


class SurfaceError(Exception):
    """The platform refused a post or edit for good (deleted message, missing permission...)."""


def refused_or_retry(status: int, refusal: str, *, retry_after: float) -> Exception:
    """A platform's HTTP error answer in the reply engine's terms: a 429 waits `retry_after`, the
    platform's own trouble (a 5xx) a moment; anything else refuses this message for good."""
    if status == 429:
        return SurfaceRateLimited(retry_after)
    if status >= 500:
        return SurfaceRateLimited(TRANSIENT_RETRY_S)
    return SurfaceError(refusal)


@contextlib.asynccontextmanager
async def surface_errors(
    failures: tuple[type[BaseException], ...], as_surface_error: Callable[[BaseException], Exception]
) -> AsyncIterator[None]:
    """Whatever of `failures` a platform library raises inside is raised as the reply engine's
    exception (`as_surface_error`), so the streamer knows whether to wait and retry or give up."""
    try:
        yield
    except failures as error:
        raise as_surface_error(error) from error


@runtime_checkable
class ReplySurface(Protocol):
    """One reply being written into a chat. Adapters implement this; only the streamer calls it.

    `post` and `edit` raise `SurfaceRateLimited` on a 429, `SurfaceBusy` when a shared budget kept
    them from sending, and `SurfaceError` on a permanent failure.
    `close` is called exactly once, last, however the reply ended (`ChatService.answer` sees to it
    through the streamer), so an adapter can end what it opened: a native stream, a typing indicator.

    Optional capabilities (the streamer looks them up with `getattr`; a surface implements only what
    its platform can do, and the core falls back for the rest):

    - `show_reasoning(text: str) -> None`, where the platform can show the model's reasoning as it
      arrives (a terminal prints it dimmed); the streamer hands it every fragment.
    - `async show_step(step: ToolStep) -> bool`, where the platform has native progress cards (Slack's
      task cards): called with each step "running", then again with the same `id` "done" or "failed";
      False when it could not show this one (no stream open, the workspace refused the cards). Without
      it, or on False, the streamer shows the step itself, in the thinking line or the status.
    - `async ask_confirmation(pending: PendingConfirmation) -> bool` and
      `async show_decision(request: ConfirmationRequest, decision: Decision) -> None`: buttons before a
      tool with side effects runs (see `core.tools.confirm` for the call order). Without them such
      tools are declined.
    - `async offer_feedback(subject: FeedbackSubject) -> None`: 👍 / 👎 buttons under a finished answer
      (`core.feedback`), on `subject.message`, carrying `subject.token`; called once, before `close`.
    - `conversation_search: ConversationSearch`, the platform's search of the current channel for the
      `search_conversation` tool (see `core.tools.base`).
    - `use_budgets(budgets: SharedBudgets) -> None`, where the platform counts rate limits beyond one
      channel; the service hands over its shared budgets before the reply starts.
    """

    limits: PlatformLimits

    async def post(self, text: str) -> MessageRef:
        """Post a new message of the reply (the first part, or a continuation after a split)."""
        ...

    async def edit(self, ref: MessageRef, text: str) -> None:
        """Replace the text of a message this surface posted."""
        ...

    async def set_status(self, status: str | None) -> None:
        """Show (or clear, with None) a transient status: typing indicator, assistant status line.

        With `thinking_in_message` False the streamer calls this every few seconds while the model
        reasons ("Thinking… 4 s — latest reasoning…") and clears it when the answer starts; otherwise
        only at the start ("Thinking…", e.g. to trigger a typing indicator) and when the answer starts.
        Failures here are cosmetic: the streamer logs and ignores them.
        """
        ...

    async def close(self) -> None:
        """The reply is finished: release what the surface holds open. Called once, last."""
        ...
