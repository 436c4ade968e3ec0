"""The tools seedbot itself provides, built from the settings (MCP servers add theirs)."""

from __future__ import annotations

from core.config import Settings
from core.media.pipeline import MediaPipeline
from core.tools.base import Tool
from core.tools.clock import CurrentTime
from core.tools.fetch import FetchUrl
from core.tools.search import SearchConversation


def builtin_tools(settings: Settings, media: MediaPipeline) -> list[Tool]:
    """fetch_url, current_time and search_conversation; none when SEEDBOT_TOOLS_ENABLED is false."""
    if not settings.tools_enabled:
        return []
    return [FetchUrl.from_settings(settings, media), CurrentTime(), SearchConversation()]
