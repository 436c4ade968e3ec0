"""`search_conversation`: find earlier messages of this channel by keyword and/or time.

The search itself is the platform adapter's `ConversationSearch`; this tool validates the model's
filters and formats what was found compactly (one line per message).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from core.tools.base import FoundMessage, SearchUnavailable, Tool, ToolContext, ToolResult

DEFAULT_LIMIT = 20
MAX_LIMIT = 50
_MESSAGE_CHARS = 500


def _parse_since(args: dict[str, Any], now: datetime) -> datetime | str | None:
    """The time filter, or the reason it is unusable."""
    if (hours := args.get("since_hours")) is not None:
        if not isinstance(hours, int | float) or isinstance(hours, bool) or hours <= 0:
            return "since_hours must be a positive number."
        return now - timedelta(hours=float(hours))
    if (since := args.get("since")) is not None:
        try:
            parsed = datetime.fromisoformat(str(since))
        except ValueError:
            return f"since must be an ISO 8601 date or time such as 2026-03-01T09:00, not {since!r}."
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def format_found(message: FoundMessage) -> str:
    text = " ".join(message.text.split())
    if len(text) > _MESSAGE_CHARS:
        text = text[: _MESSAGE_CHARS - 1] + "…"
    when = message.time.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    link = f" <{message.link}>" if message.link else ""
    return f"- [{when}] {message.author}: {text}{link}"


class SearchConversation(Tool):
    name = "search_conversation"
    description = (
        "Search earlier messages of the current channel (beyond this conversation) by keyword, by time, "
        "or both. Returns matching messages newest first, with author and time."
    )
    parameters = {  # noqa: RUF012
        "type": "object",
        "properties": {
            "query": {"type": "string", "description": "Words to look for; leave out to match any message."},
            "since_hours": {"type": "number", "description": "Only messages from the last N hours."},
            "since": {
                "type": "string",
                "description": "Only messages at or after this ISO 8601 time (UTC unless it has an offset).",
            },
            "limit": {
                "type": "integer",
                "description": f"Most messages to return (1..{MAX_LIMIT}).",
                "default": 20,
            },
        },
    }

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        search = ctx.conversation_search
        if search is None:
            return ToolResult.error(f"Searching the conversation is not available on {ctx.platform}.")
        query = args.get("query")
        if query is not None and not isinstance(query, str):
            return ToolResult.error("query must be a string.")
        query = query.strip() if query else None
        since = _parse_since(args, datetime.now(UTC))
        if isinstance(since, str):
            return ToolResult.error(since)
        limit = args.get("limit", DEFAULT_LIMIT)
        if not isinstance(limit, int) or isinstance(limit, bool):
            return ToolResult.error(f"limit must be a whole number from 1 to {MAX_LIMIT}.")
        limit = max(1, min(limit, MAX_LIMIT))
        try:
            found = await search.search(query, since, limit)
        except SearchUnavailable as unavailable:
            return ToolResult.error(str(unavailable), summary="Could not read this channel")
        about = f" for {query!r}" if query else ""
        if since is not None:
            about += f" since {since.astimezone(UTC).strftime('%Y-%m-%d %H:%M UTC')}"
        if not found:
            return ToolResult(text=f"No messages found{about}.", summary=f"Found no messages{about}")
        lines = [f"{len(found)} message{'s' if len(found) > 1 else ''} found{about}:"]
        lines.extend(format_found(message) for message in found[:limit])
        return ToolResult(text="\n".join(lines), summary=f"Found {len(found)} messages{about}")

    def status_text(self, args: dict[str, Any]) -> str:
        query = args.get("query")
        return f"🔧 Searching this channel for {query!r}…" if query else "🔧 Searching this channel…"
