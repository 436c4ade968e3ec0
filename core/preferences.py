"""Settings as they apply to one person in one place: which effort, which system prompt, which tools.

The store keeps values per scope (`core.store.base`); this is the rule that picks one, shared by the
answer pipeline and the commands that show and change them.
"""

from __future__ import annotations

from core.config import Settings
from core.llm.types import Effort
from core.models import Platform
from core.store import Store
from core.store.base import TOOLS_DISABLED, tool_names


async def effort_for(
    store: Store, settings: Settings, *, platform: Platform, workspace: str, channel: str, user: str
) -> tuple[Effort, str]:
    """The effort in force for this person here, and where it was set ("default" if nowhere)."""
    found = await store.resolve_setting("effort", platform, workspace, channel, user)
    return found if found is not None else (settings.default_effort, "default")  # type: ignore[return-value]


async def system_prompt_for(
    store: Store, settings: Settings, *, platform: Platform, channel: str
) -> tuple[str, bool]:
    """The system prompt of a channel, and whether the channel has its own."""
    own = await store.get_setting("system_prompt", "channel", platform, channel)
    return own or settings.system_prompt, own is not None


async def disabled_tools_for(
    store: Store, *, platform: Platform, workspace: str, channel: str
) -> tuple[frozenset[str], str]:
    """The tools switched off in a channel, and where that was set: the channel's own list replaces the
    workspace's ("channel", "workspace", or "default": every tool on)."""
    found = await store.resolve_setting(TOOLS_DISABLED, platform, workspace, channel)
    if found is None:
        return frozenset(), "default"
    return frozenset(tool_names(found[0])), found[1]
